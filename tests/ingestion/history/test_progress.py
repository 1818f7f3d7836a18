"""ingestion.history.kafka_io's progress reader against the real broker: poison records are skipped."""

from __future__ import annotations

import orjson
from confluent_kafka import Producer

from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.topics import ensure_topics
from binance_pipeline.testing.helpers import Topics
from ingestion.history.kafka_io import load_progress, progress_topic


def test_poison_progress_records_are_skipped_and_the_rest_read(
    kafka_bootstrap: str, topics: Topics, topic_factory: object
) -> None:
    """Undecodable progress records (bytes, bad key, wrong types) are skipped; good records are kept."""
    progress = topic_factory("progress", create=False)  # type: ignore[operator]
    env = {k.lower(): v for k, v in topics.env().items()}
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_history_progress=progress, **env)
    ensure_topics(settings, [progress_topic(settings)])
    day = {"v": 1, "source": "archive", "rows": 3, "first_id": 1, "last_id": 3, "done_at": 1}
    cursor = {"v": 1, "source": "rest", "from_id": 4, "last_id": 9}
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    for key, value in [
        (b"BTCUSDT/aggTrade/2026-01-01", orjson.dumps(day)),
        (b"ETHUSDT/aggTrade/2026-01-01", b"not a gap record"),
        (b"\xff\xfe", orjson.dumps(day)),
        (b"BNBUSDT/aggTrade/2026-01-01", b"[1, 2]"),
        (b"BTCUSDT/aggTrade/rest", orjson.dumps({**cursor, "last_id": None})),
        (b"BTCUSDT/aggTrade/rest", orjson.dumps(cursor)),
        (b"SOLUSDT/aggTrade/rest", b"\x00" * 64),
    ]:
        raw.produce(progress, orjson.dumps(value) if isinstance(value, dict) else value, key)
    assert raw.flush(10) == 0
    assert load_progress(settings) == {"BTCUSDT/aggTrade/2026-01-01": day, "BTCUSDT/aggTrade/rest": cursor}
