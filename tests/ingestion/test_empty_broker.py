"""Ingestion against a broker replaced by an empty one: topics recreated, ready again, no hole."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient

from binance_pipeline.common.settings import Settings
from binance_pipeline.testing.brokers import PrivateKafka
from binance_pipeline.testing.helpers import Topics, read_all, wait_for
from binance_pipeline.testing.stages import start_ingestion
from exchange_sim.testing import SimProcess
from ingestion.errors import FrontierError
from ingestion.frontier_store import load_frontier
from tests.ingestion.helpers import events_by_type

pytestmark = [pytest.mark.slow, pytest.mark.private_broker]


@pytest.fixture
def kafka() -> Iterator[PrivateKafka]:
    broker = PrivateKafka()
    try:
        yield broker
    finally:
        broker.close()


def partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    found = {n: meta.topics[n] for n in names if n in meta.topics}
    return {n: len(t.partitions) for n, t in found.items() if t.error is None}


def frontier_keys(bootstrap: str, topic: str) -> set[tuple[str, str]]:
    """The (type, symbol) keys ingestion's frontier topic holds; none while it does not exist."""
    try:
        entries = load_frontier(Settings(kafka_bootstrap_servers=bootstrap, topic_frontier=topic), 5)
    except FrontierError:
        return set()
    return {entry.key for entry in entries}


def test_frontier_topic_and_entries_are_back_within_5_s_of_an_empty_broker(
    kafka: PrivateKafka, sim: Callable[..., SimProcess], topics: Topics
) -> None:
    """The broker comes back empty: within 5 s the compacted frontier topic exists again and holds
    every stream's entry, so an ingestion crash right after still finds where it stopped."""
    exchange = sim("--symbols", "BTCUSDT", "--rate", "50")
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "BINANCE_WS_URL": exchange.ws_url,
           "BINANCE_REST_URL": exchange.rest_url, "SYMBOLS": "BTCUSDT", **topics.env()}
    keys = {("trade", "BTCUSDT"), ("aggTrade", "BTCUSDT"), ("bookTicker", "BTCUSDT")}
    ing = start_ingestion(env)
    try:
        wait_for(lambda: frontier_keys(kafka.bootstrap, topics.frontier) == keys, 60, "the frontier written")
        kafka.wipe()
        kafka.start()
        back = time.monotonic()
        wait_for(lambda: frontier_keys(kafka.bootstrap, topics.frontier) == keys, 60,
                 "the frontier topic and its entries on the empty broker")  # fmt: skip
        took = time.monotonic() - back
        print(f"\nfrontier topic and entries back {took:.1f} s after the broker")
        assert took <= 5.0, f"the frontier came back {took:.1f} s after the broker"
        assert ing.process.poll() is None, "ingestion restarted or died"
    finally:
        assert ing.stop() == 0, ing.log()[-3000:]


def test_ingestion_recreates_topics_on_an_empty_broker(
    kafka: PrivateKafka, sim: Callable[..., SimProcess], topics: Topics
) -> None:
    """After the broker comes back empty, ingestion recreates its topics, is ready again by itself,
    and the new broker holds an unbroken run of trade and aggTrade ids (lost deliveries backfilled)
    and every frame dead-lettered while the topics were missing."""
    exchange = sim("--symbols", "BTCUSDT", "--rate", "50")
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "BINANCE_WS_URL": exchange.ws_url,
           "BINANCE_REST_URL": exchange.rest_url, "SYMBOLS": "BTCUSDT", **topics.env()}
    ing = start_ingestion(env)
    try:
        wait_for(lambda: ing.get("/readyz")[0] == 200, 60, "ingestion ready on the first broker")
        gone = time.monotonic()
        kafka.wipe()  # stopped, its data deleted: the next start is an empty broker, same address
        kafka.start()
        back = time.monotonic()
        down_s = back - gone
        exchange.control("malformed", {"kind": "invalid_json", "count": 3})  # while topics are missing
        wait_for(lambda: ing.get("/readyz")[0] == 200, 60, "ingestion ready again on the empty broker")
        took = time.monotonic() - back
        print(f"\nbroker away {down_s:.1f} s; ingestion ready {took:.1f} s after it was back")
        names = [topics.trades, topics.book_ticker, topics.gaps, topics.dead_letter]
        assert partitions(kafka.bootstrap, names) == dict.fromkeys(names, topics.partitions)
        time.sleep(3)  # live events after recovery, and the backfills of what was lost
        assert ing.process.poll() is None, "ingestion restarted or died"
    finally:
        assert ing.stop() == 0, ing.log()[-3000:]
    dead = read_all(kafka.bootstrap, [topics.dead_letter])
    assert len(dead) == 3, "the dead letters of the outage are not all on the new broker"
    grouped = events_by_type(read_all(kafka.bootstrap, [topics.trades]))
    for kind in ("trade", "aggTrade"):
        ids = sorted({int(e["id"]) for e in grouped.get((kind, "BTCUSDT"), [])})
        assert len(ids) > 50, f"{kind}: only {len(ids)} events on the new broker"
        assert ids == list(range(ids[0], ids[-1] + 1)), f"{kind}: ids missing on the new broker"
