"""Reading a compacted topic in full: every key's latest value, as of when the read began.

The frontier (ingestion) and the history import's progress are compacted topics read back at
start; this is their one reader. What a value means stays with its owner (``decode``).

Rules:
  1. ``read_compacted`` reads every partition from its start up to the end (high watermark) it
     had when the read began; records written later are not waited for.
  2. The latest record per key wins; a tombstone (a null value) deletes its key.
  3. Values are decoded by the caller's ``decode(key, value)``. One that raises ``ValueError``
     is logged (topic, partition, offset, why) and skipped, and its key keeps the value it had:
     anyone can write to a topic, and junk in it must not stop a stage.
  4. A Kafka error raises ``CompactedReadError``, never a partial read. A topic the broker does
     not know, or a partition without a leader, is asked for again until the deadline (a topic
     created a moment ago answers so for a while: "Not leader for partition" from the watermark
     request was seen in a test); so is an unfinished read.
  5. Partitions are assigned, never subscribed, and no offset is committed; the reader's
     consumer is closed on every path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from binance_pipeline.common.settings import KafkaSettings
from binance_pipeline.kafka.codes import not_ready
from binance_pipeline.kafka.config import client_config
from binance_pipeline.kafka.errors import CompactedReadError

log = logging.getLogger(__name__)
T = TypeVar("T")
READER_GROUP = "binance-pipeline.compacted-reader"  # never joined nor committed to (Rule 5)
RETRY_S = 0.2


def read_compacted(settings: KafkaSettings, topic: str, decode: Callable[[bytes, bytes], T],
                   timeout: float = 30.0) -> dict[bytes, T]:
    """{key: decoded latest value} of ``topic`` (Rules 1-4); blocking, run it in a thread."""
    consumer = Consumer({**client_config(settings), "group.id": READER_GROUP,
                         "enable.auto.commit": False, "enable.partition.eof": True})
    deadline = time.monotonic() + timeout
    try:
        ends = _ends(consumer, topic, deadline)
        return _read(consumer, topic, ends, decode, deadline)
    except KafkaException as exc:
        raise CompactedReadError(f"reading {topic}: {exc}") from exc
    finally:
        consumer.close()


def _left(deadline: float) -> float:
    return max(0.5, deadline - time.monotonic())


def _ends(consumer: Consumer, topic: str, deadline: float) -> dict[int, int]:
    """Rule 4: the end of every non-empty partition, asking again while the topic is not ready."""
    while True:
        try:
            return _watermarks(consumer, topic, _left(deadline))
        except KafkaException as exc:
            if not not_ready(exc) or time.monotonic() > deadline:
                raise
        time.sleep(RETRY_S)


def _watermarks(consumer: Consumer, topic: str, timeout: float) -> dict[int, int]:
    meta = consumer.list_topics(topic, timeout=timeout).topics[topic]
    if meta.error is not None:
        raise KafkaException(meta.error)
    ends = {}
    for p in meta.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
        if high > low:
            ends[p] = high
    return ends


def _read(consumer: Consumer, topic: str, ends: dict[int, int], decode: Callable[[bytes, bytes], T],
          deadline: float) -> dict[bytes, T]:
    """Rules 1-3: poll until every partition reached its end."""
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    latest: dict[bytes, T] = {}
    while ends:
        if time.monotonic() > deadline:
            raise CompactedReadError(f"reading {topic}: not done in time ({len(ends)} partition(s) left)")
        msg = consumer.poll(RETRY_S)
        if msg is None:
            continue
        error = msg.error()
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            raise CompactedReadError(f"reading {topic}: {error.str()}")
        partition = msg.partition() or 0
        if error is None:
            _apply(latest, msg, decode)
        if error is not None or (msg.offset() or 0) + 1 >= ends.get(partition, 0):
            ends.pop(partition, None)
    return latest


def _apply(latest: dict[bytes, T], msg: Message, decode: Callable[[bytes, bytes], T]) -> None:
    """Rules 2-3: a tombstone deletes its key; an undecodable value is logged and skipped."""
    key, value = msg.key() or b"", msg.value()
    if value is None:
        latest.pop(key, None)
        return
    try:
        latest[key] = decode(key, value)
    except ValueError as exc:
        log.warning("%s[%s]@%s: record %r skipped: %s", msg.topic(), msg.partition(), msg.offset(),
                    key[:80], exc)
