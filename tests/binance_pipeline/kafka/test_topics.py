"""The one topic creation (kafka/topics.py) against the real broker: specs applied, existing kept."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.errors import TopicsNotCreated
from binance_pipeline.kafka.topics import (
    TopicCreation,
    TopicSpec,
    compacted_spec,
    create_missing,
    ensure_topics,
    pipeline_specs,
)
from tests.binance_pipeline.kafka.helpers import dead_broker


def described(bootstrap: str, topic: str) -> tuple[int, dict[str, str]]:
    """(partitions, config) of ``topic``, asked at once: the creation waited until it is listed."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(timeout=5).topics[topic]
    assert meta.error is None
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    config = admin.describe_configs([res])[res].result(10)
    return len(meta.partitions), {k: v.value for k, v in config.items()}


def test_missing_topics_are_created_with_their_spec(
        kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    """A compacted spec and a retention spec give the topics their partitions and config."""
    s = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    compacted, retained = topic_factory("kit", create=False), topic_factory("kit", create=False)
    ensure_topics(s, [compacted_spec(compacted, s, **{"segment.ms": "3600000"}),
                      TopicSpec(retained, 2, s.topic_replication_factor, {"retention.ms": "3600000"})])
    partitions, config = described(kafka_bootstrap, compacted)
    assert partitions == 1 and config["cleanup.policy"] == "compact" and config["segment.ms"] == "3600000"
    partitions, config = described(kafka_bootstrap, retained)
    assert partitions == 2 and config["retention.ms"] == "3600000" and config["cleanup.policy"] == "delete"


def test_a_created_topic_is_listed_with_its_partitions_at_once(
        kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    """Rule 4: when the blocking form returns, another client's metadata already lists each topic
    (KRaft acknowledges a creation before its metadata answers carry it). Ten rounds of four."""
    s = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    other = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for _ in range(10):
        names = [topic_factory("listed", create=False) for _ in range(4)]
        ensure_topics(s, [TopicSpec(name, 3, s.topic_replication_factor) for name in names])
        listed = other.list_topics(timeout=5).topics
        assert {name: len(listed[name].partitions) if name in listed and listed[name].error is None else 0
                for name in names} == dict.fromkeys(names, 3)


def test_an_existing_topic_is_left_as_it_is(kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    """Ensuring a topic that exists succeeds and changes neither its partitions nor its config."""
    s = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    existing = topic_factory("kit", partitions=3)
    ensure_topics(s, [compacted_spec(existing, s)])
    assert create_missing(s, [compacted_spec(existing, s)]) == {}
    partitions, config = described(kafka_bootstrap, existing)
    assert partitions == 3 and config["cleanup.policy"] == "delete"


def test_pipeline_specs_carry_the_settings() -> None:
    """The four pipeline topics get TOPIC_PARTITIONS, TOPIC_REPLICATION_FACTOR and TOPIC_RETENTION_MS."""
    s = Settings(topic_partitions=5, topic_retention_ms=123_456)
    specs = pipeline_specs(s)
    assert [x.name for x in specs] == [s.topic_trades, s.topic_book_ticker, s.topic_gaps, s.topic_dead_letter]
    assert all(x.partitions == 5 and x.replication == s.topic_replication_factor
               and dict(x.config) == {"retention.ms": "123456"} for x in specs)


def test_creation_does_not_block_and_a_silent_broker_is_a_failure_naming_it() -> None:
    """TopicCreation returns at once; its failures name the servers asked; ensure_topics raises them."""
    s = dead_broker()
    started = time.monotonic()
    creation = TopicCreation(s, timeout=2, specs=[compacted_spec("kit.none", s)])
    assert time.monotonic() - started < 1 and not creation.done()
    failed = creation.failures(wait=10)
    assert list(failed) == ["kit.none"]
    assert failed["kit.none"].startswith(f"broker {s.kafka_bootstrap_servers}")
    with pytest.raises(TopicsNotCreated) as info:
        ensure_topics(s, [compacted_spec("kit.none", s)], timeout=2)
    assert list(info.value.failures) == ["kit.none"]
