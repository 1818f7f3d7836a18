"""INGESTION_SHARD: three instances split SYMBOLS='*USDT' of one simulated market, each symbol once."""

from __future__ import annotations

import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from binance_pipeline.testing.helpers import Topics, read_all, wait_for
from binance_pipeline.testing.stages import Ingestion, captured_symbols, trading_symbols
from exchange_sim.testing import SimProcess
from tests.ingestion.helpers import id_of
from tests.ingestion.test_universe_live import published_settled, subscribed

SHARDS = 3


def owner(symbol: str) -> int:
    return zlib.crc32(symbol.encode()) % SHARDS + 1


@pytest.mark.slow
def test_three_shards_capture_every_usdt_symbol_exactly_once_listings_included(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], kafka_bootstrap: str, topics: Topics
) -> None:
    """Shards 1/3..3/3 of *USDT: each TRADING USDT pair and a listing has one owner; ids published once."""
    s = sim("--market", "300", "--rate", "20", "--weight-limit", "100000")
    wanted = trading_symbols(s.rest_url, "USDT")
    assert len(wanted) >= 290 and any(not n.endswith("USDT") for n in s.stats()["symbols"])
    shards = [ingestion(s, SYMBOLS="*USDT", INGESTION_SHARD=f"{i}/{SHARDS}", SYMBOLS_REFRESH_S="1",
                        REST_WEIGHT_BUDGET_PER_MIN="6000") for i in range(1, SHARDS + 1)]  # fmt: skip

    def split() -> list[set[str]]:
        return [captured_symbols(ing.health_port) for ing in shards]
    wait_for(lambda: set().union(*split()) == wanted, 30, "every TRADING USDT symbol captured")
    s.control("list", {"symbol": "NEWUSDT"})
    wait_for(lambda: any("NEWUSDT" in part for part in split()), 10, "the listing captured")
    parts = split()
    assert sum(len(p) for p in parts) == len(wanted) + 1  # disjoint: each symbol has one owner
    for index, part in enumerate(parts, start=1):
        assert part and all(owner(symbol) == index for symbol in part)
    assert subscribed(s.stats()) == wanted | {"NEWUSDT"}
    streams = Counter(st for c in s.stats()["connection_list"] for st in c["streams"])
    assert max(streams.values()) == 1  # no stream subscribed by two connections
    time.sleep(2)
    s.control("pause", {})
    for ing in shards:
        wait_for(lambda ing=ing: published_settled(ing), 30, "everything published")
    assert_each_id_once(s.stats(), read_all(kafka_bootstrap, [topics.trades]), wanted | {"NEWUSDT"})
    assert [ing.stop() for ing in shards] == [0] * SHARDS


def assert_each_id_once(stats: dict[str, Any], records: list[Any], symbols: set[str]) -> None:
    """Each (type, symbol) holds each id once, with no hole from its first published id to the last made."""
    ids: dict[tuple[str, str], list[int]] = defaultdict(list)
    for record in records:
        event = record.json()
        ids[(event["type"], event["symbol"])].append(id_of(event))
    assert {symbol for _, symbol in ids} <= symbols
    checked = 0
    for (kind, symbol), got in ids.items():
        assert len(got) == len(set(got)), f"{symbol} {kind}: duplicates"
        last = stats["symbols"][symbol][kind]["last_id"]
        assert sorted(got) == list(range(min(got), last + 1)), f"{symbol} {kind}: a hole or a missing tail"
        checked += 1
    assert checked >= 2 * 20, f"too few streams traded to judge: {checked}"
