"""The worker records the time span of an id gap's data, so gaps are found by the data's time."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta

from binance_pipeline.testing.events import T0_US, gap, trade
from binance_pipeline.testing.helpers import ROOT, Topics, produce, producer, query, wait_for
from binance_pipeline.testing.stages import WorkerProcess
from consumer.decode import to_datetime
from db.service import queries

HOURS_LATER = T0_US + 3 * 3600 * 1_000_000


def at_ms(ms: float) -> object:
    value = to_datetime(T0_US + int(ms * 1000))
    assert value is not None
    return value


def span(db_url: str) -> list[tuple[object, ...]]:
    return query(db_url, "SELECT data_start, data_end, span_settled FROM gaps")


def found(db_url: str, start_ms: float, end_ms: float) -> list[str]:
    conn = queries.connect(db_url)
    try:
        res = queries.completeness(conn, "BTCUSDT", at_ms(start_ms), at_ms(end_ms))  # type: ignore[arg-type]
    finally:
        conn.close()
    return [g.gap_id for g in res.gaps]


def test_gaps_are_found_by_the_time_of_their_data_not_of_their_detection(
    kafka_bootstrap: str, db_url: str, topics: Topics, start_worker: Callable[..., WorkerProcess],
) -> None:
    """An id gap detected 3 h after its data is selected by its data's time; repaired rows make
    the span exact."""
    worker = start_worker()
    worker.wait_ready()
    p = producer(kafka_bootstrap)
    # trade i has time T0 + i ms; ids 41..60 are missing, and noticed three hours later
    produce(p, topics.trades, [trade(i, "BTCUSDT") for i in range(1, 101) if not 41 <= i <= 60])
    record = gap("BTCUSDT/trade/ids/41-60", "open", first_id=41, last_id=60, missing=20,
                 detected_at=HOURS_LATER)
    produce(p, topics.gaps, [record])
    wait_for(lambda: span(db_url) == [(at_ms(40), at_ms(61), False)], 30, "the neighbours' span")

    assert found(db_url, 45, 50) == ["BTCUSDT/trade/ids/41-60"]
    cli = subprocess.run(
        [sys.executable, "-m", "db.query", "gaps", "BTCUSDT", "--json", "--from", str(T0_US // 1000 + 45),
         "--to", str(T0_US // 1000 + 50)], cwd=ROOT, env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True, text=True, timeout=60, check=False)
    assert cli.returncode == 0 and '"gap_id": "BTCUSDT/trade/ids/41-60"' in cli.stdout, cli.stderr
    assert found(db_url, 0, 39) == []
    hours_later_ms = (HOURS_LATER - T0_US) / 1000
    assert found(db_url, hours_later_ms - 60_000, hours_later_ms + 60_000) == []

    produce(p, topics.trades, [trade(i, "BTCUSDT", source="rest", event_time=None) for i in range(41, 61)])
    produce(p, topics.gaps, [{**record, "status": "repaired", "repaired_at": HOURS_LATER + 1}])
    wait_for(lambda: span(db_url) == [(at_ms(41), at_ms(60), True)], 30, "the repaired rows' span")
    assert found(db_url, 60, 70) == ["BTCUSDT/trade/ids/41-60"]
    assert timedelta(0) < at_ms(60) - at_ms(41)  # type: ignore[operator]
