"""Ingestion killed, stopped and restarted: the tape stays complete and every outage is a recorded gap.

Every part is real: the simulator, ingestion and the worker as subprocesses, the broker, TimescaleDB.
"""

from __future__ import annotations

import signal
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from binance_pipeline.testing.helpers import metric_sum, wait_for
from binance_pipeline.testing.stages import Pipeline, control, sim_stats
from tests.e2e.test_pipeline import assert_unbroken, wait_complete

pytestmark = pytest.mark.slow
SYMBOLS = "BTCUSDT,ETHUSDT,BNBUSDT"
KILL, TERM = signal.SIGKILL, signal.SIGTERM


def metric(pipe: Pipeline, name: str, **labels: str) -> float:
    """Sum of the running ingestion's samples of ``name`` with ``labels`` (0 while it is not serving)."""
    url = f"http://127.0.0.1:{pipe.env['INGESTION_HEALTH_PORT']}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return metric_sum(answer.read().decode(), name, **labels)
    except OSError:
        return 0.0


def open_gaps(pipe: Pipeline) -> list[tuple[Any, ...]]:
    return pipe.query("SELECT gap_id, reason FROM gaps WHERE status = 'open'")


def test_killed_and_stopped_five_times_the_tape_is_complete(sim: Callable[..., Any], pipeline: Any) -> None:
    """3 SIGKILLs and 2 SIGTERMs at ~180 trades/s: every id once; each outage a repaired 'restart' gap."""
    exchange = sim("--symbols", SYMBOLS, "--rate", "200", "--start-delay", "1")
    pipe: Pipeline = pipeline(exchange)
    pipe.start_worker()
    ingestion = pipe.start_ingestion()
    for sig in (KILL, TERM, KILL, TERM, KILL, None):
        # live events on the new connection (not only backfilled rows): every stream made first contact
        wait_for(lambda: metric(pipe, "ingestion_events_received") > 100, 60, "a streaming instance")
        time.sleep(2)  # let the instance stream (and write its frontier)
        if sig is None:
            break
        assert ingestion.stop(sig) == (0 if sig == TERM else -KILL), ingestion.tail()
        time.sleep(5)
        ingestion = pipe.start_ingestion()
    control(exchange.control_url, "pause")
    stats = sim_stats(exchange.control_url)
    want = sum(per[k]["generated"] for per in stats["symbols"].values() for k in ("trade", "aggTrade"))
    wait_for(lambda: pipe.count("trades") >= want, 120, f"{want} trade and aggTrade rows")
    assert_unbroken(pipe, stats)
    wait_for(lambda: not [g for g in open_gaps(pipe) if "/ids/" in g[0]], 90, "every id gap closed")
    assert ingestion.stop(TERM) == 0  # closes the bookTicker window of the paused feed, if one is open
    wait_for(lambda: not open_gaps(pipe), 30, "every gap closed")
    restart = pipe.query(
        "SELECT symbol, stream, status, count(*) FROM gaps WHERE kind = 'ids' AND reason = 'restart'"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2"
    )
    want_gaps = [(s, k, "repaired", 5) for s in sorted(SYMBOLS.split(",")) for k in ("aggTrade", "trade")]
    assert restart == want_gaps, pipe.logs()
    assert pipe.query("SELECT count(*) FROM gaps WHERE kind = 'ids' AND status <> 'repaired'") == [(0,)]
    sources = dict(pipe.query("SELECT source, count(*) FROM trades GROUP BY source"))
    assert sources.get("rest", 0) > 0


def test_backfill_killed_midway_is_finished_by_the_next_instance(
    sim: Callable[..., Any], pipeline: Any
) -> None:
    """A restart backfill cut off by SIGKILL after its first page is completed by the next instance."""
    exchange = sim("--symbols", "BTCUSDT", "--rate", "400", "--max-trades", "4000", "--start-delay", "1")
    pipe: Pipeline = pipeline(exchange)
    pipe.start_worker()
    env = {"SYMBOLS": "BTCUSDT", "STREAM_TYPES": "trade"}
    first = pipe.start_ingestion(**env)
    wait_for(lambda: pipe.count("trades") > 100, 60, "the first rows")
    first.stop(KILL)
    wait_for(lambda: sim_stats(exchange.control_url)["symbols"]["BTCUSDT"]["trade"]["generated"]
             > pipe.count("trades") + 1500, 60, "1500 trades missed")  # fmt: skip
    # One historicalTrades page (weight 25) a minute: the 1500-id restart gap needs two pages.
    slow = pipe.start_ingestion(REST_WEIGHT_BUDGET_PER_MIN="25", **env)
    wait_for(lambda: metric(pipe, "ingestion_backfilled_events", type="trade") >= 1000, 60, "a first page")
    restart_gaps = lambda: pipe.query("SELECT gap_id, status FROM gaps WHERE reason = 'restart'")  # noqa: E731
    wait_for(lambda: bool(restart_gaps()), 30, "the restart gap in the database")
    cut = restart_gaps()
    time.sleep(1)  # the frontier holds the open gap (written every 500 ms)
    assert metric(pipe, "ingestion_backfill_remaining_ids") > 0, "the backfill was not cut mid-way"
    slow.stop(KILL)
    pipe.start_ingestion(**env)
    wait_for(lambda: sim_stats(exchange.control_url)["done"], 120, "the simulator to finish")
    trades = sim_stats(exchange.control_url)["symbols"]["BTCUSDT"]["trade"]
    wait_for(lambda: pipe.count("trades") >= trades["generated"], 120, "every trade")
    assert pipe.ids("BTCUSDT", "trade") == list(range(trades["first_id"], trades["last_id"] + 1))
    wait_for(lambda: not open_gaps(pipe), 60, "every gap closed")
    assert cut and all(status == "open" for _, status in cut), cut
    gap_id = cut[0][0]
    assert pipe.query("SELECT status FROM gaps WHERE gap_id = %s", (gap_id,)) == [("repaired",)]


def test_quiet_feed_and_clean_stop_leave_no_open_gap(sim: Callable[..., Any], pipeline: Any) -> None:
    """The stream ends (the connection stalls and is replaced), ingestion stops cleanly: no gap stays open."""
    exchange = sim("--symbols", "BTCUSDT,ETHUSDT", "--rate", "200", "--max-trades", "300",
                   "--start-delay", "1")
    pipe: Pipeline = pipeline(exchange)
    pipe.start_worker()
    ingestion = pipe.start_ingestion(SYMBOLS="BTCUSDT,ETHUSDT", WS_STALL_TIMEOUT_S="2")
    wait_complete(pipe, exchange, timeout=60)
    wait_for(lambda: metric(pipe, "ingestion_reconnects") >= 1, 30, "a stall reconnect")
    wait_for(lambda: bool(open_gaps(pipe)), 30, "the quiet bookTicker window recorded as open")
    assert ingestion.stop(TERM) == 0, ingestion.tail()
    wait_for(lambda: not open_gaps(pipe), 30, "no open gap", interval=0.5)
    closed = pipe.query("SELECT stream, status, end_time IS NOT NULL FROM gaps WHERE kind = 'time'")
    assert closed and set(closed) == {("bookTicker", "unrepairable", True)}, closed


def test_restart_gap_beyond_rest_history_is_recorded_unrepairable(
    sim: Callable[..., Any], pipeline: Any
) -> None:
    """Ids missed while down that REST no longer has: the restart gap says so, status unrepairable."""
    exchange = sim("--symbols", "BTCUSDT", "--rate", "400", "--history-cap", "300", "--start-delay", "1")
    pipe: Pipeline = pipeline(exchange)
    pipe.start_worker()
    env = {"SYMBOLS": "BTCUSDT", "STREAM_TYPES": "trade"}
    ingestion = pipe.start_ingestion(**env)
    wait_for(lambda: pipe.count("trades") > 100, 60, "the first rows")
    ingestion.stop(KILL)
    wait_for(lambda: sim_stats(exchange.control_url)["symbols"]["BTCUSDT"]["trade"]["generated"]
             > pipe.count("trades") + 600, 60, "600 trades missed")  # fmt: skip
    pipe.start_ingestion(**env)
    query = "SELECT status, reason, missing FROM gaps WHERE reason LIKE 'restart%%'"
    wait_for(lambda: [g for g in pipe.query(query) if g[0] != "open"] != [], 60, "the restart gap resolved")
    [(status, reason, missing)] = pipe.query(query)
    assert status == "unrepairable" and "REST no longer has ids" in reason, reason
    assert 0 < missing, missing
