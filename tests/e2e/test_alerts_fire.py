"""An alert rule fires on a real Prometheus (Debian's package, started here on 127.0.0.1:<free port>)
scraping a real pipeline (simulator -> ingestion -> broker -> worker -> TimescaleDB) whose worker is
wedged: its tables are locked, so every insert waits, as with a database that hangs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

from binance_pipeline.testing.helpers import wait_for
from binance_pipeline.testing.stages import Pipeline
from tests.deploy.prometheus import ALERTS, Prometheus, short_rules, tool, up_targets


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[dict[str, str], str], Prometheus]]:
    """Start Prometheus servers (Debian's, or skip before any pipeline starts); stopped at the end."""
    tool("prometheus")
    started: list[Prometheus] = []

    def start(targets: dict[str, str], rules: str) -> Prometheus:
        started.append(Prometheus(tmp_path, targets, rules))
        return started[-1]

    yield start
    for p in started:
        p.stop()


@pytest.mark.slow
def test_worker_not_writing_alert_fires_on_a_real_prometheus(
    prometheus: Callable[[dict[str, str], str], Prometheus], running_pipeline: Pipeline,
    figure: Callable[[str, float, str], None],
) -> None:  # fmt: skip
    """Both stages scraped every second; the worker's tables locked (its inserts hang, a real wedged
    database): WorkerNotWriting fires (rules with 20 s windows and 5 s `for:`), and not before."""
    pipe = running_pipeline  # two symbols at 100 events/s, rows already written
    wait_for(lambda: pipe.count("trades") > 100, 90, f"the first rows\n{pipe.logs()}")
    prom = prometheus({"worker": f"127.0.0.1:{pipe.env['WORKER_HEALTH_PORT']}",
                       "ingestion": f"127.0.0.1:{pipe.env['INGESTION_HEALTH_PORT']}"},
                      short_rules(ALERTS.read_text()))
    wait_for(lambda: up_targets(prom) == 2, 60, "Prometheus scraping both stages")
    time.sleep(25)  # a full window of writes: nothing may fire while the worker writes
    assert "WorkerNotWriting" not in prom.firing()
    lock = psycopg2.connect(pipe.db_url)
    try:
        with lock.cursor() as cur:  # held until rollback: every insert of the worker waits
            cur.execute("LOCK TABLE trades, book_ticker IN ACCESS EXCLUSIVE MODE")
        wedged = time.monotonic()
        wait_for(lambda: "WorkerNotWriting" in prom.firing(), 90, "WorkerNotWriting to fire")
        figure("WorkerNotWriting firing after the tables were locked (20 s window, for: 5s)",
               time.monotonic() - wedged, "s")
    finally:
        lock.rollback()
        lock.close()
    count = pipe.count("trades")
    wait_for(lambda: pipe.count("trades") > count, 60, "rows written again once the lock is gone")
