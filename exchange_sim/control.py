"""Control endpoints (``/control/*``): fault injection, pause/resume and accounting.

Owns the validation of control bodies and the mapping of each action onto the hub, the fault
state and the feed. The same :meth:`Controller.run` serves HTTP and ``--fault`` schedules.

Rule 1: a control action takes effect before its HTTP answer is sent.
Rule 2: a bad body is answered 400 ``{"error": "..."}`` and changes nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from exchange_sim.archive_routes import ArchiveApi
from exchange_sim.config import SimConfig
from exchange_sim.depth import DEPTH_100MS, DEPTH_KINDS, book_json
from exchange_sim.errors import ConfigError
from exchange_sim.events import server_shutdown_frame
from exchange_sim.faults import MALFORMED_KINDS, DropRule, Faults, malformed_frame
from exchange_sim.hub import Connection, Hub
from exchange_sim.market import Market
from exchange_sim.ratelimit import WeightLimiter

ACTIONS = (
    "disconnect", "drop", "stall", "malformed", "refuse", "duplicates", "pause", "resume", "shutdown",
    "archive", "list", "delist", "rest_down", "drop_depth", "stale_snapshot",
)
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")


def _number(
    body: dict[str, Any], key: str, default: float | None = None, low: float = 0.0, high: float = float("inf")
) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{key!r} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _body(raw: bytes) -> dict[str, Any]:
    body = orjson.loads(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise ConfigError("the body must be a JSON object")
    return body


class Controller:
    """Runs control actions against the live simulator."""

    def __init__(
        self,
        cfg: SimConfig,
        market: Market,
        hub: Hub,
        faults: Faults,
        limiter: WeightLimiter,
        running: asyncio.Event,
        archive: ArchiveApi | None = None,
    ) -> None:
        self.cfg = cfg
        self.market = market
        self.hub = hub
        self.faults = faults
        self.limiter = limiter
        self.running = running
        self.archive = archive

    def run(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Apply one action; returns the JSON answer. Raises ConfigError on a bad body."""
        handler: Callable[[dict[str, Any]], dict[str, Any]] | None = getattr(self, f"_do_{action}", None)
        if action not in ACTIONS or handler is None:
            raise ConfigError(f"unknown control action {action!r}")
        return handler(body)

    def _symbol(self, body: dict[str, Any]) -> str:
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or symbol not in self.market.symbols:
            raise ConfigError(f"'symbol' must be one of {sorted(self.market.symbols)}, got {symbol!r}")
        return symbol

    def _do_disconnect(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "closed": self.hub.abort_all()}

    def _do_drop(self, body: dict[str, Any]) -> dict[str, Any]:
        symbol = self._symbol(body)
        share, count = _number(body, "share", 1.0, 0.0, 1.0), int(_number(body, "count", None, 1))
        self.faults.drops[symbol] = DropRule(share, count)
        return {"ok": True}

    def _do_stall(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "stalled": self.hub.stall_all(_number(body, "seconds", None, 0.0))}

    def _do_malformed(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = body.get("kind")
        if kind not in MALFORMED_KINDS:
            raise ConfigError(f"'kind' must be one of {list(MALFORMED_KINDS)}, got {kind!r}")
        count = int(_number(body, "count", 1, 1, 10_000))
        size = int(_number(body, "size", self.cfg.oversized_bytes, 1, 64 * 1024 * 1024))
        symbol = body.get("symbol") or next(iter(self.market.symbols), "BTCUSDT")
        now_ms = time.time_ns() // 1_000_000

        def make(conn: Connection) -> bytes:
            return malformed_frame(str(kind), str(symbol), now_ms, conn.session.combined, size)

        for _ in range(count):
            self.hub.broadcast(make)
        return {"ok": True, "connections": len(self.hub.connections)}

    def _do_refuse(self, body: dict[str, Any]) -> dict[str, Any]:
        self.faults.refuse_until = time.monotonic() + _number(body, "seconds", None, 0.0)
        return {"ok": True}

    def _do_rest_down(self, body: dict[str, Any]) -> dict[str, Any]:
        """For ``seconds``, every /api request's connection is closed without an answer."""
        self.faults.rest_down_until = time.monotonic() + _number(body, "seconds", None, 0.0)
        return {"ok": True}

    def _do_duplicates(self, body: dict[str, Any]) -> dict[str, Any]:
        self.faults.duplicates[self._symbol(body)] = int(_number(body, "count", None, 1))
        return {"ok": True}

    def _do_drop_depth(self, body: dict[str, Any]) -> dict[str, Any]:
        """Withhold the next ``count`` depthUpdate events of one symbol's one speed."""
        symbol, stream = self._symbol(body), body.get("stream", DEPTH_100MS)
        if stream not in DEPTH_KINDS:
            raise ConfigError(f"'stream' must be one of {list(DEPTH_KINDS)}, got {stream!r}")
        self.faults.depth_drops[(symbol, stream)] = int(_number(body, "count", None, 1))
        return {"ok": True}

    def _do_stale_snapshot(self, body: dict[str, Any]) -> dict[str, Any]:
        """The next ``count`` /api/v3/depth answers of the symbol: its book ``behind`` 100 ms events ago."""
        symbol = self._symbol(body)
        count, behind = int(_number(body, "count", 1, 1)), int(_number(body, "behind", 50, 1))
        self.faults.stale_snapshots[symbol] = (count, behind)
        return {"ok": True}

    def _do_list(self, body: dict[str, Any]) -> dict[str, Any]:
        """List a symbol (new, or delisted before): TRADING in exchangeInfo, generated from now."""
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
            raise ConfigError(f"'symbol' must be 2-20 of A-Z 0-9, got {symbol!r}")
        self.market.list_symbol(symbol)
        return {"ok": True, "trading": len(self.market.trading())}

    def _do_delist(self, body: dict[str, Any]) -> dict[str, Any]:
        """Delist a symbol: status BREAK in exchangeInfo, nothing more generated for it."""
        self.market.delist(self._symbol(body))
        return {"ok": True, "trading": len(self.market.trading())}

    def _do_pause(self, body: dict[str, Any]) -> dict[str, Any]:
        self.running.clear()
        return {"ok": True}

    def _do_resume(self, body: dict[str, Any]) -> dict[str, Any]:
        self.running.set()
        return {"ok": True}

    def _do_archive(self, body: dict[str, Any]) -> dict[str, Any]:
        """Corrupt a checksum or truncate a zip for its next ``count`` downloads."""
        if self.archive is None:
            raise ConfigError("this simulator serves no archives")
        return self.archive.control(body)

    def _do_shutdown(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send serverShutdown now to every connection and close them ``after`` seconds later."""
        after = _number(body, "after", 1.0, 0.0)
        now_us = time.time_ns() // 1000
        conns = list(self.hub.connections.values())
        for conn in conns:
            conn.send(server_shutdown_frame(now_us, conn.session.combined, conn.micro), data_frame=False)
        loop = asyncio.get_running_loop()
        for conn in conns:
            loop.call_later(after, conn.close, 1001, "Server shutting down")
        return {"ok": True, "connections": len(conns)}

    def stats(self) -> dict[str, Any]:
        """The ``/control/stats`` answer."""
        return {
            "symbols": self.market.stats(),
            "connections": len(self.hub.connections),
            "done": self.market.all_done(),
            "generating": self.running.is_set(),
            "connection_list": [c.describe() for c in self.hub.connections.values()],
            "rest_used_weight": self.limiter.used_now(time.time()),
            "archive_downloads": dict(self.archive.archive.downloads) if self.archive else {},
            "control_messages": self.hub.control_messages,
            "peak_incoming_per_sec": self.hub.peak_incoming_per_sec,
            "rate_limit_closes": self.hub.rate_limit_closes,
            "depth": self.market.depth_stats(),
        }

    def add_routes(self, app: web.Application) -> None:
        """Register GET /control/stats and POST /control/<action>."""
        app.router.add_get("/control/stats", self._stats_handler)
        app.router.add_get("/control/book_tickers", self._book_tickers_handler)
        app.router.add_get("/control/book", self._book_handler)
        app.router.add_post("/control/{action}", self._action_handler)

    async def _stats_handler(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.stats()), content_type="application/json")

    async def _book_tickers_handler(self, request: web.Request) -> web.Response:
        """Every bookTicker generated for ``?symbol=``: its update id and time (ground truth)."""
        state = self.market.symbols.get(request.query.get("symbol", ""))
        if state is None:
            return web.Response(body=orjson.dumps({"error": "unknown symbol"}), status=404,
                                content_type="application/json")
        record = state.book_tickers
        body = {"u": record.update_ids, "time_us": record.times_us, "complete": record.complete}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _book_handler(self, request: web.Request) -> web.Response:
        """The ground-truth book of ``?symbol=`` as of ``?u=`` (an update id) or ``?time_ms=``."""
        state = self.market.symbols.get(request.query.get("symbol", ""))
        moment = {k: request.query[k] for k in ("u", "time_ms") if k in request.query}
        if state is None or len(moment) != 1 or not next(iter(moment.values())).isdigit():
            return _json({"error": "give a known symbol and exactly one of u, time_ms (digits)"}, 400)
        value = int(next(iter(moment.values())))
        book = state.depth.book_at(value) if "u" in moment else state.depth.book_at(time_ms=value)
        if book is None:
            return _json({"error": "no book recorded at that moment"}, 404)
        start = state.depth.start
        return _json({**book_json(book), "recorded_from": None if start is None else start.update_id})

    async def _action_handler(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            answer = self.run(request.match_info["action"], _body(raw))
        except (orjson.JSONDecodeError, ConfigError) as exc:
            return web.Response(
                body=orjson.dumps({"error": str(exc)}), status=400, content_type="application/json"
            )
        return web.Response(body=orjson.dumps(answer), content_type="application/json")
