"""``GET /v1/export?symbol=&stream=&from=&to=&format=csv|parquet``: the export as a streamed download.

Rules:
  1. Parameters are checked (the export spec's ExportParams, by db.service.http) before any database
     work; a bad one is 400 through the API's error middleware.
  2. The export runs in a worker thread on its own read-only connection (no statement
     timeout: a long range is a long download, not a stuck query); chunks cross to the event
     loop through a bounded queue, so memory stays bounded and a slow client slows the
     database read instead of filling memory.
  3. A client that goes away stops the export: the thread's next put fails and it closes.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

import psycopg2
from aiohttp import web

from db.service.errors import classify
from db.service.export import ExportParams, ExportRequest, write_csv, write_parquet

QUEUE_CHUNKS = 16
_DONE = b""
_CTYPE = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


class _Cancelled(Exception):
    """The client went away."""


class _QueueWriter:
    """A write-only file object that hands chunks to the event loop (Rule 2)."""

    def __init__(self, chunks: queue.Queue[bytes | BaseException], stop: threading.Event) -> None:
        self.chunks, self.stop, self.position, self.closed = chunks, stop, 0, False

    def write(self, data: bytes | memoryview) -> int:
        chunk = bytes(data)
        while not self.stop.is_set():
            try:
                self.chunks.put(chunk, timeout=0.5)
                break
            except queue.Full:
                continue
        else:
            raise _Cancelled
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def _produce(params: dict[str, Any], req: ExportRequest, writer: _QueueWriter) -> None:
    try:
        conn = psycopg2.connect(**params)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SET statement_timeout = 0")
            (write_csv if req.fmt == "csv" else write_parquet)(conn, req, writer, lambda _: None)
        finally:
            conn.close()
        writer.chunks.put(_DONE)
    except _Cancelled:
        return
    except psycopg2.Error as exc:
        writer.chunks.put(classify(exc))
    except Exception as exc:  # noqa: BLE001 - handed to the request, which logs and ends it
        writer.chunks.put(exc)


def make_export_handler(connect_params: dict[str, Any]) -> Any:
    """The route's handler, given parameters the API has validated (Rule 1)."""

    async def handle(request: web.Request, params: ExportParams) -> web.StreamResponse:
        req = params.request()
        chunks: queue.Queue[bytes | BaseException] = queue.Queue(QUEUE_CHUNKS)
        stop = threading.Event()
        thread = threading.Thread(target=_produce, args=(connect_params, req, _QueueWriter(chunks, stop)),
                                  name="export", daemon=True)
        thread.start()
        loop = asyncio.get_running_loop()
        first = await loop.run_in_executor(None, chunks.get)
        if isinstance(first, BaseException):
            raise first
        response = web.StreamResponse(headers={
            "Content-Type": _CTYPE[req.fmt],
            "Content-Disposition": f'attachment; filename="{req.file_name()}"',
        })  # fmt: skip
        await response.prepare(request)
        try:
            await _pump(loop, chunks, response, first)
        finally:
            stop.set()
        return response

    return handle


async def _pump(
    loop: asyncio.AbstractEventLoop, chunks: queue.Queue[bytes | BaseException],
    response: web.StreamResponse, chunk: bytes | BaseException,
) -> None:
    while True:
        if isinstance(chunk, BaseException):
            raise chunk  # headers are sent: the client sees a truncated body, the log the cause
        if chunk == _DONE:
            await response.write_eof()
            return
        await response.write(chunk)
        chunk = await loop.run_in_executor(None, chunks.get)
