"""The worker coming back by itself: a fast restart under its name, and an empty broker."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient

from binance_pipeline.testing.brokers import PrivateKafka
from binance_pipeline.testing.events import trade
from binance_pipeline.testing.helpers import Topics, committed_total, count, produce, producer, wait_for
from binance_pipeline.testing.stages import WorkerProcess
from tests.consumer.helpers import PacedProducer, assert_exactly


@pytest.mark.slow
def test_sigkilled_worker_restarted_under_its_name_writes_again_within_5_s(
    kafka_bootstrap: str, db_url: str, topics: Topics, start_worker: Callable[..., WorkerProcess],
    figure: Callable[[str, float, str], None],
) -> None:  # fmt: skip
    """Static membership: a SIGKILLed worker restarted with its WORKER_NAME writes rows within 5 s."""
    n, name = 30_000, f"w-{uuid.uuid4().hex[:8]}"
    settings = {"WORKER_NAME": name, "KAFKA_SESSION_TIMEOUT_MS": "20000", "BATCH_MAX_SECONDS": "0.5"}
    first = start_worker(**settings)
    first.wait_ready()
    stream = PacedProducer(kafka_bootstrap, topics.trades, n, seconds=20)
    wait_for(lambda: first.metric("worker_rows_written_total") > 2000, 30, "the first worker writing")
    first.signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    killed_at = time.monotonic()
    second = start_worker(**settings)
    wait_for(lambda: second.metric("worker_rows_written_total") > 0, 20, "the restarted worker writing")
    back_after = time.monotonic() - killed_at
    figure("SIGKILL to rows written again (static membership, session timeout 20 s)", back_after, "s")
    assert stream.produced < n  # it came back mid-stream
    assert back_after < 5.0
    stream.join()
    wait_for(lambda: count(db_url, "trades") == n, 60, "all rows")
    assert_exactly(db_url, n)


def test_a_second_worker_with_the_same_name_fences_the_first(
    kafka_bootstrap: str, db_url: str, topics: Topics, start_worker: Callable[..., WorkerProcess],
) -> None:  # fmt: skip
    """Two workers with one WORKER_NAME: the broker fences the older one, which exits 1; the newer writes."""
    name = f"w-{uuid.uuid4().hex[:8]}"
    older = start_worker(WORKER_NAME=name, KAFKA_SESSION_TIMEOUT_MS="20000")
    older.wait_ready()
    newer = start_worker(WORKER_NAME=name, KAFKA_SESSION_TIMEOUT_MS="20000")
    newer.wait_ready()
    assert older.wait(30) == 1  # fenced: a fatal error for it, so it stops without committing more
    produce(producer(kafka_bootstrap), topics.trades, [trade(i) for i in range(500)])
    wait_for(lambda: count(db_url, "trades") == 500, 30, "the newer worker writing")
    assert newer.proc.poll() is None
    assert newer.metric("worker_rows_written_total") == 500


def partitions_of(bootstrap: str, topic: str) -> int:
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=5)
    found = meta.topics.get(topic)
    return 0 if found is None or found.error is not None else len(found.partitions)


@pytest.mark.slow
@pytest.mark.private_broker
def test_worker_recovers_when_the_broker_comes_back_empty(
    db_url: str, topics: Topics, consumer_group: str, start_worker: Callable[..., WorkerProcess],
    figure: Callable[[str, float, str], None],
) -> None:  # fmt: skip
    """Broker replaced by an empty one on the same address: the worker recreates the topics and
    goes on from the earliest offset by itself; no old offset is committed on the new log."""
    broker = PrivateKafka()
    try:
        bootstrap = broker.bootstrap
        worker = start_worker(KAFKA_BOOTSTRAP_SERVERS=bootstrap)
        worker.wait_ready(60)
        produce(producer(bootstrap), topics.trades, [trade(i) for i in range(3000)])
        wait_for(lambda: count(db_url, "trades") == 3000, 60, "rows from the first broker")
        broker.wipe()  # stopped, its data deleted: the next start is an empty broker, same address
        broker.start()
        up_at = time.monotonic()
        wait_for(lambda: partitions_of(bootstrap, topics.trades) == 3, 90, "the topics recreated")
        produce(producer(bootstrap), topics.trades, [trade(i) for i in range(3000, 3300)])
        wait_for(lambda: count(db_url, "trades") == 3300, 60, "rows from the new broker")
        figure("empty broker ready to all its rows written", time.monotonic() - up_at, "s")
        assert_exactly(db_url, 3300)
        wait_for(lambda: committed_total(bootstrap, consumer_group, topics.trades, 3) == 300, 20,
                 "the group's offsets on the new log")
        assert worker.proc.poll() is None  # no restart
        assert worker.metric("worker_topics_recreated_total") >= 1
        assert worker.metric("worker_consumer_renewals_total") >= 1  # a new consumer for the new log
        others = (topics.book_ticker, topics.gaps, topics.dead_letter)
        assert {partitions_of(bootstrap, t) for t in others} == {3}
        worker.stop()
    finally:
        broker.close()
