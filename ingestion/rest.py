"""One Binance REST client for backfill, the history import and the audit repair (aiohttp).

It owns what every REST caller shares: the endpoint table, the request-weight budget, the
reading of ``Retry-After``, the retry policy and the page fetch. The first four are pure (values
and a clock in, values out); ``RestClient`` is the thin shell that sends the requests. It never
decides which ids to fetch, never publishes, and never opens a session of its own (the caller's
session is passed to ``page``).

Rules:
  1. ``ENDPOINTS`` is the only table of REST paths and request weights per stream.
  2. One ``WindowBudget`` per client, spent before every request (REST_WEIGHT_BUDGET_PER_MIN per
     60 s) and fed the exchange's ``X-MBX-USED-WEIGHT-1M`` (limits.py Rule 5). A 429 or 418
     blocks every request of the client until its ``Retry-After`` has passed (``rate_limited``).
  3. ``retry_after_s`` reads both forms of RFC 9110 section 10.2.3, delta-seconds and an
     HTTP-date (against the wall clock passed in). Absent or unreadable gives the default; a
     negative delay or a date already past gives 0.
  4. Retry policy is data: ``RETRY_POLICY`` maps exception types to a decision and
     ``is_retryable`` only looks it up. Transport errors, time-outs, bodies cut short, 5xx and
     429/418 are retried; other statuses and bad bodies (``ParseError``) are not. Decided by type
     and ``status``, never by message text.
  5. ``page`` makes at most ``attempts`` tries, sleeping the jittered backoff between them (the
     ``Retry-After`` for a rate limit); the last failure leaves as ``BackfillError`` "<cause>
     after N attempt(s)", raised ``from`` the cause.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import TypeVar

import aiohttp

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.clock import now_us
from binance_pipeline.common.events import TradeMessage
from binance_pipeline.common.settings import Settings
from ingestion.errors import BackfillError, RateLimited
from ingestion.limits import WEIGHT_WINDOW_S, WindowBudget, acquire, observe_used_weight
from ingestion.parse import parse_rest_rows

log = logging.getLogger(__name__)
D = TypeVar("D", float, None)


@dataclass(frozen=True)
class Endpoint:
    path: str
    weight: int  # request weight, as Binance counts it


ENDPOINTS: Mapping[str, Endpoint] = {  # Rule 1
    "trade": Endpoint("/api/v3/historicalTrades", 25),
    "aggTrade": Endpoint("/api/v3/aggTrades", 4),
}
PAGE_LIMIT = 1000  # rows per page, Binance's maximum
ATTEMPTS = 5  # tries per page (Rule 5)
DEFAULT_RETRY_AFTER_S = 60.0  # a 429/418 without a readable Retry-After
SLOW_BUDGET_S = 1.0  # a wait for the weight budget longer than this is logged
OnAnswer = Callable[[str, int], None]  # endpoint path, HTTP status


def retry_after_s(header: str | None, now: datetime, default: D) -> float | D:
    """Rule 3: seconds to wait from a ``Retry-After`` value received at ``now`` (aware, UTC)."""
    text = (header or "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        return _until_date(text, now, default)
    return max(0.0, seconds) if math.isfinite(seconds) else default


def _until_date(text: str, now: datetime, default: D) -> float | D:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return default
    if when.tzinfo is None:  # "-0000": UTC, origin unknown (RFC 5322); HTTP-dates are GMT anyway
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def rate_limited(
    budget: WindowBudget, status: int, headers: Mapping[str, str], now: float, wall: datetime
) -> RateLimited:
    """Rule 2: block ``budget`` (monotonic ``now``) until Retry-After has passed; the error to raise."""
    wait = retry_after_s(headers.get("Retry-After"), wall, DEFAULT_RETRY_AFTER_S)
    budget.block_until(now + wait)
    return RateLimited(status, wait)


class Decision(Enum):
    RETRY = "retry"
    BY_STATUS = "retry a 5xx only"  # the server answered: its status decides
    FATAL = "fatal"


RETRY_POLICY: tuple[tuple[type[BaseException], Decision], ...] = (  # Rule 4; first match wins
    (RateLimited, Decision.RETRY),  # 429/418: wait Retry-After (Rule 2), then again
    (BackfillError, Decision.BY_STATUS),  # no status (bad body or no answer) is fatal too
    (aiohttp.ClientConnectionError, Decision.RETRY),  # refused, reset, disconnected, socket time-out
    (aiohttp.ClientPayloadError, Decision.RETRY),  # a body cut short
    (TimeoutError, Decision.RETRY),  # the request's total time-out
)
RETRY_STATUSES = range(500, 600)


def is_retryable(exc: BaseException) -> bool:
    """Rule 4: the decision ``RETRY_POLICY`` gives ``exc`` (unknown types are fatal)."""
    decision = next((d for kind, d in RETRY_POLICY if isinstance(exc, kind)), Decision.FATAL)
    if decision is Decision.BY_STATUS:
        return getattr(exc, "status", None) in RETRY_STATUSES
    return decision is Decision.RETRY


def from_id(first: int | None, limit: int) -> dict[str, str]:
    """Parameters of a page of ``limit`` rows from id ``first`` (None: the most recent rows)."""
    params = {"limit": str(limit)}
    if first is not None:
        params["fromId"] = str(first)
    return params


class RestClient:
    """Pages of trades or aggTrades from BINANCE_REST_URL within one weight budget (Rules 1-5)."""

    def __init__(
        self, settings: Settings, on_answer: OnAnswer | None = None, attempts: int = ATTEMPTS
    ) -> None:
        self._s, self._attempts = settings, attempts
        self._on_answer: OnAnswer = on_answer or (lambda *_: None)
        self.budget = WindowBudget(settings.rest_weight_budget_per_min, WEIGHT_WINDOW_S)
        self._headers = {"X-MBX-TIME-UNIT": "MICROSECOND"}
        if settings.binance_api_key is not None:
            self._headers["X-MBX-APIKEY"] = settings.binance_api_key.get_secret_value()

    async def page(
        self, session: aiohttp.ClientSession, symbol: str, stream: str, params: Mapping[str, str]
    ) -> list[TradeMessage]:
        """One page of ``stream`` rows, retried (Rule 5); raises BackfillError or ParseError."""
        backoff = Backoff(self._s.backoff_initial_s, self._s.backoff_max_s)
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._request(session, symbol, stream, params)
            except (BackfillError, aiohttp.ClientError, TimeoutError) as exc:
                if not is_retryable(exc) or attempt == self._attempts:
                    raise BackfillError(f"{exc!r} after {attempt} attempt(s)") from exc
                delay = exc.retry_after if isinstance(exc, RateLimited) else backoff.next_delay()
                log.warning("REST %s %s %s: %r; retry %d/%d in %.1f s", symbol, stream, dict(params), exc,
                            attempt + 1, self._attempts, delay)  # fmt: skip
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _request(
        self, session: aiohttp.ClientSession, symbol: str, stream: str, params: Mapping[str, str]
    ) -> list[TradeMessage]:
        endpoint = ENDPOINTS[stream]
        await self._spend(endpoint.weight)
        url = self._s.binance_rest_url + endpoint.path
        async with session.get(url, params={"symbol": symbol, **params}, headers=self._headers) as resp:
            body = await resp.read()
            self._on_answer(endpoint.path, resp.status)
            observe_used_weight(self.budget, resp.headers)
            if resp.status in (418, 429):
                now, wall = time.monotonic(), datetime.now(UTC)
                raise rate_limited(self.budget, resp.status, resp.headers, now, wall)
            if resp.status != 200:
                raise BackfillError(f"HTTP {resp.status}: {body[:200]!r}", resp.status)
        return parse_rest_rows(stream, symbol, body, now_us())

    async def _spend(self, weight: int) -> None:
        waited = await acquire(self.budget, weight)
        if waited > SLOW_BUDGET_S:
            log.info("REST waited %.1f s for the weight budget", waited)
