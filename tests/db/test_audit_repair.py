"""``audit --repair`` end to end: the real simulator's REST history, the real broker, a real worker
process and TimescaleDB. The tape is built from the simulator's own ids, then holed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest

from binance_pipeline.common.events import TradeMessage
from binance_pipeline.testing.helpers import Topics
from binance_pipeline.testing.stages import WorkerProcess, worker_env
from consumer.decode import to_datetime
from ingestion.parse import parse_rest_rows
from tests.db.store.audit_tape import Row, Tape

ROOT = Path(__file__).resolve().parents[2]
TRADES = 300


def rest_rows(rest_url: str, stream: str) -> list[TradeMessage]:
    path = "historicalTrades" if stream == "trade" else "aggTrades"
    req = urllib.request.Request(f"{rest_url}/api/v3/{path}?symbol=BTCUSDT&limit=1000",
                                 headers={"X-MBX-TIME-UNIT": "MICROSECOND"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return parse_rest_rows(stream, "BTCUSDT", resp.read(), 0)


def as_row(m: TradeMessage) -> Row:
    time_ = to_datetime(m["trade_time"])
    assert time_ is not None
    return (time_, m["type"], m["id"], m["first_id"], m["last_id"], m["price"], m["qty"])


def simulator_tape(rest_url: str) -> tuple[list[TradeMessage], list[TradeMessage]]:
    """The simulator's whole history once it has generated its TRADES trades."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        trades = rest_rows(rest_url, "trade")
        if len(trades) == TRADES:
            return trades, rest_rows(rest_url, "aggTrade")
        time.sleep(0.2)
    raise AssertionError("the simulator did not generate its trades")


def run_audit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "db.query", "audit", "BTCUSDT", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.slow
def test_repair_fetches_every_hole_and_the_next_audit_is_complete(
    sim, kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> None:
    """Holes, explained or not, are fetched from REST via Kafka and the worker; the audit then exits 0."""
    exchange = sim("--symbols", "BTCUSDT", "--rate", "3000", "--max-trades", str(TRADES))
    trades, aggs = simulator_tape(exchange.rest_url)
    tape = Tape(db_url)
    tape.insert(as_row(m) for m in trades + aggs)
    t0, a0 = trades[0]["id"], aggs[0]["id"]
    tape.hole("trade", t0 + 10, t0 + 19)  # unexplained
    tape.hole("trade", t0 + 40, t0 + 44)
    tape.gap("trade", t0 + 40, t0 + 44, "unrepairable")
    tape.hole("aggTrade", a0 + 5, a0 + 7)
    tape.gap("aggTrade", a0 + 5, a0 + 7, "repaired")  # its rows were lost afterwards
    tape.hole("aggTrade", a0 + 20, a0 + 21)
    tape.gap("aggTrade", a0 + 20, a0 + 21, "open")  # its backfill died with its instance
    start = as_row(trades[0])[0].isoformat()
    end = (as_row(trades[-1])[0] + timedelta(seconds=1)).isoformat()
    env = worker_env(kafka_bootstrap, db_url, topics.env(), consumer_group,
                     binance_rest_url=exchange.rest_url, audit_repair_wait_s=90)

    before = run_audit(env, "--from", start, "--to", end, "--json")
    assert before.returncode == 1, before.stdout + before.stderr
    assert [(h["stream"], h["first_id"], h["last_id"], h["explanation"])
            for h in json.loads(before.stdout)["holes"]] == [
        ("trade", t0 + 10, t0 + 19, "unexplained"), ("trade", t0 + 40, t0 + 44, "unrepairable"),
        ("aggTrade", a0 + 5, a0 + 7, "repaired"), ("aggTrade", a0 + 20, a0 + 21, "open")]

    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        fixed = run_audit(env, "--from", start, "--to", end, "--repair")
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr + worker.log_tail()
        assert "COMPLETE: BTCUSDT" in fixed.stdout
    finally:
        worker.stop()
    with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT stream, first_id, last_id, status FROM gaps WHERE reason = 'audit' ORDER BY 1, 2")
        assert cur.fetchall() == [("aggTrade", a0 + 5, a0 + 7, "repaired"),
                                  ("aggTrade", a0 + 20, a0 + 21, "repaired"),
                                  ("trade", t0 + 10, t0 + 19, "repaired"),
                                  ("trade", t0 + 40, t0 + 44, "repaired")]
    conn.close()
