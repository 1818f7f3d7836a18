"""The worker against the real broker and TimescaleDB: exactly one row per distinct event."""

from __future__ import annotations

from collections.abc import Callable

from binance_pipeline.testing.events import book, gap, trade
from binance_pipeline.testing.helpers import (
    Topics,
    committed_total,
    count,
    produce,
    producer,
    query,
    wait_for,
)
from binance_pipeline.testing.stages import WorkerProcess


def test_n_distinct_events_give_n_rows_and_a_replay_adds_none(
    kafka_bootstrap: str,
    db_url: str,
    topics: Topics,
    consumer_group: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """N distinct events produced give N rows; producing them all again still gives N rows."""
    n = 5000
    worker = start_worker()
    worker.wait_ready()
    p = producer(kafka_bootstrap)
    produce(p, topics.trades, [trade(i) for i in range(n)])
    produce(p, topics.book_ticker, [book(i) for i in range(300)])
    wait_for(lambda: count(db_url, "trades") == n and count(db_url, "book_ticker") == 300, 30, "first pass")

    produce(p, topics.trades, [trade(i) for i in range(n)])  # the same events again
    produce(p, topics.book_ticker, [book(i, received_at=book(i)["received_at"]) for i in range(300)])
    wait_for(
        lambda: committed_total(kafka_bootstrap, consumer_group, topics.trades, 3) == 2 * n,
        30,
        "second pass committed",
    )
    assert count(db_url, "trades") == n
    assert count(db_url, "book_ticker") == 300
    assert worker.metric("worker_rows_written_total", table="trades") == n
    assert worker.metric("worker_rows_duplicate_total", table="trades") == n
    ids = query(db_url, "SELECT symbol, id FROM trades")
    assert sorted(i for _, i in ids) == list(range(n))


def test_gap_records_keep_the_most_advanced_status(
    kafka_bootstrap: str,
    db_url: str,
    topics: Topics,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """Gap records upsert by gap_id; a later 'open' never downgrades a repaired gap."""
    worker = start_worker()
    worker.wait_ready()
    p = producer(kafka_bootstrap)
    produce(p, topics.gaps, [gap("g/1", "open"), gap("g/2", "open"), gap("g/1", "repaired")], key=b"BTCUSDT")
    wait_for(lambda: count(db_url, "gaps") == 2, 30, "two gaps")
    produce(p, topics.gaps, [gap("g/1", "open"), gap("g/2", "unrepairable")])
    wait_for(
        lambda: query(db_url, "SELECT status FROM gaps WHERE gap_id = 'g/2'") == [("unrepairable",)],
        30,
        "g/2 unrepairable",
    )
    assert query(db_url, "SELECT gap_id, status, repaired_at IS NOT NULL FROM gaps ORDER BY gap_id") == [
        ("g/1", "repaired", True),
        ("g/2", "unrepairable", True),
    ]
