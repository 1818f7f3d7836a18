"""Pytest plugin: a real Kafka-protocol broker for the session, and per-test topics and groups.

Every test gets topics of its own (deleted when it ends), so tests never see each other's records.
A test that kills, pauses or empties a broker asks for ``private_kafka`` instead, never the shared one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.topics import TopicSpec, ensure_topics
from binance_pipeline.testing.brokers import PrivateKafka, kafka_local
from binance_pipeline.testing.helpers import Topics
from binance_pipeline.testing.services import SERVICES_USED, describe_kafka, kafka_endpoint

pytest_plugins = ["binance_pipeline.testing.plugins.report"]

MARKERS = (
    "kafka: uses the real broker (set on every test that asks for kafka_bootstrap)",
    "private_broker: starts an Apache Kafka of its own, to kill, pause or replace it",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Where the broker comes from, said before anything starts."""
    return [f"broker: {describe_kafka()}"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test whose fixtures reach the broker (``-m "not kafka"`` runs without one)."""
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka-protocol broker for the whole session."""
    with kafka_endpoint() as (bootstrap, what):
        SERVICES_USED["broker"] = f"{what} at {bootstrap}"
        yield bootstrap


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics (``partitions`` each); deleted when the test ends."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    made: list[str] = []

    def make(prefix: str = "t", partitions: int = 3, create: bool = True) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        if create:  # the one place that creates topics (binance_pipeline.kafka.topics, its Rule 1)
            ensure_topics(settings, [TopicSpec(name, partitions, replication=-1)], timeout=30)
        made.append(name)
        return name

    yield make
    if made:
        for fut in admin.delete_topics(made, operation_timeout=10).values():
            try:
                fut.result(timeout=30)
            except KafkaException:  # topics a test never created, or already gone
                pass


@pytest.fixture
def topics(topic_factory: Callable[..., str]) -> Topics:
    """Names for a fresh set of pipeline topics; created by whichever stage starts first."""
    tag = uuid.uuid4().hex[:8]
    return Topics(
        trades=topic_factory(f"trades-{tag}", create=False),
        book_ticker=topic_factory(f"book-{tag}", create=False),
        gaps=topic_factory(f"gaps-{tag}", create=False),
        dead_letter=topic_factory(f"dlq-{tag}", create=False),
        frontier=topic_factory(f"frontier-{tag}", create=False),
    )


@pytest.fixture
def consumer_group() -> str:
    """A consumer group id of this test's own."""
    return f"g-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def private_kafka() -> Iterator[PrivateKafka]:
    """An Apache Kafka broker of this test's own (it may be paused, killed or wiped); skipped
    without a source checkout (it runs the checkout's scripts/kafka_local.py)."""
    try:
        kafka_local()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    broker = PrivateKafka()
    try:
        yield broker
    finally:
        broker.close()
