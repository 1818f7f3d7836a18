"""Worker test helpers: events per binance_pipeline/common/events.py, a producer, the worker as a subprocess.

Waits, ports, readers and database counts live in tests/utils.py (re-exported here for older callers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from binance_pipeline.common.clock import now_us
from tests.utils import count as count  # re-exported for older callers (the helpers moved)
from tests.utils import free_port, metric_sum, stop_process, wait_for
from tests.utils import query as query
from tests.utils import read_all as read_all

ROOT = Path(__file__).resolve().parents[2]
T0_US = 1_700_000_000_000_000
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


def trade(i: int, symbol: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid trade message number ``i`` (distinct ids give distinct rows)."""
    sym = symbol or SYMBOLS[i % len(SYMBOLS)]
    msg: dict[str, Any] = {
        "v": 1,
        "type": "trade",
        "symbol": sym,
        "id": i,
        "price": f"{60000 + i % 1000}.{i % 97:02d}000000",
        "qty": "0.00100000",
        "first_id": None,
        "last_id": None,
        "trade_time": T0_US + i * 1000,
        "event_time": T0_US + i * 1000 + 7,
        "buyer_maker": bool(i & 1),
        "best_match": True,
        "received_at": now_us(),
        "source": "stream",
    }
    msg.update(overrides)
    return msg


def book(i: int, symbol: str = "BTCUSDT", **overrides: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "v": 1,
        "type": "bookTicker",
        "symbol": symbol,
        "update_id": i,
        "bid_price": "100.10",
        "bid_qty": "1.5",
        "ask_price": "100.20",
        "ask_qty": "2.5",
        "received_at": T0_US + i,
        "source": "stream",
    }
    msg.update(overrides)
    return msg


def gap(gap_id: str, status: str, **overrides: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "v": 1,
        "type": "gap",
        "gap_id": gap_id,
        "symbol": "BTCUSDT",
        "stream": "trade",
        "kind": "ids",
        "first_id": 1001,
        "last_id": 1050,
        "start_time": None,
        "end_time": None,
        "missing": 50,
        "reason": "stream",
        "status": status,
        "detected_at": T0_US,
        "repaired_at": None if status == "open" else T0_US + 5_000_000,
    }
    msg.update(overrides)
    return msg


def producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.size": 1 << 20,
            "compression.type": "lz4",
        }
    )


def produce(
    p: Producer, topic: str, messages: Iterable[dict[str, Any] | bytes], key: bytes | None = None
) -> int:
    """Produce JSON events (keyed by symbol) or raw bytes; flush; return how many."""
    n = 0
    for m in messages:
        value = m if isinstance(m, bytes) else orjson.dumps(m)
        k = key if key is not None or isinstance(m, bytes) else str(m.get("symbol", "x")).encode()
        while True:
            try:
                p.produce(topic, value=value, key=k)
                break
            except BufferError:
                p.poll(0.05)
        n += 1
    assert p.flush(60) == 0
    return n


def worker_env(
    bootstrap: str, db_url: str, topics_env: dict[str, str], group: str, **extra: Any
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOPIC_", "BATCH_", "WORKER_"))}
    env.update(topics_env)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": db_url,
            "CONSUMER_GROUP": group,
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "KAFKA_MAX_POLL_INTERVAL_MS": "60000",
            "WORKER_HEALTH_PORT": str(free_port()),
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
            "DB_RETRY_INITIAL_S": "0.2",
            "DB_RETRY_MAX_S": "2",
        }
    )
    env.update({k.upper(): str(v) for k, v in extra.items()})
    return env


class WorkerProcess:
    """``python -m consumer.worker`` as a subprocess; stopped by PID when the test ends."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.port = env, int(env["WORKER_HEALTH_PORT"])
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "consumer.worker"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

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


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """Sum of the group's committed offsets on a topic (negative = none counts 0)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    finally:
        c.close()


class PacedProducer:
    """Produce trades ``range(start, start+n)`` over about ``seconds`` in a thread (a live stream)."""

    def __init__(self, bootstrap: str, topic: str, n: int, seconds: float, start: int = 0) -> None:
        import threading

        self._p, self._topic, self.n, self._seconds, self._start = (
            producer(bootstrap),
            topic,
            n,
            seconds,
            start,
        )
        self.produced = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            chunk = max(1, self.n // max(1, int(self._seconds * 20)))
            began = time.monotonic()
            for s in range(0, self.n, chunk):
                ids = range(self._start + s, self._start + min(self.n, s + chunk))
                for i in ids:
                    m = trade(i)
                    self._p.produce(self._topic, value=orjson.dumps(m), key=m["symbol"].encode())
                self._p.poll(0)
                self.produced = s + len(ids)
                lag = began + self._seconds * self.produced / self.n - time.monotonic()
                if lag > 0:
                    time.sleep(lag)
            assert self._p.flush(60) == 0
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def join(self, timeout: float = 120) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "producer did not finish"
        if self.error is not None:
            raise self.error


def assert_exactly(db_url: str, n: int) -> None:
    """The trades table holds ids 0..n-1, each exactly once."""
    rows = query(db_url, "SELECT count(*), count(DISTINCT (symbol, type, id)), min(id), max(id) FROM trades")
    assert rows == [(n, n, 0, n - 1)]
