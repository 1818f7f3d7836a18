"""The one REST client: its pure parts without sockets, its page fetch against the real simulator."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from binance_pipeline.common.settings import Settings
from binance_pipeline.testing.helpers import wait_for
from exchange_sim.testing import SimProcess
from ingestion.errors import BackfillError, ParseError, RateLimited
from ingestion.limits import WindowBudget
from ingestion.rest import (
    DEFAULT_RETRY_AFTER_S,
    ENDPOINTS,
    RETRY_POLICY,
    Endpoint,
    RestClient,
    from_id,
    is_retryable,
    rate_limited,
    retry_after_s,
)

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("binance_pipeline", "binance_launcher", "dashboard", "db", "ingestion", "consumer")
NOW = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)


# --- Retry-After (Rule 3) -----------------------------------------------------------------------


@pytest.mark.parametrize(("header", "seconds"), [("5", 5.0), (" 120 ", 120.0), ("2.5", 2.5), ("0", 0.0),
                                                 ("-3", 0.0)])  # fmt: skip
def test_retry_after_delta_seconds(header: str, seconds: float) -> None:
    """delta-seconds is read as seconds; a negative delay waits 0."""
    assert retry_after_s(header, NOW, 60.0) == seconds


def test_retry_after_http_date() -> None:
    """An HTTP-date (RFC 9110 IMF-fixdate, and the obsolete RFC 850 form) waits until that time."""
    assert retry_after_s("Wed, 21 Oct 2026 07:28:10 GMT", NOW, 60.0) == 10.0
    assert retry_after_s("Wednesday, 21-Oct-26 07:30:00 GMT", NOW, 60.0) == 120.0
    assert retry_after_s("Wed, 21 Oct 2026 07:28:10 -0000", NOW, 60.0) == 10.0


def test_retry_after_date_in_the_past_waits_nothing() -> None:
    """A date already past gives 0, not a negative wait."""
    assert retry_after_s("Wed, 21 Oct 2026 07:00:00 GMT", NOW, 60.0) == 0.0


GARBAGE = [None, "", "   ", "soon", "nan", "inf", "-inf", "1e999", "Wed, 99 Oct 2026 07:28:10 GMT",
           "Foo, 21 Bar 2026", "12 monkeys"]  # fmt: skip


@pytest.mark.parametrize("header", GARBAGE)
def test_retry_after_absent_or_garbage_gives_the_default(header: str | None) -> None:
    """Absent, empty, non-finite or unreadable values give the default (None for the WebSocket caller)."""
    assert retry_after_s(header, NOW, 60.0) == 60.0
    assert retry_after_s(header, NOW, None) is None


@given(st.text(max_size=40))
def test_retry_after_never_raises_and_never_goes_negative(header: str) -> None:
    """Any header text gives the default or a finite wait of 0 s or more."""
    got = retry_after_s(header, NOW, -1.0)
    assert got == -1.0 or (0.0 <= got < float("inf"))


# --- the budget after a rate limit (Rule 2), clock passed in --------------------------------------


def test_rate_limit_blocks_every_request_until_retry_after() -> None:
    """A 429 with Retry-After 7 at t=100 delays any request until t=107, then none."""
    budget = WindowBudget(6000, 60.0)
    exc = rate_limited(budget, 429, {"Retry-After": "7"}, 100.0, NOW)
    assert isinstance(exc, RateLimited) and exc.retry_after == 7.0 and not exc.banned
    assert budget.delay(1, 100.0) == 7.0 and budget.delay(25, 103.0) == 4.0
    assert budget.delay(1, 107.0) == 0.0


def test_ban_with_an_http_date_blocks_until_that_date() -> None:
    """A 418 whose Retry-After is an HTTP-date two minutes ahead blocks for 120 s."""
    budget = WindowBudget(6000, 60.0)
    until = (NOW + timedelta(minutes=2)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    exc = rate_limited(budget, 418, {"Retry-After": until}, 10.0, NOW)
    assert exc.banned and exc.retry_after == 120.0 and budget.delay(1, 10.0) == 120.0


def test_rate_limit_without_a_readable_retry_after_waits_the_default() -> None:
    """No Retry-After (or garbage) blocks for the default, 60 s."""
    for headers in ({}, {"Retry-After": "later"}):
        budget = WindowBudget(6000, 60.0)
        assert rate_limited(budget, 429, headers, 0.0, NOW).retry_after == DEFAULT_RETRY_AFTER_S
        assert budget.delay(1, 0.0) == DEFAULT_RETRY_AFTER_S


# --- retry policy (Rule 4) ------------------------------------------------------------------------


@pytest.mark.parametrize(("exc", "retry"), [
    (RateLimited(429, 1.0), True), (RateLimited(418, 120.0), True),
    (BackfillError("HTTP 503", 503), True), (BackfillError("HTTP 500", 500), True),
    (BackfillError("HTTP 400", 400), False), (BackfillError("HTTP 404", 404), False),
    (BackfillError("HTTP 503 in the text only"), False),
    (aiohttp.ServerDisconnectedError(), True), (aiohttp.ClientConnectionError("refused"), True),
    (aiohttp.ClientPayloadError("cut short"), True), (TimeoutError(), True),
    (ParseError("not JSON"), False), (ValueError("other"), False),
])  # fmt: skip
def test_is_retryable_by_type_and_status(exc: BaseException, retry: bool) -> None:
    """Transport errors, time-outs, 5xx and 429/418 retry; 4xx, bad bodies and unknown types do not."""
    assert is_retryable(exc) is retry


def test_retry_policy_is_a_table_with_the_rate_limit_before_its_base_class() -> None:
    """The first match wins, so RateLimited must come before BackfillError (whose 4xx is fatal)."""
    kinds = [kind for kind, _ in RETRY_POLICY]
    assert kinds.index(RateLimited) < kinds.index(BackfillError)


# --- the endpoint table (Rule 1) ----------------------------------------------------------------


def test_endpoint_table_has_binance_paths_and_weights() -> None:
    """historicalTrades weighs 25 and aggTrades 4 (docs: binance-streams.md, REST section)."""
    assert ENDPOINTS == {"trade": Endpoint("/api/v3/historicalTrades", 25),
                         "aggTrade": Endpoint("/api/v3/aggTrades", 4)}  # fmt: skip
    assert from_id(7, 1000) == {"fromId": "7", "limit": "1000"} and from_id(None, 1) == {"limit": "1"}


def _product_trees() -> list[tuple[str, ast.Module]]:
    paths = [p for package in PRODUCT for p in sorted((ROOT / package).rglob("*.py"))]
    return [(str(p.relative_to(ROOT)), ast.parse(p.read_text("utf-8"))) for p in paths]


def _where(found: Callable[[ast.AST], bool]) -> list[str]:
    """The product modules with a node ``found`` accepts."""
    return [name for name, tree in _product_trees() if any(found(n) for n in ast.walk(tree))]


def test_one_is_retryable_for_rest_in_the_product() -> None:
    """Only ingestion/rest.py decides REST retries (connection.py's decides WebSocket upgrades)."""
    functions = ast.FunctionDef | ast.AsyncFunctionDef
    defines = _where(lambda n: isinstance(n, functions) and n.name == "is_retryable")
    assert defines == ["ingestion/connection.py", "ingestion/rest.py"]


def test_one_endpoint_table_in_the_product() -> None:
    """The REST paths are string constants in ingestion/rest.py only (docstrings may name them)."""
    paths = {e.path for e in ENDPOINTS.values()}
    assert _where(lambda n: isinstance(n, ast.Constant) and n.value in paths) == ["ingestion/rest.py"]


# --- the page fetch against the simulator (Rules 2 and 5) ---------------------------------------


def _client(sim: SimProcess, answers: list[tuple[str, int]], attempts: int = 3) -> RestClient:
    """Backoff 0.05-0.1 s, then 0.1-0.2 s per retry: n attempts take at least 0.05 + 0.1 (n - 2) s."""
    settings = Settings(binance_rest_url=sim.rest_url, backoff_initial_s=0.1, backoff_max_s=0.2)
    return RestClient(settings, lambda path, status: answers.append((path, status)), attempts=attempts)


async def _pages(client: RestClient, symbol: str, stream: str, firsts: list[int | None]) -> list[Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        return [await client.page(session, symbol, stream, from_id(f, 100)) for f in firsts]


def _ready(sim: Callable[..., SimProcess], *args: str) -> SimProcess:
    s = sim("--max-trades", "1000", "--rate", "20000", *args)
    wait_for(lambda: s.stats()["done"], 30, "history")
    return s


def test_page_returns_rows_from_the_id_asked(sim: Callable[..., SimProcess]) -> None:
    """A page by fromId starts at that id; every answer reaches the on_answer hook."""
    s, answers = _ready(sim), []
    first = s.stats()["symbols"]["BTCUSDT"]["aggTrade"]["first_id"]
    (rows,) = asyncio.run(_pages(_client(s, answers), "BTCUSDT", "aggTrade", [first + 10]))
    assert rows[0]["id"] == first + 10 and len(rows) == 100 and rows[0]["source"] == "rest"
    assert answers == [("/api/v3/aggTrades", 200)]


def test_429_blocks_then_the_pages_come(sim: Callable[..., SimProcess]) -> None:
    """Past the exchange's weight limit the client gets 429, waits Retry-After, and every page arrives."""
    s, answers = _ready(sim, "--weight-limit", "60", "--weight-window", "2", "--ban-after", "100"), []
    first = s.stats()["symbols"]["BTCUSDT"]["trade"]["first_id"]
    pages = asyncio.run(_pages(_client(s, answers), "BTCUSDT", "trade", [first + 100 * i for i in range(5)]))
    assert [p[0]["id"] for p in pages] == [first + 100 * i for i in range(5)]
    assert ("/api/v3/historicalTrades", 429) in answers


def test_a_4xx_is_not_retried(sim: Callable[..., SimProcess]) -> None:
    """An unknown symbol (HTTP 400) fails after one attempt, with the status kept on the cause."""
    s, answers = _ready(sim), []
    with pytest.raises(BackfillError, match=r"after 1 attempt\(s\)") as info:
        asyncio.run(_pages(_client(s, answers), "NOSUCHSYM", "trade", [None]))
    assert isinstance(info.value.__cause__, BackfillError) and info.value.__cause__.status == 400
    assert answers == [("/api/v3/historicalTrades", 400)]


def test_dropped_connections_are_retried_then_reported(sim: Callable[..., SimProcess]) -> None:
    """REST dropping connections: retried with backoff; still down after every attempt, BackfillError."""
    s = _ready(sim)
    s.control("rest_down", {"seconds": 30})
    with pytest.raises(BackfillError, match=r"after 3 attempt\(s\)") as info:
        asyncio.run(_pages(_client(s, []), "BTCUSDT", "trade", [None]))
    assert is_retryable(info.value.__cause__ or ValueError())
    s.control("rest_down", {"seconds": 0.2})  # 5 attempts span at least 0.35 s of backoff
    answers: list[tuple[str, int]] = []
    (rows,) = asyncio.run(_pages(_client(s, answers, attempts=5), "BTCUSDT", "trade", [None]))
    assert rows and answers == [("/api/v3/historicalTrades", 200)]  # dropped requests get no answer
