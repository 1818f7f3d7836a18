"""A private PostgreSQL 15 + TimescaleDB cluster of one test's own, which the test may stop and start.

The shared database must never be stopped by a test; a test that takes the database away uses
this one, on a free loopback port, removed at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg2

from binance_pipeline.testing.helpers import free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))  # initdb, pg_ctl


class PrivatePostgres:
    """initdb + pg_ctl on a loopback port of its own, run as ``postgres`` when we are root."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="private-pg-"))
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
