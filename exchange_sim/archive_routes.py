"""HTTP routes of the daily archives (``/data/spot/daily/...``) and the ``archive`` control action.

Thin shell over archive.py: it maps a request path onto a cached or freshly built day and
answers; what the files contain is decided there.

Rule 1: a file that does not exist (unknown symbol, incomplete day, a day with no trades) is
        404, as on data.binance.vision; every answer to an archive path is counted.
Rule 2: a bad ``archive`` control body is a ConfigError (400) and arms nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from exchange_sim.archive import FAULTS, KINDS, PATH_RE, Archive, day_rows, is_complete
from exchange_sim.errors import ConfigError
from exchange_sim.market import Market

_STREAM_OF = {v: k for k, v in KINDS.items()}


class ArchiveApi:
    """Serves the archive of ``market`` (synthetic seeded days plus complete history days)."""

    def __init__(self, market: Market, archive: Archive) -> None:
        self.market, self.archive = market, archive

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/data/spot/daily/{kind}/{symbol}/{name}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        match = PATH_RE.match(request.path)
        zip_bytes = None if match is None else self._zip(match)
        if zip_bytes is None:
            self.archive.downloads[request.path] += 1
            return web.Response(status=404, text="Not Found")
        body = self.archive.serve(request.path, zip_bytes)
        ctype = "text/plain" if request.path.endswith(".CHECKSUM") else "application/zip"
        return web.Response(body=body, content_type=ctype)

    def _zip(self, match: Any) -> bytes | None:
        kind, symbol = _STREAM_OF[match.group(1)], match.group(2)
        cached = self.archive.zips.get(match.group(0).removesuffix(".CHECKSUM"))
        state = self.market.symbols.get(symbol)
        if cached is not None or state is None:
            return cached
        try:
            day = date.fromisoformat(match.group(3))
        except ValueError:
            return None
        series = state.trades if kind == "trade" else state.aggs
        if not is_complete(series, day, state.done) or not day_rows(series, day):
            return None
        return self.archive.cache_day(kind, symbol, day, series)

    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /control/archive {"fault", "symbol", "stream", "date", "count"}``."""
        fault, stream = body.get("fault"), body.get("stream", "aggTrade")
        if fault not in FAULTS:
            raise ConfigError(f"'fault' must be one of {list(FAULTS)}, got {fault!r}")
        if stream not in KINDS:
            raise ConfigError(f"'stream' must be one of {list(KINDS)}, got {stream!r}")
        symbol, count = body.get("symbol"), body.get("count", 1)
        if not isinstance(symbol, str) or symbol not in self.market.symbols:
            raise ConfigError(f"'symbol' must be one of {sorted(self.market.symbols)}, got {symbol!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"'count' must be an integer >= 1, got {count!r}")
        try:
            day = date.fromisoformat(str(body.get("date")))
        except ValueError as exc:
            raise ConfigError(f"'date' must be YYYY-MM-DD, got {body.get('date')!r}") from exc
        return {"ok": True, "path": self.archive.set_fault(str(fault), str(stream), symbol, day, count)}
