"""REST API over the market's history: Binance's public trade endpoints.

Owns parameter validation (Binance's error codes and messages), request weights and the
``X-MBX-USED-WEIGHT-1M`` header. Queries themselves live in history.py.

Rule 1: the weight of a request is charged before its parameters are checked (as Binance
        does), and every /api answer carries ``X-MBX-USED-WEIGHT-1M``.
Rule 2: a request with an unknown, duplicated, empty or malformed parameter is answered 400
        with ``{"code": ..., "msg": ...}`` and never with partial data.
Rule 4: ``/api/v3/depth`` weighs by its ``limit`` (1-100: 5, 101-500: 25, 501-1000: 50,
        1001-5000: 250; default 100; an unreadable limit weighs as the default, one past 5000 as
        5000) and is charged before its parameters are checked, like every endpoint (Rule 1).
        It serves the live book with its ``lastUpdateId`` (synthetic), a replayed recording's
        latest inline snapshot (replay), or, under the stale_snapshot fault, an older book.
Rule 3: times in and out are milliseconds, or microseconds when the request carries
        ``X-MBX-TIME-UNIT: MICROSECOND``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from exchange_sim.book import OrderBook
from exchange_sim.depth import book_json
from exchange_sim.errors import RateLimitedError, RequestError
from exchange_sim.faults import Faults
from exchange_sim.history import Row
from exchange_sim.market import Market, tick_string
from exchange_sim.ratelimit import WeightLimiter
from exchange_sim.units import quote_qty

SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
DIGITS_RE = re.compile(r"^[0-9]{1,20}$")
WEIGHTS = {"ping": 1, "time": 1, "exchangeInfo": 20, "trades": 25, "historicalTrades": 25, "aggTrades": 4}
ALLOWED = {
    "ping": set(),
    "time": set(),
    "exchangeInfo": {"symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"},
    "trades": {"symbol", "limit"},
    "historicalTrades": {"symbol", "limit", "fromId"},
    "aggTrades": {"symbol", "limit", "fromId", "startTime", "endTime"},
    "depth": {"symbol", "limit"},
}
DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))  # (limit up to, weight), Rule 4
DEPTH_MAX = 5000


def depth_weight(limit: int) -> int:
    """The request weight of ``/api/v3/depth`` for ``limit`` (Rule 4)."""
    return next((weight for top, weight in DEPTH_WEIGHTS if limit <= top), DEPTH_WEIGHTS[-1][1])


def request_weight(name: str, query: MultiMapping[str]) -> int:
    """The weight charged for a request to ``name``, before its parameters are checked (Rule 1)."""
    if name != "depth":
        return WEIGHTS[name]
    text = query.get("limit", "")
    return depth_weight(int(text) if DIGITS_RE.match(text) else 100)


class Params:
    """Validated access to a request's query parameters."""

    def __init__(self, query: MultiMapping[str], allowed: set[str]) -> None:
        keys = [key for key, _ in query.items()]
        if len(keys) != len(set(keys)):
            raise RequestError(-1101, "Duplicate values for a parameter detected.")
        unread = [k for k in keys if k not in allowed]
        if unread:
            raise RequestError(
                -1104,
                f"Not all sent parameters were read; read '{len(keys) - len(unread)}' "
                f"parameter(s) but was sent '{len(keys)}'.",
            )
        self.query = query

    def symbol(self, market: Market) -> str:
        """The mandatory, existing ``symbol``."""
        value = self.query.get("symbol", "")
        if not value:
            raise RequestError(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        if not SYMBOL_RE.match(value):
            raise RequestError(
                -1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."
            )
        if value not in market.symbols:
            raise RequestError(-1121, "Invalid symbol.")
        return value

    def integer(self, name: str) -> int | None:
        """An optional non-negative integer parameter."""
        value = self.query.get(name)
        if value is None:
            return None
        if value == "":
            raise RequestError(
                -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            )
        if not DIGITS_RE.match(value):
            raise RequestError(
                -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
            )
        return int(value)

    def limit(self) -> int:
        """``limit``: default 500, 1..1000."""
        value = self.integer("limit")
        if value is None:
            return 500
        if not 1 <= value <= 1000:
            raise RequestError(
                -1100, "Illegal characters found in parameter 'limit'; legal range is '1-1000'."
            )
        return value


def trade_json(row: Row, micro: bool) -> dict[str, Any]:
    """A /trades or /historicalTrades row."""
    tid, price, qty, quote, time_us, maker, best = row
    return {
        "id": tid,
        "price": price,
        "qty": qty,
        "quoteQty": quote or quote_qty(price, qty),
        "time": time_us if micro else time_us // 1000,
        "isBuyerMaker": maker,
        "isBestMatch": best,
    }


def agg_json(row: Row, micro: bool) -> dict[str, Any]:
    """An /aggTrades row (the stream's letters)."""
    a, price, qty, first, last, time_us, maker, best = row
    return {
        "a": a,
        "p": price,
        "q": qty,
        "f": first,
        "l": last,
        "T": time_us if micro else time_us // 1000,
        "m": maker,
        "M": best,
    }


class RestApi:
    """Handlers of /api/v3/*."""

    def __init__(self, market: Market, limiter: WeightLimiter, faults: Faults | None = None) -> None:
        self.market = market
        self.limiter = limiter
        self.faults = faults or Faults()

    def add_routes(self, app: web.Application) -> None:
        """Register every endpoint."""
        routes: dict[str, Callable[[Params, bool], Any]] = {
            "ping": lambda p, m: {},
            "time": self._time,
            "exchangeInfo": self._exchange_info,
            "trades": self._trades,
            "historicalTrades": self._historical,
            "aggTrades": self._aggs,
            "depth": self._depth,
        }
        for name, fn in routes.items():
            app.router.add_get(f"/api/v3/{name}", self._endpoint(name, fn))

    def _endpoint(self, name: str, fn: Callable[[Params, bool], Any]) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            if self.faults.rest_down(time.monotonic()) and request.transport is not None:
                request.transport.abort()  # REST unreachable: the connection drops, no answer
                return web.Response(status=503)
            now = time.time()
            try:
                self.limiter.charge(request_weight(name, request.query), now)
                micro = request.headers.get("X-MBX-TIME-UNIT", "").upper() == "MICROSECOND"
                status, body, extra = 200, fn(Params(request.query, ALLOWED[name]), micro), {}
            except RateLimitedError as exc:
                status, body, extra = (
                    exc.status,
                    {"code": exc.code, "msg": exc.msg},
                    {"Retry-After": str(exc.retry_after)},
                )
            except RequestError as exc:
                status, body, extra = exc.status, {"code": exc.code, "msg": exc.msg}, {}
            headers = {"X-MBX-USED-WEIGHT-1M": str(self.limiter.used_now(now)), **extra}
            return web.Response(
                body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
            )

        return handler

    def _time(self, params: Params, micro: bool) -> dict[str, int]:
        return {"serverTime": time.time_ns() // (1000 if micro else 1_000_000)}

    def _trades(self, params: Params, micro: bool) -> list[dict[str, Any]]:
        state = self.market.symbols[params.symbol(self.market)]
        return [trade_json(r, micro) for r in state.trades.recent(params.limit())]

    def _historical(self, params: Params, micro: bool) -> list[dict[str, Any]]:
        state = self.market.symbols[params.symbol(self.market)]
        limit, from_id = params.limit(), params.integer("fromId")
        rows = state.trades.recent(limit) if from_id is None else state.trades.from_id(from_id, limit)
        return [trade_json(r, micro) for r in rows]

    def _aggs(self, params: Params, micro: bool) -> list[dict[str, Any]]:
        state = self.market.symbols[params.symbol(self.market)]
        limit, from_id = params.limit(), params.integer("fromId")
        start, end = params.integer("startTime"), params.integer("endTime")
        if from_id is not None and (start is not None or end is not None):
            raise RequestError(-1128, "Combination of optional parameters invalid.")
        if from_id is not None:
            rows = state.aggs.from_id(from_id, limit)
        elif start is None and end is None:
            rows = state.aggs.recent(limit)
        else:
            scale = 1 if micro else 1000
            rows = state.aggs.time_range(
                None if start is None else start * scale,
                None if end is None else end * scale + (scale - 1),
                limit,
            )
        return [agg_json(r, micro) for r in rows]

    def _depth(self, params: Params, micro: bool) -> dict[str, Any]:
        """An order book snapshot (Rule 4)."""
        value = params.integer("limit")
        limit = 100 if value is None else value
        if not 1 <= limit <= DEPTH_MAX:
            raise RequestError(
                -1100, f"Illegal characters found in parameter 'limit'; legal range is '1-{DEPTH_MAX}'."
            )
        state = self.market.symbols[params.symbol(self.market)]
        behind = self.faults.stale_snapshot(state.spec.symbol)
        book = state.snapshot if state.snapshot is not None else state.book
        if behind is not None and state.depth.diffs:
            _, _, old_u, _, _ = state.depth.diffs[max(len(state.depth.diffs) - 1 - behind, 0)]
            book = state.depth.book_at(old_u)
        return book_json(book or OrderBook(), limit)

    def _exchange_info(self, params: Params, micro: bool) -> dict[str, Any]:
        names = list(self.market.symbols)
        if "symbol" in params.query:
            names = [params.symbol(self.market)]
        elif "symbols" in params.query:
            names = self._symbol_list(params.query["symbols"])
        return {
            "timezone": "UTC",
            "serverTime": time.time_ns() // 1_000_000,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.limiter.limit,
                }
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(n) for n in names],
        }

    def _symbol_list(self, text: str) -> list[str]:
        try:
            names = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise RequestError(
                -1100,
                "Illegal characters found in parameter 'symbols'; legal range is a JSON array of symbols.",
            ) from exc
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RequestError(-1100, "Illegal characters found in parameter 'symbols'.")
        if any(n not in self.market.symbols for n in names):
            raise RequestError(-1121, "Invalid symbol.")
        return names

    def _symbol_info(self, name: str) -> dict[str, Any]:
        spec = self.market.symbols[name].spec
        base, quote = spec.base_quote
        return {
            "symbol": name,
            "status": self.market.symbols[name].status,
            "baseAsset": base,
            "baseAssetPrecision": 8,
            "quoteAsset": quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"],
            "isSpotTradingAllowed": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": tick_string(spec.tick),
                    "maxPrice": "1000000.00000000",
                    "tickSize": tick_string(spec.tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": tick_string(spec.lot),
                    "maxQty": "9000.00000000",
                    "stepSize": tick_string(spec.lot),
                },
            ],
        }
