"""The Kafka error table (kafka/codes.py): one meaning per code, read from the code, never the text."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from binance_pipeline.kafka.codes import (
    FATAL,
    MISSING_TOPIC,
    NO_ANSWER,
    PRODUCER_GONE,
    TABLE,
    Kind,
    codes,
    is_fatal,
    kind_of,
    not_ready,
    topic_missing,
)


@pytest.mark.parametrize("code", [KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
                                  KafkaError._UNKNOWN_PARTITION])
def test_every_unknown_topic_or_partition_code_is_a_missing_topic(code: int) -> None:
    """The broker's and librdkafka's "unknown topic/partition" all mean the topic is missing."""
    assert topic_missing(KafkaError(code)) and topic_missing(KafkaException(KafkaError(code)))
    assert not is_fatal(KafkaError(code))


def test_the_worker_recreates_topics_on_an_unknown_topic_not_an_unknown_partition() -> None:
    """MISSING_TOPIC (the worker's trigger to create its topics) leaves out a partition not known yet."""
    assert {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC} == MISSING_TOPIC


def test_a_partition_without_a_leader_is_not_ready_but_not_missing() -> None:
    """A fresh topic's "no leader yet" is asked again by readers; the producer does not count it missing."""
    for code in (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE):
        assert not_ready(KafkaException(KafkaError(code))) and not topic_missing(KafkaError(code))
    assert not_ready(KafkaError(KafkaError._UNKNOWN_PARTITION))
    assert not not_ready(KafkaError(KafkaError._TRANSPORT))


def test_fatal_is_the_code_or_librdkafkas_flag() -> None:
    """_FATAL and fencing are fatal by code; any code librdkafka flags fatal is fatal too."""
    assert is_fatal(KafkaError(KafkaError._FATAL)) and is_fatal(KafkaError(KafkaError.FENCED_INSTANCE_ID))
    assert is_fatal(KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, fatal=True))
    assert not is_fatal(KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER))
    assert FATAL == {KafkaError._FATAL, KafkaError.FENCED_INSTANCE_ID}


def test_a_producers_own_failures_include_fatal_and_purges() -> None:
    """Messages failed by their producer (purged, fatal, sequence lost) are sent again on a new one."""
    assert {KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT, KafkaError._FATAL,
            KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, KafkaError.UNKNOWN_PRODUCER_ID} <= PRODUCER_GONE
    assert codes(Kind.PRODUCER_LOST, Kind.FATAL) == PRODUCER_GONE


def test_unlisted_codes_and_non_kafka_errors_are_other() -> None:
    """A code outside the table, a bare exception and None classify as OTHER."""
    assert kind_of(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)) is Kind.OTHER
    assert kind_of(ValueError("x")) is Kind.OTHER and kind_of(None) is Kind.OTHER
    assert kind_of(KafkaException("no error object")) is Kind.OTHER


def test_the_named_sets_are_the_table_read_by_kind() -> None:
    """Each named set is exactly the table's codes of its kind (one source of truth)."""
    assert codes(Kind.NO_ANSWER) == NO_ANSWER and KafkaError._TRANSPORT in NO_ANSWER
    assert set(TABLE) == set().union(*(codes(k) for k in Kind))
    assert kind_of(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS)) is Kind.ALREADY_EXISTS
