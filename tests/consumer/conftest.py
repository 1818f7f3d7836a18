"""Fixtures of the worker tests: start ``python -m consumer.worker`` subprocesses, stopped by PID."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Topics
from tests.consumer.helpers import WorkerProcess, worker_env


@pytest.fixture
def start_worker(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a worker on this test's topics, schema and group; settings overrides as kwargs."""
    started: list[WorkerProcess] = []

    def start(**overrides: Any) -> WorkerProcess:
        url = overrides.pop("database_url", db_url)
        env = worker_env(kafka_bootstrap, url, topics.env(), consumer_group, **overrides)
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
