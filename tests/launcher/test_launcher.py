"""`python -m launcher`: the whole pipeline in one command, stopped cleanly, deaths reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Topics
from tests.e2e.pipeline import ROOT
from tests.utils import free_port

pytestmark = pytest.mark.slow


def launcher_env(kafka_bootstrap: str, db_url: str, topics: Topics, group: str) -> dict[str, str]:
    return {
        **os.environ, **topics.env(),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": db_url, "CONSUMER_GROUP": group,
        "INGESTION_HEALTH_PORT": str(free_port()), "WORKER_HEALTH_PORT": str(free_port()),
        "KAFKA_SESSION_TIMEOUT_MS": "6000", "BATCH_MAX_SECONDS": "0.5",
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
        [sys.executable, "-m", "launcher", "--log-dir", str(tmp_path), *args], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_demo_shows_data_flowing_then_stops_cleanly(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> None:
    """`launcher demo` shows captured trades; SIGINT stops it with exit 0 and no process left."""
    env = launcher_env(kafka_bootstrap, db_url, topics, consumer_group)
    proc = launch(env, tmp_path, "demo", "--rate", "100")
    time.sleep(25)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    status = out.split("latest trade in the database:")[-1]
    assert "BTCUSDT" in status and "no trades yet" not in status.split("\n")[1], out
    assert "events/s" in out and "rows/s" in out
    time.sleep(0.5)
    assert processes_with(consumer_group) == []


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
    """`launcher run` against an exchange that does not answer says so and points to `make demo`."""
    env = launcher_env(kafka_bootstrap, db_url, topics, consumer_group)
    port = free_port()
    env.update(BINANCE_WS_URL=f"ws://127.0.0.1:{port}", BINANCE_REST_URL=f"http://127.0.0.1:{port}")
    proc = launch(env, tmp_path, "--once", "25", "run")
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert "cannot be reached" in out and "make demo" in out, out
