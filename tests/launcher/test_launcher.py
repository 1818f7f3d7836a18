"""`python -m binance_launcher`: the whole pipeline in one command, stopped cleanly, deaths named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg2
import pytest

from binance_launcher.__main__ import SHARED_DATA
from binance_pipeline.testing.helpers import ROOT, Topics, free_port, wait_for

pytestmark = pytest.mark.slow


def launcher_env(kafka_bootstrap: str, db_url: str, topics: Topics, group: str) -> dict[str, str]:
    return {
        **os.environ, **topics.env(),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": db_url, "CONSUMER_GROUP": group,
        "INGESTION_HEALTH_PORT": str(free_port()), "WORKER_HEALTH_PORT": str(free_port()),
        "KAFKA_SESSION_TIMEOUT_MS": "6000", "BATCH_MAX_SECONDS": "0.5",
        "DASHBOARD_PORT": str(free_port()),
    }


def processes_with(marker: str) -> list[int]:
    """PIDs of live processes whose environment contains ``marker`` (our unique consumer group)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def launch(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "binance_launcher", "--log-dir", str(tmp_path), *args],
        cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_demo_shows_data_flowing_then_stops_cleanly(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> None:
    """`launcher demo` shows captured trades; SIGINT stops it with exit 0 and no process left."""
    env = launcher_env(kafka_bootstrap, db_url, topics, consumer_group)
    proc = launch(env, tmp_path, "demo", "--rate", "100")
    dashboard = f"http://127.0.0.1:{env['DASHBOARD_PORT']}"
    wait_for(lambda: answers(f"{dashboard}/_stcore/health"), 60, "the dashboard")
    time.sleep(10)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    status = out.split("latest trade in the database:")[-1]
    assert "BTCUSDT" in status and "no trades yet" not in status.split("\n")[1], out
    assert "events/s" in out and "rows/s" in out
    assert f"dashboard: {dashboard}" in out
    time.sleep(0.5)
    assert processes_with(consumer_group) == []


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


def test_replay_demo_writes_to_its_own_schema_and_says_so(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> None:
    """`demo --replay` stores replayed rows in REPLAY_SCHEMA, none in the session's tables, and says so."""
    recordings = Path(os.environ.get("SHARED_DATA_DIR", SHARED_DATA))
    if not any(recordings.glob("*.csv")):
        pytest.skip(f"no recordings in {recordings} (set SHARED_DATA_DIR)")
    schema = f"replay_{uuid.uuid4().hex[:10]}"
    env = {**launcher_env(kafka_bootstrap, db_url, topics, consumer_group), "REPLAY_SCHEMA": schema}
    try:
        proc = launch(env, tmp_path, "--once", "25", "demo", "--replay", "--replay-dir", str(recordings))
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert f"replayed rows go to schema '{schema}'" in out, out
        conn = psycopg2.connect(db_url)
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {schema}.trades")
            replayed = cur.fetchone()[0]
            cur.execute("SELECT to_regclass(format('%I.trades', current_schema()))")
            own = cur.fetchone()[0]
        conn.close()
        assert replayed > 0 and own is None, (replayed, own)
    finally:
        conn = psycopg2.connect(db_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.close()


def test_a_dying_component_is_named_with_its_log(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> None:
    """When the worker dies, the launcher names it, shows the end of its log, stops the rest and exits 1."""
    env = launcher_env(kafka_bootstrap, db_url, topics, consumer_group)
    proc = launch(env, tmp_path, "demo")
    deadline = time.monotonic() + 30
    worker = []
    while not worker and time.monotonic() < deadline:
        time.sleep(0.5)
        worker = [p for p in processes_with(consumer_group)
                  if b"consumer.worker" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert worker, "the worker never started"
    time.sleep(3)
    os.kill(worker[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "worker exited with status -9" in err and "the end of its log" in err
    time.sleep(0.5)
    assert processes_with(consumer_group) == []


def test_unreachable_exchange_is_said_plainly(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> None:
    """`launcher run` against a silent exchange says so, points to `make demo`, shows the last error."""
    env = launcher_env(kafka_bootstrap, db_url, topics, consumer_group)
    port = free_port()
    env.update(BINANCE_WS_URL=f"ws://127.0.0.1:{port}", BINANCE_REST_URL=f"http://127.0.0.1:{port}")
    proc = launch(env, tmp_path, "--once", "25", "run")
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert "cannot be reached" in out and "make demo" in out, out
    assert "ingestion not ready for" in out and "ConnectionRefusedError" in out, out


def test_demo_shows_the_self_audit_verdict(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> None:
    """The status view carries the periodic self-audit of the recent window: complete here."""
    env = {**launcher_env(kafka_bootstrap, db_url, topics, consumer_group), "SYMBOLS": "BTCUSDT",
           "SELF_AUDIT_INTERVAL_S": "5", "SELF_AUDIT_WINDOW_S": "60"}
    proc = launch(env, tmp_path, "demo", "--rate", "100")
    time.sleep(52)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    last = out.split("self-audit (last 1 min up to 30 s ago")[-1]
    assert "BTCUSDT      complete (" in last.split("\n\n")[0], out[-2000:]
