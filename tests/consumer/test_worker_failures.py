"""The worker process under failure: SIGKILL, rebalances, poison messages, SIGTERM."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable

import orjson
import pytest

from binance_pipeline.common.events import HDR_OFFSET, HDR_PARTITION, HDR_REASON, HDR_STAGE, HDR_TOPIC
from binance_pipeline.testing.events import book, trade
from binance_pipeline.testing.helpers import (
    Topics,
    committed_total,
    count,
    produce,
    producer,
    read_all,
    wait_for,
)
from binance_pipeline.testing.stages import WorkerProcess
from tests.consumer.helpers import PacedProducer, assert_exactly


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    kafka_bootstrap: str,
    db_url: str,
    topics: Topics,
    consumer_group: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """SIGKILLed five times mid-stream and restarted, the worker ends with each event exactly once."""
    n, rng = 110_000, random.Random(5)
    stream = PacedProducer(kafka_bootstrap, topics.trades, n, seconds=50)
    for _ in range(5):
        worker = start_worker(BATCH_MAX_SECONDS="0.5", KAFKA_SESSION_TIMEOUT_MS="6000")
        wait_for(lambda w=worker: w.metric("worker_flush_rows_count") > 0, 40, "the worker flushing")
        time.sleep(rng.uniform(0.05, 2.0))
        assert stream.produced < n  # killed mid-stream
        worker.signal(signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
    stream.join()
    final = start_worker(KAFKA_SESSION_TIMEOUT_MS="6000")
    wait_for(lambda: count(db_url, "trades") == n, 90, "all rows after the restarts")
    assert_exactly(db_url, n)
    wait_for(lambda: final.metric("worker_buffered_messages") == 0, 10, "nothing buffered")
    final.signal(signal.SIGTERM)
    assert final.wait(30) == 0
    check = start_worker(KAFKA_SESSION_TIMEOUT_MS="6000")
    check.wait_ready()
    time.sleep(3)
    # the group's committed offsets are at the end: a fresh member has nothing to replay. (Asked from
    # outside the group, Tansu's OffsetFetch can answer stale offsets after members were killed.)
    assert check.metric("worker_messages_consumed_total") == 0


@pytest.mark.slow
def test_second_worker_joins_and_leaves_mid_stream(
    kafka_bootstrap: str,
    db_url: str,
    topics: Topics,
    consumer_group: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """A second worker joins and later leaves the group mid-stream: partitions are shared, counts exact."""
    n = 60_000
    first = start_worker()
    first.wait_ready()
    stream = PacedProducer(kafka_bootstrap, topics.trades, n, seconds=20)
    wait_for(lambda: count(db_url, "trades") > 5000, 30, "first worker writing")
    second = start_worker()
    second.wait_ready()
    wait_for(lambda: second.metric("worker_rows_written_total") > 0, 20, "second worker writing")
    assert 0 < second.metric("worker_assigned_partitions") < 9
    time.sleep(2)
    second.signal(signal.SIGTERM)
    assert second.wait(30) == 0
    stream.join()
    wait_for(lambda: count(db_url, "trades") == n, 60, "all rows")
    assert_exactly(db_url, n)


def test_poison_goes_to_dead_letter_with_reasons_and_the_rest_is_written(
    kafka_bootstrap: str,
    db_url: str,
    topics: Topics,
    consumer_group: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """Undecodable messages and rows the database rejects are dead-lettered; the rest is written."""
    good = [trade(i) for i in range(1000)]
    undecodable = [b"not json", b"{}", orjson.dumps(trade(5000, price=1.5)), orjson.dumps(trade(5001, v=9))]
    rejected = [trade(6000, price="-1"), trade(6001, id=2**63), trade(6002, qty="1" + "0" * 25)]
    worker = start_worker()
    worker.wait_ready()  # the worker creates the topics (3 partitions) before we produce
    p = producer(kafka_bootstrap)
    mixed: list[dict[str, object] | bytes] = [
        *good[:500],
        *undecodable[:2],
        *rejected,
        *good[500:],
        *undecodable[2:],
    ]
    produce(p, topics.trades, mixed, key=b"BTCUSDT")
    produce(p, topics.book_ticker, [book(1), b"\xff\xfe"], key=b"BTCUSDT")
    total = len(mixed)
    wait_for(
        lambda: committed_total(kafka_bootstrap, consumer_group, topics.trades, 3) == total,
        40,
        "all committed",
    )
    wait_for(lambda: committed_total(kafka_bootstrap, consumer_group, topics.book_ticker, 3) == 2, 20, "book")
    dead = read_all(kafka_bootstrap, topics.dead_letter, expected=8, idle_s=1.0, timeout=30)
    assert count(db_url, "trades") == len(good) and count(db_url, "book_ticker") == 1
    headers = [{k: v.decode() for k, v in r.headers.items()} for r in dead]
    assert len(dead) == 8
    assert all(h[HDR_STAGE] == "worker" and h[HDR_REASON] for h in headers)
    by_value = {r.value: h for r, h in zip(dead, headers, strict=True)}
    assert set(by_value) == {*undecodable, *(orjson.dumps(r) for r in rejected), b"\xff\xfe"}
    assert by_value[b"not json"][HDR_REASON].startswith("not JSON")
    assert by_value[orjson.dumps(rejected[0])][HDR_REASON].startswith("23514")
    assert by_value[orjson.dumps(rejected[1])][HDR_REASON].startswith("22003")
    h = by_value[b"{}"]
    assert h[HDR_TOPIC] == topics.trades and h[HDR_OFFSET] == "501" and h[HDR_PARTITION].isdigit()
    assert worker.metric("worker_dead_letters_total") == 8


def test_sigterm_flushes_commits_and_exits_zero(
    kafka_bootstrap: str,
    db_url: str,
    topics: Topics,
    consumer_group: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """On SIGTERM the worker writes what it buffered, commits it, and exits 0."""
    worker = start_worker(BATCH_MAX_ROWS="100000", BATCH_MAX_SECONDS="300")
    worker.wait_ready()
    produce(producer(kafka_bootstrap), topics.trades, [trade(i) for i in range(3000)])
    wait_for(lambda: worker.metric("worker_messages_consumed_total") == 3000, 30, "all consumed")
    assert count(db_url, "trades") == 0  # buffered, not yet due
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert_exactly(db_url, 3000)
    assert committed_total(kafka_bootstrap, consumer_group, topics.trades, 3) == 3000


def test_help_lists_the_settings() -> None:
    """``python -m consumer.worker --help`` documents the environment variables."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "consumer.worker", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "BATCH_MAX_ROWS" in out and "CONSUMER_GROUP" in out and "WORKER_BUFFER_MAX_MESSAGES" in out
