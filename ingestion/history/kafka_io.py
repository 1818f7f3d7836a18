"""Kafka side of the history import: the row producer and the progress topic.

Rules:
  1. Rows go to TOPIC_TRADES keyed by symbol, exactly as live ingestion writes them (same
     producer settings: acks=all, idempotent, lz4); bad lines go to TOPIC_DEAD_LETTER with
     ``dlq.reason``/``dlq.stage`` ("history") headers.
  2. ``checkpoint`` flushes every row first and only then writes the progress record, so a
     day is never marked done before all its rows are acknowledged (write first, record after).
     A delivery failure since the last checkpoint raises ``PublishError`` and records nothing.
  3. Progress is a compacted topic (one partition); ``load_progress`` reads it with the kit's
     compacted reader (``kafka/compacted.py``: every partition up to its high-water mark, the
     last record per key, a tombstone forgets its key). A record that is not one (plan.py
     ``decode_progress``) is skipped and logged with its offset: its day or cursor is simply
     done again (idempotent rows), never a crash. A Kafka error is a ``ProgressError``.
"""

from __future__ import annotations

from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from binance_pipeline.common.events import HDR_REASON, HDR_RECEIVED_AT, HDR_STAGE, TradeMessage, encode
from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.compacted import read_compacted
from binance_pipeline.kafka.errors import CompactedReadError
from binance_pipeline.kafka.topics import TopicSpec, compacted_spec
from ingestion.history.errors import ProgressError, PublishError
from ingestion.history.plan import decode_progress
from ingestion.producer_slot import producer_config

POLL_EVERY = 2000  # rows between producer polls


def progress_topic(settings: Settings) -> TopicSpec:
    """Rule 3: the compacted progress topic, created with the pipeline topics by ``__main__``."""
    return compacted_spec(settings.topic_history_progress, settings)


def load_progress(settings: Settings, timeout: float = 15.0) -> dict[str, dict[str, Any]]:
    """Rule 3: key -> the last progress record."""
    try:
        latest = read_compacted(settings, settings.topic_history_progress, decode_progress, timeout)
    except CompactedReadError as exc:
        raise ProgressError(str(exc)) from exc
    return dict(latest.values())


class RowProducer:
    """Publishes rows, dead letters and progress records (Rules 1-2)."""

    def __init__(self, settings: Settings) -> None:
        self._s = settings
        config = {**producer_config(settings), "client.id": "binance-pipeline-history"}
        config["delivery.report.only.error"] = True
        config["on_delivery"] = self._delivered
        self._producer = Producer(config)
        self._failures: list[str] = []
        self._since_poll = 0

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append(f"{msg.topic()}: {err}")

    def _produce(self, topic: str, value: bytes, key: bytes, **kw: Any) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, **kw)
                break
            except BufferError:
                self._producer.poll(0.05)
        self._since_poll += 1
        if self._since_poll >= POLL_EVERY:
            self._producer.poll(0)
            self._since_poll = 0

    def row(self, message: TradeMessage) -> None:
        self._produce(self._s.topic_trades, encode(message), message["symbol"].encode())

    def dead_letter(self, raw: bytes, reason: str, received_at: int) -> None:
        headers = [(HDR_REASON, reason.encode()), (HDR_STAGE, b"history"),
                   (HDR_RECEIVED_AT, str(received_at).encode())]
        self._produce(self._s.topic_dead_letter, raw, b"history", headers=headers)

    def checkpoint(self, key: str, record: dict[str, Any], timeout: float = 60.0) -> None:
        """Rule 2: flush the rows, then record ``key`` as done (and flush that too)."""
        self._flush(timeout)
        self._produce(self._s.topic_history_progress, orjson.dumps(record), key.encode())
        self._flush(timeout)

    def _flush(self, timeout: float) -> None:
        left = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        if left or failures:
            raise PublishError(f"{left} message(s) unacknowledged, {len(failures)} failed: {failures[:3]}")

    def close(self) -> None:
        self._producer.flush(10)
