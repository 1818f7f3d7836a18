"""The one compacted-topic reader (kafka/compacted.py) against the real broker."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, Message, Producer

from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.compacted import read_compacted
from binance_pipeline.kafka.errors import CompactedReadError
from tests.binance_pipeline.kafka.helpers import dead_broker

Record = tuple[int, bytes, bytes | None]  # partition, key, value (None: a tombstone)


def text(_key: bytes, value: bytes) -> str:
    """A caller's decoder: ASCII text, ValueError (UnicodeDecodeError) for anything else."""
    return value.decode("ascii")


def write(bootstrap: str, topic: str, records: list[Record]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    failed: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failed.append(err)

    for partition, key, value in records:
        producer.produce(topic, value, key, partition=partition, on_delivery=delivered)
    assert producer.flush(10) == 0 and not failed


def read(bootstrap: str, topic: str) -> dict[bytes, str]:
    return read_compacted(Settings(kafka_bootstrap_servers=bootstrap), topic, text, timeout=20)


def test_every_partition_is_read_and_the_latest_value_per_key_wins(
        kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    """Keys on all three partitions are read; a key written twice keeps its last value."""
    topic = topic_factory("compacted", partitions=3)
    write(kafka_bootstrap, topic, [(0, b"a", b"1"), (1, b"b", b"1"), (2, b"c", b"1"), (0, b"a", b"2"),
                                   (2, b"c", b"3")])
    assert read(kafka_bootstrap, topic) == {b"a": "2", b"b": "1", b"c": "3"}


def test_a_tombstone_deletes_its_key(kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    """A null value removes its key; a value written after the tombstone brings the key back."""
    topic = topic_factory("compacted", partitions=2)
    write(kafka_bootstrap, topic, [(0, b"a", b"1"), (1, b"b", b"1"), (0, b"a", None),
                                   (1, b"c", b"1"), (1, b"c", None), (1, b"c", b"2")])
    assert read(kafka_bootstrap, topic) == {b"b": "1", b"c": "2"}


def test_an_undecodable_value_is_skipped_and_its_key_keeps_its_value(
        kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    """Junk the decoder rejects is skipped, not fatal: the key keeps the value it had, if any."""
    topic = topic_factory("compacted", partitions=2)
    write(kafka_bootstrap, topic, [(0, b"a", b"1"), (0, b"a", b"\xff junk"), (1, b"b", b"\xfe"),
                                   (1, b"c", b"1")])
    assert read(kafka_bootstrap, topic) == {b"a": "1", b"c": "1"}


def test_an_empty_topic_reads_as_nothing(kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    """A topic with no records is read at once as an empty mapping."""
    assert read(kafka_bootstrap, topic_factory("compacted", partitions=3)) == {}


def test_an_unknown_topic_raises_once_the_deadline_passes(
        kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    """A topic that never appears is a CompactedReadError naming it, after the time-out (not before)."""
    topic = topic_factory("compacted", create=False)
    started = time.monotonic()
    with pytest.raises(CompactedReadError, match=topic):
        read_compacted(Settings(kafka_bootstrap_servers=kafka_bootstrap), topic, text, timeout=2)
    assert 2 <= time.monotonic() - started < 15


def test_an_unreachable_broker_raises() -> None:
    """No broker answering is a CompactedReadError, never an empty (partial) read."""
    with pytest.raises(CompactedReadError, match="reading t"):
        read_compacted(dead_broker(), "t", text, timeout=2)
