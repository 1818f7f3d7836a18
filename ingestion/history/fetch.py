"""HTTP side of the history import: verified archive files and REST pages (aiohttp).

Rules:
  1. An archive file is its ``.CHECKSUM`` then its zip; the zip is returned only when its
     SHA-256 matches. A mismatch, a transport error or a 5xx is retried (jittered backoff) up to
     HISTORY_ARCHIVE_ATTEMPTS times, then ``ChecksumMismatch``/``ArchiveError`` names the file.
     A 404 means "not archived (yet)": ``None``, not an error.
  2. REST requests spend the same REST_WEIGHT_BUDGET_PER_MIN as live ingestion and follow the
     exchange's ``X-MBX-USED-WEIGHT-1M``, so both processes share one budget (limits.py Rule 5);
     429/418 block the budget for ``Retry-After``.
  3. Retry policy is data: ``is_retryable``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date

import aiohttp

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.events import TradeMessage
from binance_pipeline.common.settings import Settings
from ingestion.errors import BackfillError, RateLimited
from ingestion.history.archive import expected_sha256, file_name, verify, zip_path
from ingestion.history.errors import ArchiveError, ChecksumMismatch
from ingestion.limits import WEIGHT_WINDOW_S, WindowBudget, acquire, observe_used_weight
from ingestion.parse import parse_rest_rows

log = logging.getLogger(__name__)
ENDPOINTS = {"trade": ("/api/v3/historicalTrades", 25), "aggTrade": ("/api/v3/aggTrades", 4)}
PAGE_LIMIT = 1000
REST_ATTEMPTS = 5


class _Retry(Exception):
    """One attempt failed in a way worth another try."""


def is_retryable(exc: BaseException) -> bool:
    """Checksum mismatches, transport errors, timeouts, 5xx and rate limits are retried."""
    if isinstance(exc, _Retry | RateLimited | aiohttp.ClientConnectionError | TimeoutError):
        return True
    return isinstance(exc, aiohttp.ClientPayloadError)


class Fetcher:
    """Archive files from BINANCE_ARCHIVE_URL and REST pages from BINANCE_REST_URL."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._s, self._session = settings, session
        self.budget = WindowBudget(settings.rest_weight_budget_per_min, WEIGHT_WINDOW_S)
        self._headers = {"X-MBX-TIME-UNIT": "MICROSECOND"}
        if settings.binance_api_key is not None:
            self._headers["X-MBX-APIKEY"] = settings.binance_api_key.get_secret_value()

    async def _get(self, url: str) -> bytes | None:
        async with self._session.get(url) as resp:
            if resp.status == 404:
                return None
            body = await resp.read()
            if resp.status >= 500:
                raise _Retry(f"HTTP {resp.status}")
            if resp.status != 200:
                raise ArchiveError(url.rsplit("/", 1)[1], f"HTTP {resp.status}")
            return body

    async def _attempt(self, url: str, name: str) -> bytes | None:
        checksum = await self._get(url + ".CHECKSUM")
        if checksum is None:
            return None
        data = await self._get(url)
        if data is None:
            return None
        if not verify(data, expected_sha256(checksum, name)):
            raise _Retry(f"SHA-256 of {name} ({len(data)} bytes) differs from {name}.CHECKSUM")
        return data

    async def archive_file(self, stream: str, symbol: str, day: date) -> bytes | None:
        """Rule 1: the verified zip of one day, or None when it is not archived."""
        name = file_name(stream, symbol, day)
        url = self._s.binance_archive_url + zip_path(stream, symbol, day)
        backoff = Backoff(self._s.backoff_initial_s, self._s.backoff_max_s)
        attempts = self._s.history_archive_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await self._attempt(url, name)
            except (_Retry, aiohttp.ClientError, TimeoutError) as exc:
                if not is_retryable(exc) or attempt == attempts:
                    mismatch = isinstance(exc, _Retry) and "SHA-256" in str(exc)
                    kind = ChecksumMismatch if mismatch else ArchiveError
                    raise kind(name, f"{exc} (after {attempt} attempt(s))") from exc
                delay = backoff.next_delay()
                log.warning("archive %s: %s; retry %d/%d in %.1f s", name, exc, attempt + 1, attempts, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def first_id_at(self, symbol: str, stream: str, start_us: int) -> int | None:
        """The first ``stream`` id traded at or after ``start_us`` (aggTrades by startTime:
        ``a``, or ``f`` for trades), None when nothing traded since."""
        rows = await self._retrying(symbol, "aggTrade", {"startTime": str(start_us), "limit": "1"})
        if not rows:
            return None
        return rows[0]["id"] if stream == "aggTrade" else rows[0]["first_id"]

    async def rest_page(self, symbol: str, stream: str, from_id: int) -> list[TradeMessage]:
        """Up to 1000 rows of ``stream`` from ``from_id`` (Rule 2-3)."""
        return await self._retrying(symbol, stream, {"fromId": str(from_id), "limit": str(PAGE_LIMIT)})

    async def _retrying(self, symbol: str, stream: str, params: dict[str, str]) -> list[TradeMessage]:
        backoff = Backoff(self._s.backoff_initial_s, self._s.backoff_max_s)
        for attempt in range(1, REST_ATTEMPTS + 1):
            try:
                return await self._rest_request(symbol, stream, params)
            except (_Retry, RateLimited, aiohttp.ClientError, TimeoutError) as exc:
                if not is_retryable(exc) or attempt == REST_ATTEMPTS:
                    raise BackfillError(f"REST {symbol} {stream} {params}: {exc!r}") from exc
                delay = exc.retry_after if isinstance(exc, RateLimited) else backoff.next_delay()
                log.warning("REST %s %s %s: %r; retry in %.1f s", symbol, stream, params, exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _rest_request(self, symbol: str, stream: str, params: dict[str, str]) -> list[TradeMessage]:
        path, weight = ENDPOINTS[stream]
        await acquire(self.budget, weight)
        url = self._s.binance_rest_url + path
        async with self._session.get(url, params={"symbol": symbol, **params}, headers=self._headers) as resp:
            body = await resp.read()
            observe_used_weight(self.budget, resp.headers)
            if resp.status in (418, 429):
                retry_after = float(resp.headers.get("Retry-After", "60"))
                self.budget.block_until(time.monotonic() + retry_after)
                raise RateLimited(resp.status, retry_after)
            if resp.status >= 500:
                raise _Retry(f"HTTP {resp.status}")
            if resp.status != 200:
                raise BackfillError(f"HTTP {resp.status}: {body[:200]!r}")
        return parse_rest_rows(stream, symbol, body, time.time_ns() // 1000)
