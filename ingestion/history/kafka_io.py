"""Kafka side of the history import: the row producer and the progress topic.

Rules:
  1. Rows go to TOPIC_TRADES keyed by symbol, exactly as live ingestion writes them (same
     producer settings: acks=all, idempotent, lz4); bad lines go to TOPIC_DEAD_LETTER with
     ``dlq.reason``/``dlq.stage`` ("history") headers.
  2. ``checkpoint`` flushes every row first and only then writes the progress record, so a
     day is never marked done before all its rows are acknowledged (write first, record after).
     A delivery failure since the last checkpoint raises ``PublishError`` and records nothing.
  3. Progress is a compacted topic (one partition); ``load_progress`` reads it from the
     beginning to the high-water mark and keeps the last record per key. A record that is not
     one (plan.py ``decode_progress``) is skipped and logged with its offset: its day or cursor
     is simply done again (idempotent rows), never a crash.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from binance_pipeline.common.events import HDR_REASON, HDR_RECEIVED_AT, HDR_STAGE, TradeMessage, encode
from binance_pipeline.common.kafka_config import client_config
from binance_pipeline.common.settings import Settings
from binance_pipeline.common.topics import create_missing_topics
from ingestion.history.errors import ProgressError, PublishError
from ingestion.history.plan import decode_progress
from ingestion.publisher import producer_config

log = logging.getLogger(__name__)
POLL_EVERY = 2000  # rows between producer polls


def ensure_topics(settings: Settings, timeout: float = 15.0) -> None:
    """The pipeline topics and the compacted progress topic exist (idempotent)."""
    failed = create_missing_topics(settings, timeout)
    admin = AdminClient(client_config(settings))
    config = {"cleanup.policy": "compact"}
    name = settings.topic_history_progress
    new = NewTopic(name, num_partitions=1, replication_factor=settings.topic_replication_factor,
                   config=config)
    future = admin.create_topics([new])[name]
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
            failed[name] = str(exc)
    if failed:
        raise ProgressError(f"cannot create topics: {failed}")


def load_progress(settings: Settings, timeout: float = 15.0) -> dict[str, dict[str, Any]]:
    """Rule 3: key -> the last progress record."""
    topic = settings.topic_history_progress
    consumer = Consumer({
        **client_config(settings), "group.id": "history-progress-reader",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
    })  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        low, high = _watermarks(consumer, topic, deadline)
        consumer.assign([TopicPartition(topic, 0, low)])
        records: dict[str, dict[str, Any]] = {}
        position = low
        while position < high:
            if time.monotonic() > deadline:
                raise ProgressError(f"reading {topic}: timed out at offset {position} of {high}")
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            position = (msg.offset() or 0) + 1
            _keep(records, msg)
    except KafkaException as exc:
        raise ProgressError(f"reading {topic}: {exc}") from exc
    finally:
        consumer.close()
    return records


def _keep(records: dict[str, dict[str, Any]], msg: Message) -> None:
    """Rule 3: keep a progress record; skip (and log) one that is not."""
    key, value = msg.key(), msg.value()
    if key is None or value is None:
        return
    try:
        name, record = decode_progress(key, value)
    except ValueError as exc:
        log.warning("progress record %r at offset %s skipped: %s", key[:80], msg.offset(), exc)
        return
    records[name] = record


def _watermarks(consumer: Consumer, topic: str, deadline: float) -> tuple[int, int]:
    """Low and high offsets of the progress partition; a topic created a moment ago may take a
    little while to appear in the metadata, so "unknown partition" is retried until ``deadline``."""
    while True:
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=5.0)
            return int(low), int(high)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            unknown = isinstance(err, KafkaError) and err.code() in (
                KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_TOPIC_OR_PART)
            if not unknown or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


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
