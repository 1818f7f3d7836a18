"""One combined-stream WebSocket connection to Binance (websockets, asyncio).

Owns the socket, the subscription and the receive loop; knows nothing of Kafka or sequencing.
Every frame is stamped with its receipt time (UTC, us) before anything else happens to it,
then handed to the sink together with this connection.

Rules:
  1. Streams go in the URL (``/stream?streams=a/b&timeUnit=MICROSECOND``) while the URL stays
     under ``MAX_URL_CHARS``; the rest are SUBSCRIBEd in chunks, at most
     ``limits.CONTROL_MESSAGES`` outgoing control messages per second.
  2. Pings are answered by websockets itself; frames are read undecoded (bytes), so a frame
     that is not valid UTF-8 reaches the parser (and the dead-letter topic) instead of
     killing the connection. Whether each message came as a text or a binary frame is
     noted as it arrives (``_TypedConnection``) and handed to the sink with it.
  3. The receive loop never swallows errors: it returns why the connection ended, or raises.
  4. Retry policy is data (``is_retryable``): no HTTP answer (transport error, timeout), a
     5xx, 429 or 418 is worth another attempt; any other answer to the upgrade (400, 401,
     403, 404, ...) is fatal: asking again would get the same answer.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import Frame, Opcode

from binance_pipeline.common.clock import (
    now_us as now_us,  # re-exported (ingestion.supervisor imports it from here)
)
from ingestion.errors import ConnectError
from ingestion.limits import CONTROL_MESSAGES, WindowBudget, acquire
from ingestion.models import ControlReply
from ingestion.rest import retry_after_s

log = logging.getLogger(__name__)

MAX_URL_CHARS = 4000
SUBSCRIBE_CHUNK = 200
REPLY_TIMEOUT_S = 10.0
FrameSink = Callable[[bytes, int, bool, "Connection"], None]  # raw, received_at, binary, conn
RequestHook = Callable[[str, int, bool], None]  # conn id, request id, pending
_ids = itertools.count(1)


RETRY_STATUSES = frozenset({418, 429})
_TEXT, _BINARY = Opcode.TEXT, Opcode.BINARY


def is_retryable(exc: ConnectError) -> bool:
    """Rule 4, from the error's ``status`` attribute (None: the server never answered)."""
    return exc.status is None or exc.status >= 500 or exc.status in RETRY_STATUSES


def split_streams(base: str, streams: Sequence[str]) -> tuple[list[str], list[str]]:
    """(streams that fit in the URL, streams to SUBSCRIBE) -- Rule 1."""
    room = MAX_URL_CHARS - len(base) - len("/stream?streams=&timeUnit=MICROSECOND")
    in_url: list[str] = []
    for name in streams:
        room -= len(name) + 1
        if room < 0:
            break
        in_url.append(name)
    return in_url, list(streams[len(in_url) :])


def stream_url(base: str, streams: Sequence[str]) -> str:
    return f"{base}/stream?streams={'/'.join(streams)}&timeUnit=MICROSECOND"


class _TypedConnection(ClientConnection):
    """websockets' client connection, noting each data message's opcode in arrival order.

    ``recv(decode=False)`` returns text and binary messages alike as bytes; websockets lets a
    subclass be passed as ``create_connection``, and every frame passes ``process_event``
    before it is queued, so ``binary`` holds one flag per message, in ``recv`` order.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.binary: collections.deque[bool] = collections.deque()

    def process_event(self, event: Any) -> None:  # per frame: no super(), no tuple
        if type(event) is Frame:
            opcode = event.opcode
            if opcode is _TEXT:
                self.binary.append(False)
            elif opcode is _BINARY:
                self.binary.append(True)
        ClientConnection.process_event(self, event)


class Connection:
    """A connection: its socket and what the supervisor watches (the flow's state is in ``links``)."""

    def __init__(
        self, slot: int, base: str, streams: Sequence[str], sink: FrameSink, max_frame_bytes: int,
        on_request: RequestHook | None = None,
    ) -> None:  # fmt: skip
        self.id = f"s{slot}c{next(_ids)}"
        self.slot, self.base, self.streams = slot, base, list(streams)
        self._sink, self._max_frame_bytes = sink, max_frame_bytes
        self._on_request = on_request or (lambda *_: None)
        self._ws: _TypedConnection | None = None
        self._pacer = WindowBudget(*CONTROL_MESSAGES)
        self._replies: dict[int, asyncio.Future[ControlReply]] = {}
        self._next_request = itertools.count(1)
        self.opened_at = 0.0  # monotonic
        self.last_frame_at = 0  # receipt time (us) of the last frame, or the open time
        self.ended: str | None = None  # why the receive loop ended

    async def open(self) -> None:
        """Connect and subscribe the streams that fit in the URL; raises ConnectError."""
        in_url, _ = split_streams(self.base, self.streams)
        try:
            ws = await connect(
                stream_url(self.base, in_url), compression=None, max_size=self._max_frame_bytes,
                max_queue=1024, open_timeout=10, ping_interval=20, ping_timeout=20, close_timeout=2,
                proxy=None, create_connection=_TypedConnection,
            )  # fmt: skip
        except InvalidStatus as exc:
            status, header = exc.response.status_code, exc.response.headers.get("Retry-After")
            retry = retry_after_s(header, datetime.now(UTC), None)
            raise ConnectError(f"HTTP {status} on upgrade", status, retry) from exc
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise ConnectError(f"cannot connect: {exc!r}") from exc
        assert isinstance(ws, _TypedConnection)  # noqa: S101 - create_connection above
        self._ws = ws
        self.opened_at = time.monotonic()
        self.last_frame_at = now_us()

    async def subscribe_rest(self) -> None:
        """SUBSCRIBE the streams that did not fit in the URL (needs ``read`` running)."""
        _, rest = split_streams(self.base, self.streams)
        for start in range(0, len(rest), SUBSCRIBE_CHUNK):
            reply = await self.request("SUBSCRIBE", rest[start : start + SUBSCRIBE_CHUNK])
            if reply.error is not None:
                raise ConnectError(f"SUBSCRIBE refused: {reply.error.code} {reply.error.msg}")

    # -- universe seam (ingestion.universe / ingestion.refresh): change streams on a live socket
    async def subscribe(self, streams: Sequence[str]) -> None:
        """SUBSCRIBE ``streams`` on this open connection (paced, Rule 1); raises ConnectError."""
        await self._change("SUBSCRIBE", streams)
        self.streams.extend(s for s in streams if s not in self.streams)

    async def unsubscribe(self, streams: Sequence[str]) -> None:
        """UNSUBSCRIBE ``streams`` on this open connection (paced, Rule 1); raises ConnectError."""
        await self._change("UNSUBSCRIBE", streams)
        gone = set(streams)
        self.streams = [s for s in self.streams if s not in gone]

    async def _change(self, method: str, streams: Sequence[str]) -> None:
        for start in range(0, len(streams), SUBSCRIBE_CHUNK):
            reply = await self.request(method, list(streams[start : start + SUBSCRIBE_CHUNK]))
            if reply.error is not None:
                raise ConnectError(f"{method} refused: {reply.error.code} {reply.error.msg}")

    async def request(self, method: str, params: list[Any]) -> ControlReply:
        """Send one control message (paced, Rule 1) and wait for its reply."""
        await acquire(self._pacer, 1)
        ident = next(self._next_request)
        future: asyncio.Future[ControlReply] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        self._on_request(self.id, ident, True)
        try:
            await self.ws.send(orjson.dumps({"method": method, "params": params, "id": ident}).decode())
            return await asyncio.wait_for(future, REPLY_TIMEOUT_S)
        except (ConnectionClosed, TimeoutError) as exc:
            raise ConnectError(f"{method} got no reply: {exc!r}") from exc
        finally:
            self._replies.pop(ident, None)
            self._on_request(self.id, ident, False)

    def on_reply(self, reply: ControlReply) -> None:
        """The flow matched ``reply`` to a pending request of this connection."""
        future = self._replies.get(reply.id) if isinstance(reply.id, int) else None
        if future is not None and not future.done():
            future.set_result(reply)

    @property
    def ws(self) -> _TypedConnection:
        if self._ws is None:
            raise RuntimeError("connection not open")
        return self._ws

    async def read(self) -> str:
        """Receive frames into the sink until the connection ends; returns why (Rule 3)."""
        recv, sink, clock, binary = self.ws.recv, self._sink, time.time_ns, self.ws.binary.popleft
        try:
            while True:
                raw = await recv(decode=False)
                received_at = clock() // 1000
                self.last_frame_at = received_at
                sink(raw, received_at, binary(), self)
        except ConnectionClosed as exc:
            self.ended = _describe(exc)
            return self.ended

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    def age(self) -> float:
        return time.monotonic() - self.opened_at if self.opened_at else 0.0


def _describe(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "connection dropped without a close frame"
    return f"closed with code {frame.code} {frame.reason!r}"
