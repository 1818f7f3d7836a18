"""An aiohttp runner whose protocol-level errors are JSON too, and a ``serve`` loop around it.

aiohttp answers requests it cannot parse (a request line or header field past its 8190-byte
limit, bytes that are not HTTP) before any middleware runs, with a ``text/plain`` body that
echoes the first 100 bytes of the offending line. A JSON API should not change format there.

Rules:
  1. Every answer the server itself makes, parse errors included, is ``application/json``
     ``{"error": kind, "message": ...}``; the offending bytes are never echoed back.
  2. Such errors are logged in one line (no traceback): they are the client's fault.
  3. This module only changes how errors are rendered; limits and routing stay aiohttp's.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong

log = logging.getLogger(__name__)


def error_body(status: int, exc: BaseException | None) -> dict[str, str]:
    """The JSON document of a protocol-level error (rule 1)."""
    if isinstance(exc, LineTooLong):
        limit = exc.args[1]
        return {"error": "bad_request", "message": f"request line or header field longer than {limit} bytes"}
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    kind = "internal" if status >= 500 else phrase.lower().replace(" ", "_")
    return {"error": kind, "message": phrase if status >= 500 else f"{phrase}: malformed HTTP request"}


class JsonErrorHandler(web.RequestHandler):
    """aiohttp's per-connection protocol, with ``handle_error`` answering JSON (rules 1-2)."""

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error") from exc
        level = logging.ERROR if status >= 500 else logging.INFO
        log.log(level, "HTTP %d before routing from %s: %s", status, request.remote, type(exc).__name__)
        resp = web.Response(body=orjson.dumps(error_body(status, exc)), status=status,
                            content_type="application/json")
        resp.force_close()
        return resp


class JsonErrorServer(web.Server):
    """A low-level server that makes ``JsonErrorHandler`` protocols."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._handler_kwargs = {
            k: v for k, v in kwargs.items() if k not in ("request_factory", "handler_cancellation", "loop")
        }

    def __call__(self) -> web.RequestHandler:
        return JsonErrorHandler(self, loop=asyncio.get_running_loop(), **self._handler_kwargs)


class JsonErrorAppRunner(web.AppRunner):
    """``web.AppRunner`` whose server is a ``JsonErrorServer`` (same app, same arguments)."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return JsonErrorServer(
            plain.request_handler, request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation, **self._kwargs,
        )


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve ``app`` on host:port until SIGINT/SIGTERM (web.GracefulExit), then clean up."""
    runner = JsonErrorAppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
