"""A whole pipeline for end-to-end tests: simulator -> ingestion -> broker -> worker -> TimescaleDB.

Every part is a real process on loopback: the exchange simulator, `python -m ingestion.ws_consumer`
and `python -m consumer.worker`, with the test's own topics, consumer group and database schema.
Every process is stopped by PID when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2

from tests.utils import free_port, stop_process
from tests.utils import wait_for as wait_for  # re-exported for older callers (the helpers moved)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        return stop_process(self.popen, timeout, sig)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@dataclass
class Pipeline:
    """Env and processes of one test's pipeline; ``start_*`` launch, ``close`` stops all."""

    env: dict[str, str]
    db_url: str
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def spawn(self, name: str, module: str, *args: str, extra_env: dict[str, str] | None = None) -> Proc:
        log = self.log_dir / f"{name}-{len(self.procs)}.log"
        popen = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT, env={**os.environ, **self.env, **(extra_env or {})},
            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_ingestion(self, **extra_env: str) -> Proc:
        return self.spawn("ingestion", "ingestion.ws_consumer", extra_env=extra_env)

    def start_worker(self, **extra_env: str) -> Proc:
        return self.spawn("worker", "consumer.worker", extra_env=extra_env)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log})\n{p.tail()}" for p in self.procs)

    # --- reading the database
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = psycopg2.connect(self.db_url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        except psycopg2.errors.UndefinedTable:
            return []
        finally:
            conn.close()

    def ids(self, symbol: str, kind: str) -> list[int]:
        rows = self.query("SELECT id FROM trades WHERE symbol = %s AND type = %s ORDER BY id", (symbol, kind))
        return [r[0] for r in rows]

    def count(self, table: str = "trades") -> int:
        rows = self.query(f"SELECT count(*) FROM {table}")
        return int(rows[0][0]) if rows else 0


def sim_stats(control_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{control_url}/stats", timeout=5) as resp:
        return dict(json.loads(resp.read()))


def control(control_url: str, action: str, **body: Any) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{control_url}/{action}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return dict(json.loads(resp.read() or b"{}"))


def pipeline_env(
    kafka_bootstrap: str, db_url: str, topics_env: dict[str, str], group: str, sim: Any
) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": db_url,
        **topics_env,
        "CONSUMER_GROUP": group,
        "BINANCE_WS_URL": sim.ws_url,
        "BINANCE_REST_URL": sim.rest_url,
        "INGESTION_HEALTH_PORT": str(free_port()),
        "WORKER_HEALTH_PORT": str(free_port()),
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "BATCH_MAX_SECONDS": "0.5",
        "BACKOFF_INITIAL_S": "0.2",
        "BACKOFF_MAX_S": "2",
        "LOG_LEVEL": "INFO",
    }
