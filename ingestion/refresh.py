"""The I/O shell of ingestion.universe: fetch exchangeInfo, resolve SYMBOLS, keep it current.

Rules:
  1. At start, patterns in SYMBOLS are resolved before any connection opens; a failed fetch is
     retried with backoff (capture cannot start without knowing what to capture).
  2. Every SYMBOLS_REFRESH_S the universe is resolved again and the change (ingestion.universe)
     is applied through ``Supervisor.apply_placement``: no reconnect, streams that stay untouched.
  3. A failed refresh leaves the universe as it is and is tried again at the next interval
     (one policy for every failure: transport error, HTTP status, malformed answer).
  4. exchangeInfo weighs 20; once a minute is 0.3% of the 6,000-per-minute budget.
  5. With INGESTION_SHARD I/N, the resolved symbols (at start and at every refresh) are cut to
     the ones this instance owns (ingestion.shard), exact names too: a listing reaches its owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.settings import Settings
from ingestion.errors import UniverseError
from ingestion.shard import Shard
from ingestion.supervisor import Supervisor
from ingestion.universe import diff, needs_exchange_info, parse_exchange_info, place, resolve, stream_names

log = logging.getLogger(__name__)


async def fetch_statuses(settings: Settings) -> dict[str, str]:
    """symbol -> status from GET /api/v3/exchangeInfo; raises UniverseError."""
    timeout = aiohttp.ClientTimeout(total=settings.rest_timeout_s)
    try:
        async with aiohttp.ClientSession(settings.binance_rest_url, timeout=timeout) as session, \
                session.get("/api/v3/exchangeInfo") as resp:
            body = await resp.read()
            if resp.status != 200:
                raise UniverseError(f"exchangeInfo: HTTP {resp.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UniverseError(f"exchangeInfo: {exc!r}") from exc
    return parse_exchange_info(body)


async def resolve_settings(settings: Settings, stop: asyncio.Event) -> Settings | None:
    """``settings`` with SYMBOLS resolved to the exact symbols this instance owns (Rules 1, 5);
    None if stopped first."""
    shard = Shard.parse(settings.ingestion_shard)
    if not needs_exchange_info(settings.symbols):
        return settings if shard.whole else _owned(settings, list(settings.symbols), shard)
    backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
    while not stop.is_set():
        try:
            symbols = resolve(settings.symbols, await fetch_statuses(settings))
        except UniverseError as exc:
            delay = backoff.next_delay()
            log.warning("cannot resolve SYMBOLS %s (%s); retrying in %.1f s",
                        ",".join(settings.symbols), exc, delay)  # fmt: skip
            await asyncio.sleep(delay)
            continue
        log.info("SYMBOLS %s: %d symbols TRADING", ",".join(settings.symbols), len(symbols))
        return _owned(settings, symbols, shard)
    return None


def _owned(settings: Settings, symbols: list[str], shard: Shard) -> Settings:
    mine = shard.select(symbols)
    if not shard.whole:
        log.info("INGESTION_SHARD %s: this instance owns %d of the %d symbols", shard, len(mine),
                 len(symbols))  # fmt: skip
    return settings.model_copy(update={"symbols": tuple(mine)})


class UniverseRefresher:
    """Periodic refresh of the captured symbols (Rule 2); ``run`` returns only when cancelled."""

    def __init__(self, settings: Settings, entries: Sequence[str], supervisor: Supervisor) -> None:
        self._s, self._entries, self._supervisor = settings, tuple(entries), supervisor
        self._shard = Shard.parse(settings.ingestion_shard)
        self.symbols = list(settings.symbols)  # what is captured now (read by the metrics)

    async def run(self) -> None:
        if not needs_exchange_info(self._entries):
            return
        while True:
            await asyncio.sleep(self._s.symbols_refresh_s)
            try:
                statuses = await fetch_statuses(self._s)
            except UniverseError as exc:
                log.warning("symbol refresh failed (%s); next try in %g s", exc, self._s.symbols_refresh_s)
                continue
            await self.apply(self._shard.select(resolve(self._entries, statuses)))  # Rule 5

    async def apply(self, wanted: list[str]) -> None:
        """Move the supervisor's connections from the current symbols to ``wanted``."""
        change = diff(self.symbols, wanted)
        if not change:
            return
        types = self._s.stream_types
        placement = place(self._supervisor.streams_by_slot(), stream_names(change.added, types),
                          stream_names(change.removed, types), self._s.ws_max_streams_per_connection)
        log.info("symbols: +%d %s, -%d %s", len(change.added), ",".join(change.added[:10]),
                 len(change.removed), ",".join(change.removed[:10]))  # fmt: skip
        await self._supervisor.apply_placement(placement)
        self.symbols = wanted
