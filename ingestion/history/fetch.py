"""HTTP side of the history import: verified archive files and REST pages (aiohttp).

Rules:
  1. An archive file is its ``.CHECKSUM`` then its zip; the zip is returned only when its
     SHA-256 matches. A mismatch, a transport error or a 5xx is retried (jittered backoff) up to
     HISTORY_ARCHIVE_ATTEMPTS times, then ``ChecksumMismatch``/``ArchiveError`` names the file.
     A 404 means "not archived (yet)": ``None``, not an error.
  2. REST pages come through ``ingestion.rest.RestClient``, as backfill's do: the same
     REST_WEIGHT_BUDGET_PER_MIN, following the exchange's ``X-MBX-USED-WEIGHT-1M`` so both
     processes share one budget (limits.py Rule 5); 429/418 block it for ``Retry-After``.
  3. Retry policy is data: ``rest.is_retryable`` for REST pages and for archive transport
     errors; an archive 5xx or checksum mismatch (``_Retry``) is retried as well.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date

import aiohttp

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.events import TradeMessage
from binance_pipeline.common.settings import Settings
from ingestion.history.archive import expected_sha256, file_name, verify, zip_path
from ingestion.history.errors import ArchiveError, ChecksumMismatch
from ingestion.rest import PAGE_LIMIT, RestClient, from_id, is_retryable

log = logging.getLogger(__name__)


class _Retry(Exception):
    """One attempt failed in a way worth another try."""


class Fetcher:
    """Archive files from BINANCE_ARCHIVE_URL and REST pages from BINANCE_REST_URL."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._s, self._session = settings, session
        self.rest = RestClient(settings)

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
                if not (isinstance(exc, _Retry) or is_retryable(exc)) or attempt == attempts:
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
        params = {"startTime": str(start_us), "limit": "1"}
        rows = await self.rest.page(self._session, symbol, "aggTrade", params)
        if not rows:
            return None
        return rows[0]["id"] if stream == "aggTrade" else rows[0]["first_id"]

    async def rest_page(self, symbol: str, stream: str, first: int) -> list[TradeMessage]:
        """Up to 1000 rows of ``stream`` from ``first`` (Rule 2-3)."""
        return await self.rest.page(self._session, symbol, stream, from_id(first, PAGE_LIMIT))
