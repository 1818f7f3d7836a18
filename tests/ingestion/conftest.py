"""Fixtures for ingestion tests: simulators, ingestion subprocesses, a private broker.

Every process a test starts is stopped by its PID when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from exchange_sim.testing import SimProcess
from tests.brokers import PrivateKafka
from tests.conftest import Topics
from tests.ingestion.helpers import Ingestion, start_ingestion


@pytest.fixture
def ingestion(kafka_bootstrap: str, topics: Topics) -> Iterator[Callable[..., Ingestion]]:
    """Factory starting ingestion against ``sim`` with this test's topics (env overrides)."""
    started: list[Ingestion] = []

    def start(sim: SimProcess, args: tuple[str, ...] = (), **env: str) -> Ingestion:
        base = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "BINANCE_WS_URL": sim.ws_url,
            "BINANCE_REST_URL": sim.rest_url,
            **topics.env(),
        }
        process = start_ingestion({**base, **env}, args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
        process.log_file.close()


@pytest.fixture
def private_kafka() -> Iterator[PrivateKafka]:
    """An Apache Kafka broker of this test's own (it may be paused, killed or wiped)."""
    broker = PrivateKafka()
    try:
        yield broker
    finally:
        broker.close()
