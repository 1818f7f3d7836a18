"""Database outage: a PRIVATE PostgreSQL cluster (never the shared one) is stopped under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from binance_pipeline.testing.databases import PrivatePostgres
from binance_pipeline.testing.helpers import Topics, count, query, wait_for
from binance_pipeline.testing.stages import WorkerProcess
from tests.consumer.helpers import PacedProducer


@pytest.mark.slow
def test_database_outage_under_load_recovers_and_loses_nothing(
    kafka_bootstrap: str,
    topics: Topics,
    private_pg: PrivatePostgres,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """PostgreSQL down >= 10 s under load: memory stays bounded, the worker recovers, loses nothing."""
    n = 90_000
    worker = start_worker(database_url=private_pg.url, WORKER_BUFFER_MAX_MESSAGES="5000")
    worker.wait_ready()
    stream = PacedProducer(kafka_bootstrap, topics.trades, n, seconds=25)
    wait_for(lambda: count(private_pg.url, "trades") > 10_000, 30, "rows before the outage")
    rss_before = worker.rss_kb()
    samples: list[int] = []
    paused: list[float] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.2):
            samples.append(worker.rss_kb())
            paused.append(worker.metric("worker_consumption_paused"))

    sampler = threading.Thread(target=sample, daemon=True)
    private_pg.stop()
    down_at = time.monotonic()
    sampler.start()
    wait_for(lambda: worker.get("/readyz")[0] == 503, 10, "readiness off during the outage")
    time.sleep(max(0.0, 11 - (time.monotonic() - down_at)))
    stop_sampling.set()
    sampler.join()
    outage = time.monotonic() - down_at
    private_pg.start()
    stream.join()
    wait_for(lambda: count(private_pg.url, "trades") == n, 60, "all rows after the outage")
    wait_for(lambda: worker.get("/readyz")[0] == 200, 20, "ready again")
    assert outage >= 10
    assert query(private_pg.url, "SELECT count(DISTINCT (symbol, id)), min(id), max(id) FROM trades") == [
        (n, 0, n - 1)
    ]
    assert worker.metric("worker_db_retries_total") > 0
    assert max(paused) == 1  # back-pressure engaged while the database was down
    assert max(samples) - rss_before < 60 * 1024, f"RSS grew from {rss_before} to {max(samples)} kB"
    assert worker.proc.poll() is None
