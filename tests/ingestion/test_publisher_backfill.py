"""Publisher (real broker) and REST backfill (simulator REST): routing, topics, repair, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient, ConfigResource

from binance_pipeline.common.events import HDR_REASON, HDR_STAGE, BookTickerMessage, TradeMessage
from binance_pipeline.common.settings import Settings
from binance_pipeline.testing.helpers import Topics, read_all, wait_for
from exchange_sim.testing import SimProcess
from ingestion.acks import LATENCY_SAMPLE_EVERY
from ingestion.backfill import Backfiller
from ingestion.delivery import Lost
from ingestion.effects import Effects
from ingestion.metrics import IngestionMetrics
from ingestion.publisher import Publisher
from ingestion.records import id_gap

TRADE: TradeMessage = {
    "v": 1, "type": "trade", "symbol": "BTCUSDT", "id": 1, "price": "1.00000000", "qty": "2",
    "first_id": None, "last_id": None, "trade_time": 1_700_000_000_000_001,
    "event_time": 1_700_000_000_000_002, "buyer_maker": True, "best_match": True,
    "received_at": 1_700_000_000_123_456, "source": "stream",
}  # fmt: skip
BOOK: BookTickerMessage = {
    "v": 1, "type": "bookTicker", "symbol": "ETHUSDT", "update_id": 9, "bid_price": "1",
    "bid_qty": "2", "ask_price": "3", "ask_qty": "4", "received_at": 1_700_000_000_999_999,
    "source": "stream",
}  # fmt: skip


def make_settings(kafka_bootstrap: str, topics: Topics, **extra: Any) -> Settings:
    env = {k.lower(): v for k, v in topics.env().items()}
    return Settings(kafka_bootstrap_servers=kafka_bootstrap, **env, **extra)


def test_acknowledgements_counted_per_type_and_symbol(kafka_bootstrap: str, topics: Topics) -> None:
    """Every acknowledged event is counted under its (type, symbol); 1 in 16 has its latency observed."""
    metrics = IngestionMetrics()
    pub = Publisher(make_settings(kafka_bootstrap, topics), metrics)
    pub.ensure_topics()
    pub.start()
    for i in range(40):
        pub.publish_event({**TRADE, "id": i})
        pub.publish_event({**TRADE, "type": "aggTrade", "id": i, "first_id": i, "last_id": i})
    for i in range(16):
        pub.publish_event({**BOOK, "update_id": i})
    assert pub.flush(10) == 0
    assert dict(metrics.published) == {
        ("trade", "BTCUSDT"): 40, ("aggTrade", "BTCUSDT"): 40, ("bookTicker", "ETHUSDT"): 16,
    }  # fmt: skip
    sampled = metrics.registry.get_sample_value("ingestion_delivery_latency_seconds_count")
    assert sampled == 96 // LATENCY_SAMPLE_EVERY
    assert pub.readiness() is None


def test_topics_created_and_events_routed(kafka_bootstrap: str, topics: Topics) -> None:
    """Topics get partitions and retention; events, gaps and dead letters land where the contract says."""
    s = make_settings(kafka_bootstrap, topics, topic_retention_ms=3_600_000)
    pub = Publisher(s, IngestionMetrics())
    pub.ensure_topics()
    pub.ensure_topics()  # idempotent
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert len(admin.list_topics(topics.trades, timeout=10).topics[topics.trades].partitions) == 3
    res = ConfigResource(ConfigResource.Type.TOPIC, topics.gaps)
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["retention.ms"].value == "3600000"
    pub.start()
    pub.publish_event(TRADE)
    pub.publish_event(BOOK)
    pub.publish_gap(id_gap("BTCUSDT", "trade", 5, 9, "stream", 1_700_000_000_000_000))
    pub.dead_letter(b"\xff not json", "invalid JSON: x", 1_700_000_000_000_000)
    assert pub.flush(10) == 0
    reports = pub.take_reports()
    assert not [r for r in reports if isinstance(r, Lost)], reports
    every = [topics.trades, topics.book_ticker, topics.gaps, topics.dead_letter]
    records = {r.topic: r for r in read_all(kafka_bootstrap, every)}
    assert records[topics.trades].json() == TRADE and records[topics.trades].key == "BTCUSDT"
    assert records[topics.trades].timestamp_ms == TRADE["received_at"] // 1000
    assert records[topics.book_ticker].json() == BOOK
    assert records[topics.gaps].json()["gap_id"] == "BTCUSDT/trade/ids/5-9"
    dead = records[topics.dead_letter]
    assert dead.value == b"\xff not json" and dead.headers[HDR_STAGE] == b"ingestion"
    assert dead.headers[HDR_REASON] == b"invalid JSON: x"
    assert pub.readiness() is None


def run_backfill(settings: Settings, records: list[Any]) -> IngestionMetrics:
    """Run a backfiller on ``records`` until it has resolved them all."""
    metrics = IngestionMetrics()

    async def main() -> None:
        pub = Publisher(settings, metrics)
        pub.ensure_topics()
        pub.start()
        backfiller = Backfiller(settings, metrics)
        effects = Effects(settings, metrics, pub, backfiller)
        for record in records:
            backfiller.submit(record)
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(t) for t in (backfiller.run(), effects.serve_publisher(), effects.hear())]
            while backfiller.pending() or not backfiller.answers.empty():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await asyncio.sleep(0)  # the last answer taken by ``hear``
            for task in tasks:
                task.cancel()
        assert effects.flush(10) == 0

    asyncio.run(asyncio.wait_for(main(), 60))
    return metrics


def test_backfill_repairs_a_gap_over_several_pages(
    sim: Callable[..., SimProcess], kafka_bootstrap: str, topics: Topics
) -> None:
    """A gap of 2500 trade ids is fetched in pages and published once each, then marked repaired."""
    s = sim("--max-trades", "3000", "--rate", "20000")
    wait_for(lambda: s.stats()["done"], 30, "history")
    first = s.stats()["symbols"]["BTCUSDT"]["trade"]["first_id"]
    afirst = s.stats()["symbols"]["BTCUSDT"]["aggTrade"]["first_id"]
    settings = make_settings(kafka_bootstrap, topics, binance_rest_url=s.rest_url)
    gap = id_gap("BTCUSDT", "trade", first + 10, first + 2509, "stream", 1)
    agap = id_gap("BTCUSDT", "aggTrade", afirst + 1, afirst + 40, "reconnect", 1)
    metrics = run_backfill(settings, [gap, agap])
    records = read_all(kafka_bootstrap, [topics.trades, topics.gaps])
    trades = [r.json() for r in records if r.topic == topics.trades]
    assert sorted(t["id"] for t in trades if t["type"] == "trade") == list(range(first + 10, first + 2510))
    assert sorted(t["id"] for t in trades if t["type"] == "aggTrade") == list(range(afirst + 1, afirst + 41))
    assert all(t["source"] == "rest" and t["trade_time"] > 10**15 for t in trades)
    statuses = {r.json()["gap_id"]: r.json()["status"] for r in records if r.topic == topics.gaps}
    assert statuses == {gap["gap_id"]: "repaired", agap["gap_id"]: "repaired"}
    assert metrics.rest_requests.labels("/api/v3/historicalTrades", "200")._value.get() == 3


def test_backfill_marks_ids_rest_no_longer_has_unrepairable(
    sim: Callable[..., SimProcess], kafka_bootstrap: str, topics: Topics
) -> None:
    """Ids trimmed from REST history make the gap unrepairable, with the ids named; the rest is published."""
    s = sim("--max-trades", "2000", "--rate", "20000", "--history-cap", "500")
    wait_for(lambda: s.stats()["done"], 30, "history")
    last = s.stats()["symbols"]["ETHUSDT"]["trade"]["last_id"]
    settings = make_settings(kafka_bootstrap, topics, binance_rest_url=s.rest_url)
    gap = id_gap("ETHUSDT", "trade", last - 999, last, "stream", 1)
    run_backfill(settings, [gap])
    records = read_all(kafka_bootstrap, [topics.trades, topics.gaps])
    got = [r.json()["id"] for r in records if r.topic == topics.trades]
    [final] = [r.json() for r in records if r.topic == topics.gaps]
    assert final["status"] == "unrepairable" and final["missing"] == 1000 - len(got)
    assert "REST no longer has ids" in final["reason"]
    assert got == sorted(got) and got[-1] == last and len(got) >= 500


def test_backfill_honours_429_retry_after(
    sim: Callable[..., SimProcess], kafka_bootstrap: str, topics: Topics
) -> None:
    """A 429 from REST pauses the backfill for Retry-After, then it completes."""
    # weight 30 per 2 s window: any two of the three requests (25 each) in one window meet a 429, so one
    # comes whatever the phase of the window the backfill starts in (with 60, three were needed in one)
    s = sim("--max-trades", "3000", "--rate", "20000", "--weight-limit", "30", "--weight-window", "2",
            "--ban-after", "100")  # fmt: skip
    wait_for(lambda: s.stats()["done"], 30, "history")
    first = s.stats()["symbols"]["BNBUSDT"]["trade"]["first_id"]
    settings = make_settings(kafka_bootstrap, topics, binance_rest_url=s.rest_url, backoff_initial_s=0.1)
    gap = id_gap("BNBUSDT", "trade", first, first + 2999, "stream", 1)
    metrics = run_backfill(settings, [gap])
    assert metrics.rest_requests.labels("/api/v3/historicalTrades", "429")._value.get() >= 1
    records = read_all(kafka_bootstrap, [topics.gaps])
    assert [r.json()["status"] for r in records] == ["repaired"]
