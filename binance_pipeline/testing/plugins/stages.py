"""Pytest plugin: the stages as subprocesses on the test's own topics, group and schema.

- ``ingestion(sim, args, **env)`` starts ingestion against a simulator;
- ``start_worker(**settings)`` starts a worker;
- ``pipeline(sim)`` wires ingestion and worker to a simulator, not yet started (``start_*``);
- ``running_pipeline``: a simulator (``pipeline_sim_args``, a fixture a test module may override),
  the worker and ingestion, returned once the first rows are in the database.

Every process is stopped by its PID when the test ends, the worker after ingestion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from binance_pipeline.testing.helpers import Topics, wait_for
from binance_pipeline.testing.stages import (
    Ingestion,
    Pipeline,
    WorkerProcess,
    pipeline_env,
    start_ingestion,
    worker_env,
)
from exchange_sim.testing import SimProcess

pytest_plugins = [
    "binance_pipeline.testing.plugins.broker",
    "binance_pipeline.testing.plugins.database",
    "binance_pipeline.testing.plugins.simulator",
]


@pytest.fixture
def ingestion(kafka_bootstrap: str, topics: Topics) -> Iterator[Callable[..., Ingestion]]:
    """Factory starting ingestion against ``sim`` with this test's topics (env overrides)."""
    started: list[Ingestion] = []

    def start(sim: SimProcess, args: tuple[str, ...] = (), **env: str) -> Ingestion:
        base = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "BINANCE_WS_URL": sim.ws_url,
                "BINANCE_REST_URL": sim.rest_url, **topics.env()}  # fmt: skip
        process = start_ingestion({**base, **env}, args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
        process.log_file.close()


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


@pytest.fixture
def pipeline(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> Iterator[Callable[[SimProcess], Pipeline]]:
    """Wire a pipeline (not yet started) to a simulator; its processes are stopped at the end."""
    made: list[Pipeline] = []

    def make(sim: SimProcess) -> Pipeline:
        env = pipeline_env(kafka_bootstrap, db_url, topics.env(), consumer_group, sim)
        pipe = Pipeline(env=env, db_url=db_url, log_dir=tmp_path, sim=sim)
        made.append(pipe)
        return pipe

    yield make
    for pipe in made:
        pipe.close()


@pytest.fixture
def pipeline_sim_args() -> tuple[str, ...]:
    """The simulator ``running_pipeline`` reads: two symbols at 100 events/s each."""
    return ("--symbols", "BTCUSDT,ETHUSDT", "--rate", "100", "--start-delay", "1")


@pytest.fixture
def running_pipeline(
    sim: Callable[..., SimProcess], pipeline: Callable[[SimProcess], Pipeline],
    pipeline_sim_args: tuple[str, ...],
) -> Pipeline:  # fmt: skip
    """Simulator -> ingestion -> broker -> worker -> TimescaleDB, running; trades already in the table
    (``.sim`` is the simulator, ``.env`` both stages' settings, ``.logs()`` their tails)."""
    pipe = pipeline(sim(*pipeline_sim_args))
    pipe.start_worker()
    pipe.start_ingestion()
    wait_for(lambda: pipe.count("trades") > 0, 90, f"the first rows\n{pipe.logs()}")
    return pipe
