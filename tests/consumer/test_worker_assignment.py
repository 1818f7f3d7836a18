"""A worker on a fresh broker gets its first assignment within seconds of its topics existing.

On a fresh broker a topic just created may be unknown to the broker's metadata for a moment; a
subscription that looked then used to wait for librdkafka's 30 s metadata refresh (loop Rule 10).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from binance_pipeline.testing.brokers import PrivateKafka
from binance_pipeline.testing.helpers import Topics, wait_for
from binance_pipeline.testing.stages import WorkerProcess, worker_env

TRIALS = 3  # the race hit 2 of 4 fresh brokers before the fix: 3 trials miss it ~1 time in 8
WITHIN_S = 5.0
pytestmark = pytest.mark.slow


def _topics_exist(admin: AdminClient, names: list[str]) -> bool:
    known = admin.list_topics(timeout=5).topics
    return all(name in known and known[name].error is None for name in names)


def _time_to_assignment(db_url: str, topics: Topics, group: str, log: Path) -> float:
    """Seconds from the moment the broker lists the worker's topics to its first assignment."""
    broker = PrivateKafka(1)
    worker: WorkerProcess | None = None
    try:
        # no migrations: the measure is from the topics (created by the worker) to the assignment
        env = worker_env(broker.bootstrap, db_url, topics.env(), group, apply_migrations="false")
        worker = WorkerProcess(env, log)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        names = [topics.trades, topics.book_ticker, topics.gaps]
        wait_for(lambda: _topics_exist(admin, names), 60, f"the worker's topics\n{worker.log_tail()}",
                 interval=0.05)
        exist = time.monotonic()
        wait_for(lambda: worker.metric("worker_assigned_partitions") > 0, 60,
                 f"an assignment\n{worker.log_tail()}", interval=0.05)
        return time.monotonic() - exist
    finally:
        if worker is not None:
            worker.stop()
        broker.close()


def test_first_assignment_within_five_seconds_of_the_topics_on_a_fresh_broker(
    db_url: str, topics: Topics, consumer_group: str, tmp_path: Path,
    figure: Callable[[str, float, str], None],
) -> None:  # fmt: skip
    """Three fresh brokers: each time the worker creates its topics and is assigned within 5 s."""
    waits = [_time_to_assignment(db_url, topics, consumer_group, tmp_path / f"worker-{i}.log")
             for i in range(TRIALS)]
    figure("slowest first assignment after the topics exist", max(waits), "s")
    assert max(waits) <= WITHIN_S, waits
