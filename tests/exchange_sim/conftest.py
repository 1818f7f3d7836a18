"""Fixtures for the simulator tests: subprocess simulators and a raw WebSocket client."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")


@pytest.fixture
def data_dir() -> Path:
    """The recorded-data folder, or skip."""
    if not DATA.is_dir():
        pytest.skip("recorded data folder ../shared/data is absent")
    return DATA


def http(
    url: str, headers: dict[str, str] | None = None, data: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    """GET (or POST with ``data``) returning status, headers and decoded JSON body."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, dict(exc.headers), json.loads(body) if body else None


class RawWs:
    """Minimal WebSocket client that never answers pings by itself."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int) -> None:
        self.reader = reader
        self.writer = writer
        self.status = status

    @classmethod
    async def connect(cls, ws_url: str, path: str) -> RawWs:
        """Open a connection; ``status`` is the HTTP status of the handshake (101 on success)."""
        host, port = ws_url.removeprefix("ws://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 24)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        return cls(reader, writer, int(head.split()[1]))

    async def recv(self, timeout: float = 5.0) -> tuple[int, bytes]:  # noqa: ASYNC109
        """Next frame as (opcode, payload); (-1, b"") on EOF."""
        try:
            head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        except asyncio.IncompleteReadError:
            return -1, b""
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        return head[0] & 0x0F, await self.reader.readexactly(length)

    async def recv_text(self, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Next text frame decoded as JSON, skipping pings."""
        while True:
            opcode, payload = await self.recv(timeout)
            if opcode == 1:
                return json.loads(payload)
            if opcode in (-1, 8):
                raise ConnectionError(f"closed: {opcode} {payload!r}")

    def send(self, opcode: int, payload: bytes) -> None:
        """Send one masked frame (payload < 126 bytes)."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def send_json(self, message: Any) -> None:
        """Send a text frame with ``message`` as JSON."""
        self.send(1, json.dumps(message, separators=(",", ":")).encode())

    async def close(self) -> None:
        """Close the TCP connection."""
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass
