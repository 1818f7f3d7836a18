"""Migrations on a database that has never seen TimescaleDB: create the extension, or say what to run."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.errors
import pytest

from binance_pipeline.testing.events import trade
from binance_pipeline.testing.helpers import Topics, count, produce, producer, wait_for
from binance_pipeline.testing.stages import WorkerProcess, worker_env

ROOT = Path(__file__).resolve().parents[3]


def admin(database_url: str, sql: str) -> None:
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def with_database(url: str, dbname: str, user: str | None = None) -> str:
    """``url`` pointed at another database (and user); the query string is dropped."""
    parts = urlsplit(url)
    netloc = parts.netloc if user is None else f"{user}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, f"/{dbname}", "", ""))


def rows(url: str) -> int:
    """Rows in trades, 0 while the worker has not migrated yet."""
    try:
        return count(url, "trades")
    except psycopg2.errors.UndefinedTable:
        return 0


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[Callable[[], str]]:
    """Factory of new, empty databases in the test cluster (no extension); dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"fresh_{uuid.uuid4().hex[:10]}"
        admin(database_url, f"CREATE DATABASE {name}")
        made.append(name)
        return name

    yield make
    for name in made:
        admin(database_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_worker_migrates_a_fresh_database_and_writes_rows(
    database_url: str, fresh_database: Callable[[], str], kafka_bootstrap: str, topics: Topics,
    consumer_group: str, tmp_path: Path,
) -> None:
    """A worker pointed at a new database (no timescaledb yet) creates the extension, migrates, writes."""
    url = with_database(database_url, fresh_database())
    produce(producer(kafka_bootstrap), topics.trades, [trade(i) for i in range(1, 301)])
    env = worker_env(kafka_bootstrap, url, topics.env(), consumer_group, batch_max_seconds=0.5)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        wait_for(lambda: rows(url) == 300, 60, f"300 rows ({worker.log_tail()})", interval=0.5)
    finally:
        worker.stop()
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == ["book_ticker", "trades"]
    conn.close()


@pytest.fixture
def unprivileged_url(database_url: str, fresh_database: Callable[[], str]) -> Iterator[str]:
    """A fresh database, reached as a new role that may not create extensions; both dropped after."""
    role, name = f"nosuper_{uuid.uuid4().hex[:8]}", fresh_database()
    admin(database_url, f"CREATE ROLE {role} LOGIN PASSWORD 'hunter2'")
    try:
        admin(with_database(database_url, name), f"GRANT ALL ON SCHEMA public TO {role}")
        yield with_database(database_url, name, user=f"{role}:hunter2")
    finally:
        admin(database_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin(database_url, f"DROP ROLE IF EXISTS {role}")


def test_a_role_that_cannot_create_the_extension_gets_one_line(
    database_url: str, unprivileged_url: str
) -> None:
    """Without the right to CREATE EXTENSION: exit 1, one line naming host:port/dbname and what to run."""
    env = {**os.environ, "DATABASE_URL": unprivileged_url}
    proc = subprocess.run([sys.executable, "-m", "db.migrate"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    host_port = urlsplit(database_url).netloc.rpartition("@")[2]
    assert f"database {host_port}{urlsplit(unprivileged_url).path}" in lines[0]
    assert "CREATE EXTENSION timescaledb" in lines[0] and "shared_preload_libraries" in lines[0]
    assert "hunter2" not in lines[0]


def test_the_worker_stops_saying_what_to_run(
    unprivileged_url: str, kafka_bootstrap: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> None:
    """The worker on such a database exits 1 and its log says which database and what to run."""
    env = worker_env(kafka_bootstrap, unprivileged_url, topics.env(), consumer_group)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        assert worker.wait(60) == 1
    finally:
        worker.stop()
    log = worker.log_path.read_text()
    assert "CREATE EXTENSION timescaledb" in log and "hunter2" not in log
