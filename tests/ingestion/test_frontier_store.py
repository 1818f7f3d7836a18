"""The frontier in a real broker: compacted topic, written from acknowledgements, read back in full."""

from __future__ import annotations

import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from binance_pipeline.kafka.topics import ensure_topics
from binance_pipeline.testing.helpers import Topics
from ingestion.backfill import Backfiller
from ingestion.effects import Effects
from ingestion.frontier import FrontierBook, FrontierEntry, encode_entry, record_key
from ingestion.frontier_store import FrontierWriter, frontier_topic, load_frontier
from ingestion.metrics import IngestionMetrics
from ingestion.publisher import Publisher
from ingestion.records import id_gap, resolve
from tests.ingestion.test_publisher_backfill import BOOK, TRADE, make_settings


def test_frontier_round_trip_through_kafka(kafka_bootstrap: str, topics: Topics) -> None:
    """Acknowledged ids and open gaps written by one instance are what the next one reads back."""
    s = make_settings(kafka_bootstrap, topics)
    ensure_topics(s, [frontier_topic(s)])
    ensure_topics(s, [frontier_topic(s)])  # idempotent
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, topics.frontier)
    assert admin.describe_configs([res])[res].result(10)["cleanup.policy"].value == "compact"
    assert load_frontier(s) == []

    metrics = IngestionMetrics()
    pub = Publisher(s, metrics)
    pub.ensure_topics()
    pub.start()
    book = FrontierBook()
    effects = Effects(s, metrics, pub, Backfiller(s, metrics))
    effects.keep_frontier(book, None)  # the book sees the gap records, as in ws_consumer
    writer = FrontierWriter(s, book, pub.slot)
    for i in range(1, 51):
        pub.publish_event({**TRADE, "id": i, "trade_time": TRADE["trade_time"] + i})
    pub.publish_event(BOOK)
    still_open = id_gap("BTCUSDT", "trade", 60, 70, "stream", 1)
    repaired = id_gap("BTCUSDT", "trade", 5, 6, "stream", 1)
    for record in (still_open, repaired, resolve(repaired, "repaired", 2)):
        effects.publish_gap(record)
    assert effects.flush(10) == 0
    writer.step()
    assert effects.flush(10) == 0 and writer.written == 2

    by_key = {e.key: e for e in load_frontier(s)}
    trade = by_key[("trade", "BTCUSDT")]
    assert (trade.last_id, trade.last_time) == (50, TRADE["trade_time"] + 50)
    assert list(trade.open_gaps) == [still_open["gap_id"]]
    assert by_key[("bookTicker", "ETHUSDT")].last_time == BOOK["received_at"]


def test_latest_entry_per_key_wins_and_garbage_is_skipped(kafka_bootstrap: str, topics: Topics) -> None:
    """Reading keeps each key's last record; a record that is not an entry is skipped, not fatal."""
    s = make_settings(kafka_bootstrap, topics)
    ensure_topics(s, [frontier_topic(s)])
    pub = Publisher(s, IngestionMetrics())
    pub.start()
    book = FrontierBook(interval_us=0)
    writer = FrontierWriter(s, book, pub.slot)
    for last in (10, 20):
        book.acked(("trade", "BTCUSDT"), last, last)
        writer.final()
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    raw.produce(topics.frontier, b"garbage", b"XRPUSDT/trade")
    assert raw.flush(10) == 0 and pub.flush(10) == 0
    assert [(e.key, e.last_id) for e in load_frontier(s)] == [(("trade", "BTCUSDT"), 20)]


def test_poison_frontier_records_are_skipped_not_fatal(kafka_bootstrap: str, topics: Topics) -> None:
    """Bytes, a wrong-typed entry and an entry with a bad open gap are skipped; good entries are read."""
    s = make_settings(kafka_bootstrap, topics)
    ensure_topics(s, [frontier_topic(s)])
    good = FrontierEntry("trade", "BTCUSDT", 20, 5, {}, 1)
    bad_gap = {**id_gap("ETHUSDT", "trade", 1, 2, "stream", 1), "first_id": None}
    poison = [
        (b"\xff\xfe\x00", b"XRPUSDT/aggTrade"), (b"not a gap record", b"\xff"), (b"[]", b"SOLUSDT/trade"),
        (encode_entry(good).replace(b'"type":"trade"', b'"type":["trade"]'), b"XRPUSDT/trade"),
        (orjson.dumps({**orjson.loads(encode_entry(good)), "symbol": "ETHUSDT", "open": [bad_gap]}),
         b"ETHUSDT/trade"),
    ]
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    failed: list[object] = []
    for value, key in [*poison, (encode_entry(good), record_key(good.key))]:
        raw.produce(topics.frontier, value, key, on_delivery=lambda err, _m: err and failed.append(err))
    assert raw.flush(10) == 0 and not failed
    assert load_frontier(s) == [good]
