"""End to end, through every real part: simulator -> ingestion -> broker -> worker -> TimescaleDB -> CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from binance_pipeline.testing.helpers import ROOT, wait_for
from binance_pipeline.testing.stages import Pipeline, control, sim_stats
from tests.e2e.conftest import SHARED_DATA

SYMBOLS = "BTCUSDT,ETHUSDT,BNBUSDT"
pytestmark = pytest.mark.slow


def expected_rows(stats: dict[str, Any]) -> tuple[int, int]:
    """(trade + aggTrade rows, bookTicker rows) the simulator generated."""
    trades = books = 0
    for per in stats["symbols"].values():
        trades += per["trade"]["generated"] + per["aggTrade"]["generated"]
        books += per["bookTicker"]["generated"]
    return trades, books


def wait_complete(pipe: Pipeline, sim: Any, timeout: float = 120) -> dict[str, Any]:
    """Wait until the simulator is done and the database holds every trade it generated."""
    wait_for(lambda: sim_stats(sim.control_url)["done"], timeout, "the simulator to finish")
    stats = sim_stats(sim.control_url)
    want_trades, _ = expected_rows(stats)
    try:
        wait_for(lambda: pipe.count("trades") >= want_trades, timeout, f"{want_trades} trade rows")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; have {pipe.count('trades')}\n{pipe.logs()}") from None
    return stats


def assert_unbroken(pipe: Pipeline, stats: dict[str, Any]) -> None:
    """Per symbol, trade and aggregate ids are exactly first..last, each once."""
    for symbol, per in stats["symbols"].items():
        for kind in ("trade", "aggTrade"):
            want = list(range(per[kind]["first_id"], per[kind]["last_id"] + 1))
            assert len(want) == per[kind]["generated"]
            assert pipe.ids(symbol, kind) == want, f"{symbol} {kind}"


def cli(pipe: Pipeline, *args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "db.query", *args, "--json"], cwd=ROOT, env={**pipe.env},
        capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(proc.stdout)


def test_counts_are_exact_and_sequences_unbroken(sim: Callable[..., Any], pipeline: Any) -> None:
    """Every generated trade, aggTrade and bookTicker lands once; ids are unbroken; `latest` matches."""
    exchange = sim("--symbols", SYMBOLS, "--rate", "400", "--max-trades", "1500", "--start-delay", "1")
    pipe: Pipeline = pipeline(exchange)
    pipe.start_worker()
    pipe.start_ingestion()
    stats = wait_complete(pipe, exchange)
    assert_unbroken(pipe, stats)
    _, want_books = expected_rows(stats)
    wait_for(lambda: pipe.count("book_ticker") >= want_books, 60, f"{want_books} book_ticker rows")
    assert pipe.count("book_ticker") == want_books
    assert pipe.count("trades") == expected_rows(stats)[0]

    with urllib.request.urlopen(f"{exchange.rest_url}/api/v3/trades?symbol=BTCUSDT&limit=1") as resp:
        last = json.loads(resp.read())[-1]
    latest = cli(pipe, "latest", "BTCUSDT")["trade"]
    assert (latest["id"], latest["price"], latest["qty"]) == (last["id"], last["price"], last["qty"])


def test_disconnect_with_dropped_events_is_repaired(sim: Callable[..., Any], pipeline: Any) -> None:
    """Dropped stream events plus a forced disconnect: after backfill the tape is complete, gaps repaired."""
    exchange = sim("--symbols", SYMBOLS, "--rate", "200", "--max-trades", "2000", "--start-delay", "1")
    pipe: Pipeline = pipeline(exchange)
    pipe.start_worker()
    pipe.start_ingestion()
    wait_for(lambda: pipe.count("trades") > 300, 60, "the first rows")
    control(exchange.control_url, "drop", symbol="BTCUSDT", share=1.0, count=60)
    dropped = lambda: sim_stats(exchange.control_url)["symbols"]["BTCUSDT"]["trade"]["dropped"]  # noqa: E731
    wait_for(lambda: dropped() > 0, 30, "drops")
    control(exchange.control_url, "disconnect")
    stats = wait_complete(pipe, exchange)
    assert_unbroken(pipe, stats)
    assert stats["symbols"]["BTCUSDT"]["trade"]["dropped"] > 0
    wait_for(lambda: pipe.query("SELECT count(*) FROM gaps WHERE status = 'open'") == [(0,)], 60, "repairs")
    id_gaps = pipe.query("SELECT symbol, stream, status FROM gaps WHERE kind = 'ids'")
    assert ("BTCUSDT", "trade", "repaired") in id_gaps and ("BTCUSDT", "aggTrade", "repaired") in id_gaps
    assert {status for _, _, status in id_gaps} == {"repaired"}
    # bookTicker has no history to backfill from: its outage windows are recorded, not repaired.
    time_gaps = pipe.query("SELECT stream, status FROM gaps WHERE kind = 'time'")
    assert time_gaps and all(g == ("bookTicker", "unrepairable") for g in time_gaps), time_gaps
    sources = dict(pipe.query("SELECT source, count(*) FROM trades GROUP BY source"))
    assert sources.get("rest", 0) > 0 and sources.get("stream", 0) > 0


def test_lifetime_rollovers_lose_and_duplicate_nothing(sim: Callable[..., Any], pipeline: Any) -> None:
    """Connections cut every few seconds by the exchange are rolled over with no loss and no duplicate."""
    exchange = sim("--symbols", SYMBOLS, "--rate", "150", "--max-trades", "1500", "--start-delay", "1",
                    "--max-lifetime", "4", "--shutdown-notice", "1")
    pipe: Pipeline = pipeline(exchange)
    pipe.start_worker()
    ingestion = pipe.start_ingestion(WS_ROLLOVER_AFTER_S="2.5")
    stats = wait_complete(pipe, exchange)
    assert_unbroken(pipe, stats)
    assert pipe.query("SELECT count(*) FROM gaps WHERE kind = 'ids'") == [(0,)], "a rollover lost events"
    port = pipe.env["INGESTION_HEALTH_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
        metrics = resp.read().decode()
    rollovers = sum(float(line.split()[-1]) for line in metrics.splitlines()
                    if line.startswith("ingestion_rollovers_total"))
    assert rollovers >= 2, f"expected several rollovers, saw {rollovers}"
    assert ingestion.popen.poll() is None


def read_aggtrades_csv(path: Any) -> list[tuple[int, str, str, int, int, int, bool]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return [(int(r[0]), r[1], r[2], int(r[3]), int(r[4]), int(r[5]), r[6] == "True") for r in rows]


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data (recorded Binance data) is absent")
def test_recorded_binance_data_lands_digit_for_digit(sim: Callable[..., Any], pipeline: Any) -> None:
    """Real recorded aggTrades replayed through the whole pipeline are stored exactly as recorded."""
    path = SHARED_DATA / "BTCUSDT-aggTrades-2026-01-01.csv"
    recorded = read_aggtrades_csv(path)
    exchange = sim("--symbols", "BTCUSDT", "--source", "replay", "--replay-file", str(path),
                    "--speed", "0", "--start-delay", "2")
    pipe: Pipeline = pipeline(exchange)
    pipe.start_worker()
    # the recordings' trade times are months old: widen the receipt-time window to let them in
    pipe.start_ingestion(SYMBOLS="BTCUSDT", STREAM_TYPES="aggTrade", INGESTION_TIME_WINDOW_S="10000000000")
    wait_for(lambda: pipe.count("trades") >= len(recorded), 120, f"{len(recorded)} aggTrades")
    rows = pipe.query(
        "SELECT id, price::text, qty::text, first_id, last_id,"
        " (extract(epoch FROM time) * 1000000)::bigint, buyer_maker"
        " FROM trades WHERE symbol = 'BTCUSDT' AND type = 'aggTrade' ORDER BY id"
    )
    assert [tuple(r) for r in rows] == recorded
