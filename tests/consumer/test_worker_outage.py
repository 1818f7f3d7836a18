"""Database outage: a PRIVATE PostgreSQL cluster (never the shared one) is stopped under load."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import Topics
from tests.consumer.helpers import PacedProducer, WorkerProcess
from tests.utils import count, free_port, query, wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """initdb + pg_ctl on a loopback port of its own, run as ``postgres`` when we are root."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="worker-outage-pg-"))
        self.data, self.port = self.dir / "data", free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/pipeline"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.dir}'\nshared_preload_libraries = 'timescaledb'\n"
                "timescaledb.telemetry_level = off\nfsync = off\n"
            )
        self.start()
        conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE pipeline")
        conn.close()
        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.close()

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL + TimescaleDB cluster, stopped and removed at the end."""
    pg = PrivatePostgres()
    try:
        pg.init()
        yield pg
    finally:
        pg.destroy()


@pytest.mark.slow
def test_database_outage_under_load_recovers_and_loses_nothing(
    kafka_bootstrap: str,
    topics: Topics,
    private_pg: PrivatePostgres,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """PostgreSQL down >= 10 s under load: memory stays bounded, the worker recovers, loses nothing."""
    n = 90_000
    worker = start_worker(database_url=private_pg.url, WORKER_BUFFER_MAX_MESSAGES="5000")
    worker.wait_ready()
    stream = PacedProducer(kafka_bootstrap, topics.trades, n, seconds=25)
    wait_for(lambda: count(private_pg.url, "trades") > 10_000, 30, "rows before the outage")
    rss_before = worker.rss_kb()
    samples: list[int] = []
    paused: list[float] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.2):
            samples.append(worker.rss_kb())
            paused.append(worker.metric("worker_consumption_paused"))

    sampler = threading.Thread(target=sample, daemon=True)
    private_pg.stop()
    down_at = time.monotonic()
    sampler.start()
    wait_for(lambda: worker.get("/readyz")[0] == 503, 10, "readiness off during the outage")
    time.sleep(max(0.0, 11 - (time.monotonic() - down_at)))
    stop_sampling.set()
    sampler.join()
    outage = time.monotonic() - down_at
    private_pg.start()
    stream.join()
    wait_for(lambda: count(private_pg.url, "trades") == n, 60, "all rows after the outage")
    wait_for(lambda: worker.get("/readyz")[0] == 200, 20, "ready again")
    assert outage >= 10
    assert query(private_pg.url, "SELECT count(DISTINCT (symbol, id)), min(id), max(id) FROM trades") == [
        (n, 0, n - 1)
    ]
    assert worker.metric("worker_db_retries_total") > 0
    assert max(paused) == 1  # back-pressure engaged while the database was down
    assert max(samples) - rss_before < 60 * 1024, f"RSS grew from {rss_before} to {max(samples)} kB"
    assert worker.proc.poll() is None
