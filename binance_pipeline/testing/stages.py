"""The stages as real subprocesses on loopback: ingestion, the worker, and a whole pipeline
(simulator -> ingestion -> broker -> worker -> TimescaleDB) wired to a test's own topics and schema.

Rule 1: a stage is started by module name (``python -m ingestion.ws_consumer``), never imported, so
        the kit depends on no stage's code and a test sees exactly what a user runs.
Rule 2: every process is stopped by its own PID when its owner stops (``stop``/``close``).
Rule 3: timers are short (``FAST_ENV``, ``pipeline_env``) so a test runs in seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg2

from binance_pipeline.testing.helpers import ROOT, free_port, metric_sum, stop_process, wait_for
from exchange_sim.testing import SimProcess

# Rule 3: short timers for ingestion.
FAST_ENV = {
    "BACKOFF_INITIAL_S": "0.1",
    "BACKOFF_MAX_S": "1",
    "WS_STALL_TIMEOUT_S": "10",
    "WS_HANDOFF_TIMEOUT_S": "3",
    "PRODUCER_ACK_STALL_S": "1",
    "PRODUCER_FLUSH_TIMEOUT_S": "10",
    "INGESTION_HEALTH_PORT": "0",
    "LOG_LEVEL": "INFO",
}


def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    """(status, body) of GET 127.0.0.1:port/path; an HTTP error status is returned, not raised."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- ingestion
@dataclass
class Ingestion:
    """A running ``python -m ingestion.ws_consumer`` subprocess."""

    process: subprocess.Popen[bytes]
    log_file: IO[bytes]
    health_port: int
    stopped_rc: int | None = field(default=None)

    def log(self) -> str:
        self.log_file.flush()
        return Path(self.log_file.name).read_text("utf-8", "replace")

    def get(self, path: str) -> tuple[int, Any]:
        """(status, JSON body or text) of the health port's ``path``; raises OSError when it is closed."""
        status, body = http_get(self.health_port, path)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        return metric_sum(str(self.get("/metrics")[1]), name, **labels)

    def stop(self, timeout: float = 30.0) -> int:
        if self.stopped_rc is None:
            self.stopped_rc = stop_process(self.process, timeout)
        return self.stopped_rc


def captured_symbols(health_port: int) -> set[str]:
    """The symbols an ingestion on ``health_port`` captures now (``ingestion_symbol_captured``);
    empty while its port does not answer."""
    try:
        text = http_get(health_port, "/metrics", timeout=2)[1].decode()
    except OSError:
        return set()
    return {line.split('symbol="')[1].split('"')[0] for line in text.splitlines()
            if line.startswith("ingestion_symbol_captured{")}  # fmt: skip


def trading_symbols(rest_url: str, quote: str) -> set[str]:
    """The symbols of quote asset ``quote`` that the exchange at ``rest_url`` lists as TRADING."""
    with urllib.request.urlopen(f"{rest_url}/api/v3/exchangeInfo", timeout=5) as answer:
        info = json.loads(answer.read())
    return {s["symbol"] for s in info["symbols"] if s["status"] == "TRADING" and s["quoteAsset"] == quote}


def start_ingestion(env: dict[str, str], args: Iterable[str] = ()) -> Ingestion:
    """Start ingestion with ``env`` on top of FAST_ENV and wait until its health port answers."""
    port = free_port()
    full = {**os.environ, **FAST_ENV, "INGESTION_HEALTH_PORT": str(port), **env}
    log_file = tempfile.NamedTemporaryFile(prefix="ingestion-", suffix=".log")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingestion.ws_consumer", *args],
        env=full, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip
    ing = Ingestion(proc, log_file, port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ingestion exited {proc.returncode}: {ing.log()[-2000:]}")
        try:
            ing.get("/healthz")
        except OSError:
            time.sleep(0.1)
        else:
            return ing
    ing.stop()
    raise RuntimeError(f"ingestion health port never answered: {ing.log()[-2000:]}")


# --- the worker
def worker_env(
    bootstrap: str, db_url: str, topics_env: dict[str, str], group: str, **extra: Any
) -> dict[str, str]:
    """The worker's environment: this process's, minus its topic/batch/worker settings, plus the test's
    (``extra`` keys are upper-cased: ``batch_max_rows=10`` sets ``BATCH_MAX_ROWS``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOPIC_", "BATCH_", "WORKER_"))}
    env.update(topics_env)
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": db_url, "CONSUMER_GROUP": group,
        "KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_MAX_POLL_INTERVAL_MS": "60000",
        "WORKER_HEALTH_PORT": str(free_port()), "LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT),
        "DB_RETRY_INITIAL_S": "0.2", "DB_RETRY_MAX_S": "2",
    })  # fmt: skip
    env.update({k.upper(): str(v) for k, v in extra.items()})
    return env


class WorkerProcess:
    """``python -m consumer.worker`` as a subprocess; stopped by PID when the test ends."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.port = env, int(env["WORKER_HEALTH_PORT"])
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "consumer.worker"], cwd=ROOT, env=env, stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def get(self, path: str) -> tuple[int, str]:
        """(status, text) of the health port's ``path``; (0, "") while nothing answers."""
        try:
            status, body = http_get(self.port, path, timeout=2)
        except OSError:
            return 0, ""
        return status, body.decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples matching the labels (0 when absent)."""
        return metric_sum(self.get("/metrics")[1], name, **labels)

    def wait_ready(self, timeout: float = 40) -> None:
        wait_for(lambda: self.get("/readyz")[0] == 200, timeout, f"worker ready ({self.log_tail()})")

    def rss_kb(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()

    def log_tail(self, n: int = 15) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


# --- a whole pipeline
@dataclass
class Proc:
    """One process of a pipeline, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        return stop_process(self.popen, timeout, sig)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@dataclass
class Pipeline:
    """Env and processes of one test's pipeline; ``start_*`` launch, ``close`` stops all (Rule 2)."""

    env: dict[str, str]
    db_url: str
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)
    sim: SimProcess | None = None  # the simulator it reads, when the kit started one for it

    def spawn(self, name: str, module: str, *args: str, extra_env: dict[str, str] | None = None) -> Proc:
        log = self.log_dir / f"{name}-{len(self.procs)}.log"
        popen = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT, env={**os.environ, **self.env, **(extra_env or {})},
            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
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
        """Rows of ``sql``; none while the worker has not created the tables yet."""
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


def pipeline_env(
    kafka_bootstrap: str, db_url: str, topics_env: dict[str, str], group: str, sim: SimProcess
) -> dict[str, str]:
    """Both stages' environment: the test's broker, schema, topics and group, the simulator, Rule 3."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": db_url, **topics_env,
        "CONSUMER_GROUP": group, "BINANCE_WS_URL": sim.ws_url, "BINANCE_REST_URL": sim.rest_url,
        "INGESTION_HEALTH_PORT": str(free_port()), "WORKER_HEALTH_PORT": str(free_port()),
        "KAFKA_SESSION_TIMEOUT_MS": "6000", "BATCH_MAX_SECONDS": "0.5", "BACKOFF_INITIAL_S": "0.2",
        "BACKOFF_MAX_S": "2", "LOG_LEVEL": "INFO",
    }  # fmt: skip


def sim_stats(control_url: str) -> dict[str, Any]:
    """The simulator's /stats: per symbol and stream, what it generated and sent."""
    with urllib.request.urlopen(f"{control_url}/stats", timeout=5) as resp:
        return dict(json.loads(resp.read()))


def control(control_url: str, action: str, **body: Any) -> dict[str, Any]:
    """POST a control action (drop, disconnect, ...) to the simulator."""
    req = urllib.request.Request(
        f"{control_url}/{action}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=5) as resp:
        return dict(json.loads(resp.read() or b"{}"))
