"""SYMBOLS='*USDT' against the simulator: listings and delistings while capture runs."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from binance_pipeline.testing.helpers import Topics, read_all, wait_for
from binance_pipeline.testing.stages import Ingestion
from exchange_sim.testing import SimProcess
from tests.ingestion.helpers import assert_complete, events_by_type, id_of

ALL = ("trade", "aggTrade", "bookTicker")
REFRESH_S = 1.0


def streams_of(stats: dict[str, Any]) -> list[list[str]]:
    return [c["streams"] for c in stats["connection_list"]]


def subscribed(stats: dict[str, Any]) -> set[str]:
    return {s.split("@")[0].upper() for streams in streams_of(stats) for s in streams}


@pytest.mark.slow
def test_usdt_pattern_follows_listings_and_delistings(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], kafka_bootstrap: str, topics: Topics
) -> None:
    """*USDT subscribes every TRADING USDT pair; a listing streams within the refresh, a delisting stops."""
    s = sim("--symbols", "BTCUSDT,ETHUSDT,BNBUSDT,SOLUSDT,ETHBTC", "--rate", "150", "--start-delay", "1")
    ing = ingestion(s, SYMBOLS="*USDT", SYMBOLS_REFRESH_S=str(REFRESH_S), WS_MAX_STREAMS_PER_CONNECTION="6",
                    WS_STALL_TIMEOUT_S="60")
    wait_for(lambda: subscribed(s.stats()) == {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"}, 20,
             "every TRADING USDT symbol subscribed")
    wait_for(lambda: ing.metric("ingestion_events_received") > 500, 20, "events flowing")
    listed_at = time.time()
    s.control("list", {"symbol": "NEWUSDT"})
    s.control("list", {"symbol": "NEXTUSDT"})
    s.control("delist", {"symbol": "BNBUSDT"})
    wait_for(lambda: subscribed(s.stats()) == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "NEWUSDT", "NEXTUSDT"},
             REFRESH_S + 5, "the listing and delisting applied")
    time.sleep(2)
    s.control("pause", {})
    stats = s.stats()
    assert all(len(streams) <= 6 for streams in streams_of(stats)) and len(streams_of(stats)) == 3
    assert stats["rate_limit_closes"] == 0 and 0 < stats["peak_incoming_per_sec"] <= 5
    assert stats["control_messages"] >= 2  # UNSUBSCRIBE + SUBSCRIBE into the freed room (+ a new slot)
    wait_for(lambda: published_settled(ing), 30, "everything published")
    records = read_all(kafka_bootstrap, [topics.trades, topics.book_ticker])
    stayed = {k: v for k, v in stats["symbols"].items() if k in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")}
    assert_complete({"symbols": stayed}, records, ALL)  # no loss, no duplicate on the streams that stay
    grouped = events_by_type(records)
    assert not any(symbol == "ETHBTC" for _, symbol in grouped)
    for kind in ("trade", "aggTrade"):
        ids = [id_of(e) for e in grouped[(kind, "NEWUSDT")]]
        assert not [i for i, n in Counter(ids).items() if n > 1]
        assert sorted(ids) == list(range(min(ids), stats["symbols"]["NEWUSDT"][kind]["last_id"] + 1))
    first_new = min(e["received_at"] for e in grouped[("trade", "NEWUSDT")]) / 1e6
    assert first_new - listed_at < REFRESH_S + 2.0
    assert ing.metric("ingestion_reconnects") == 0
    assert ing.stop() == 0


def published_settled(ing: Ingestion) -> bool:
    """True once the published count stops moving for a second (the simulator is paused)."""
    before = ing.metric("ingestion_events_published")
    time.sleep(1.0)
    return before > 0 and ing.metric("ingestion_events_published") == before
