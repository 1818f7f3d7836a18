"""`make demo` twice in the same checkout: the second run streams (no stale simulator address)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg2
import pytest

from binance_pipeline.testing.helpers import ROOT, Topics
from tests.launcher.test_launcher import launcher_env, processes_with

pytestmark = pytest.mark.slow
LOGS = ROOT / ".local" / "logs"
ENV_FILE = ROOT / ".local" / "services.env"


@pytest.fixture
def keep_env_file() -> Iterator[None]:
    """`make demo` runs `services.sh up`, which rewrites .local/services.env with this test's
    endpoints; put back what was there (or nothing) afterwards."""
    before = ENV_FILE.read_bytes() if ENV_FILE.exists() else None
    yield
    if before is None:
        ENV_FILE.unlink(missing_ok=True)
    else:
        ENV_FILE.write_bytes(before)


def make_demo(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`make demo` as README writes it, in its own process group (as a terminal runs it)."""
    return subprocess.Popen(["make", "demo"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def interrupt(proc: subprocess.Popen[bytes], marker: str) -> None:
    """Ctrl-C: SIGINT to the whole group, then wait until no process of this run is left."""
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_with(marker) == []


def trades_since(db_url: str, since: datetime) -> int:
    try:
        with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM trades WHERE time >= %s", (since,))
            row = cur.fetchone()
        conn.close()
    except psycopg2.Error:  # the tables are not migrated yet
        return 0
    return int(row[0]) if row else 0


def seconds_until_rows(db_url: str, since: datetime, limit: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if trades_since(db_url, since) > 0:
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def test_second_make_demo_streams_within_30_s(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, keep_env_file: None
) -> None:
    """Started, stopped with SIGINT and started again, `make demo` writes trades within 30 s again."""
    env = launcher_env(kafka_bootstrap, db_url, topics, consumer_group)
    first_at = datetime.now(UTC)
    first = make_demo(env)
    try:
        assert seconds_until_rows(db_url, first_at, 60) is not None, "the first run never streamed"
    finally:
        interrupt(first, consumer_group)
    first_ready = (LOGS / "exchange-sim.log").read_text()

    second_at = datetime.now(UTC)
    second = make_demo(env)
    try:
        took = seconds_until_rows(db_url, second_at, 30)
        print(f"\nsecond `make demo`: first rows after {took} s")
        assert took is not None, "the second run did not stream within 30 s"
        assert (LOGS / "exchange-sim.prev.log").read_text() == first_ready
        assert (LOGS / "exchange-sim.log").read_text() != first_ready
    finally:
        interrupt(second, consumer_group)
