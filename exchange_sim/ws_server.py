"""The WebSocket endpoint: handshake checks, the read loop, and per-connection timers.

Built on aiohttp rather than websockets because aiohttp, with ``autoping=False``, hands every
incoming ping and pong to the handler: Binance counts pings and pongs against the
5-messages-per-second limit, and decides liveness from pongs that echo *its* ping payload,
both of which need the raw control frames. Data frames bypass the library (see hub.py).

Rule 1: the handshake is refused before any upgrade: 429 past the connection-attempt budget,
        503 while a refuse fault is active, 400 for a bad path, stream name or timeUnit.
Rule 2: every incoming frame (text, binary, ping, pong) counts against the per-second limit;
        past it the connection is closed (1008).
Rule 3: a ping goes out every ``ping_interval``; if the oldest unanswered ping is older than
        ``pong_timeout`` the connection is closed (1008). Only a pong echoing an outstanding
        ping's payload answers it; unsolicited pongs answer nothing.
Rule 4: ``serverShutdown`` is sent ``shutdown_notice`` seconds before ``max_lifetime``; at
        ``max_lifetime`` the connection is closed (1001).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WSMessage, WSMsgType, web

from exchange_sim.config import SimConfig
from exchange_sim.events import server_shutdown_frame
from exchange_sim.faults import Faults
from exchange_sim.frames import ping_frame, pong_frame, text_frame
from exchange_sim.hub import Connection, Hub
from exchange_sim.protocol import Session, parse_url, reply_bytes
from exchange_sim.ratelimit import SlidingWindow

log = logging.getLogger(__name__)
CLOSED_TYPES = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


class WsServer:
    """aiohttp handler serving every WebSocket path."""

    def __init__(self, cfg: SimConfig, hub: Hub, faults: Faults) -> None:
        self.cfg = cfg
        self.hub = hub
        self.faults = faults
        self.attempts = SlidingWindow(cfg.max_conn_attempts, cfg.conn_window)

    def app(self) -> web.Application:
        """The aiohttp application for the WebSocket port."""
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        return app

    def _refusal(self, request: web.Request) -> web.Response | None:
        now = time.monotonic()
        if not self.attempts.hit(now):
            retry = str(self.attempts.retry_after(now))
            return web.json_response(
                {"code": -1003, "msg": "Too many connection attempts."},
                status=429,
                headers={"Retry-After": retry},
            )
        if self.faults.refusing(now):
            return web.json_response({"code": -1016, "msg": "Service unavailable."}, status=503)
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Accept one WebSocket connection and serve it until it closes."""
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            streams, combined, micro = parse_url(request.path, dict(request.query))
        except ValueError as exc:
            return web.json_response({"code": 2, "msg": f"Invalid request: {exc}"}, status=400)
        if len(streams) > self.cfg.max_streams:
            return web.json_response({"code": 2, "msg": "Invalid request: too many streams"}, status=400)
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            return web.json_response(
                {"code": 2, "msg": "Invalid request: not a WebSocket upgrade"}, status=400
            )
        await ws.prepare(request)
        transport = request.transport
        if transport is None:
            return ws
        session = Session(combined, self.cfg.max_streams, dict.fromkeys(streams))
        conn = Connection(
            self.hub.new_id(), request.path_qs, transport, session, micro, self.cfg.max_send_buffer
        )
        self.hub.add(conn)
        log.info("conn %d: open %s", conn.cid, conn.path)
        try:
            async with asyncio.TaskGroup() as tasks:
                timers = tasks.create_task(self._timers(conn))
                await self._read_loop(conn, ws)
                timers.cancel()
        finally:
            self.hub.remove(conn)
            log.info("conn %d: gone", conn.cid)
        return ws

    async def _read_loop(self, conn: Connection, ws: web.WebSocketResponse) -> None:
        incoming = SlidingWindow(self.cfg.max_incoming_per_sec, 1.0)
        while not conn.closed:
            msg = await ws.receive()
            if msg.type in CLOSED_TYPES:
                return
            allowed = incoming.hit(time.monotonic())
            self._account(conn, msg, len(incoming.hits))
            if not allowed:
                log.info("conn %d: too many incoming messages: closing", conn.cid)
                self.hub.rate_limit_closes += 1
                conn.close(1008, "Too many requests")
                return
            self._on_message(conn, msg)

    def _account(self, conn: Connection, msg: WSMessage, in_window: int) -> None:
        """Count control messages and the peak incoming rate (``/control/stats``)."""
        conn.peak_incoming_per_sec = max(conn.peak_incoming_per_sec, in_window)
        self.hub.peak_incoming_per_sec = max(self.hub.peak_incoming_per_sec, in_window)
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            conn.control_messages += 1
            self.hub.control_messages += 1

    def _on_message(self, conn: Connection, msg: WSMessage) -> None:
        kind, data, pending = msg.type, msg.data, conn.pending_pings
        if kind == WSMsgType.PING:
            conn.send(pong_frame(bytes(data)), data_frame=False)
        elif kind == WSMsgType.PONG:
            data = bytes(data)  # aiohttp hands control payloads over as bytearray
            if data in pending:
                for payload in list(pending):
                    del pending[payload]
                    if payload == data:
                        break
        elif kind in (WSMsgType.TEXT, WSMsgType.BINARY):
            text = data if isinstance(data, str) else data.decode("utf-8", "replace")
            outcome = conn.session.handle(text)
            self.hub.subscribe(conn, outcome.added)
            self.hub.unsubscribe(conn, outcome.removed)
            conn.send(text_frame(reply_bytes(outcome.reply)), data_frame=False)

    async def _timers(self, conn: Connection) -> None:
        cfg, loop = self.cfg, asyncio.get_running_loop()
        cut_at = conn.opened + cfg.max_lifetime
        notice_at: float | None = max(conn.opened, cut_at - cfg.shutdown_notice)
        next_ping = conn.opened + cfg.ping_interval
        while not conn.closed:
            now = loop.time()
            pending = conn.pending_pings
            if now >= cut_at:
                conn.close(1001, "Connection lifetime expired")
                return
            if notice_at is not None and now >= notice_at:
                frame = server_shutdown_frame(time.time_ns() // 1000, conn.session.combined, conn.micro)
                conn.send(frame, data_frame=False)
                notice_at = None
            oldest = next(iter(pending.values()), None)
            if oldest is not None and now - oldest >= cfg.pong_timeout:
                log.info("conn %d: no pong within %.3gs: closing", conn.cid, cfg.pong_timeout)
                conn.close(1008, "Pong timeout")
                return
            if now >= next_ping:
                payload = str(time.time_ns() // 1_000_000).encode()
                if conn.send(ping_frame(payload)):
                    pending.setdefault(payload, now)
                next_ping += cfg.ping_interval * max(1, int((now - next_ping) // cfg.ping_interval) + 1)
            wake = [cut_at, next_ping] + ([notice_at] if notice_at is not None else [])
            if oldest is not None:
                wake.append(oldest + cfg.pong_timeout)
            await asyncio.sleep(max(0.0, min(wake) - loop.time()))


def shutdown_all(hub: Hub) -> None:
    """Close every connection with 1001 (server going away)."""
    for conn in list(hub.connections.values()):
        conn.close(1001, "Server shutting down")
