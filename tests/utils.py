"""The tests' one home for waits, ports, readers and process handling.

Everything here talks to real services or real processes; nothing is a mock. Test modules and
the per-package helpers (tests/consumer/helpers.py, tests/ingestion/helpers.py,
tests/e2e/pipeline.py) import from here rather than defining their own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
import pytest
from confluent_kafka import Consumer

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shared_data_file(name: str) -> Path | None:
    """``name`` in the recorded-data folder, or None: $SHARED_DATA_DIR, else ``shared/data`` beside
    any folder above the tests (../shared/data next to the checkout, main or a worktree)."""
    folders = [Path(os.environ["SHARED_DATA_DIR"])] if os.environ.get("SHARED_DATA_DIR") else []
    folders += [p / "shared" / "data" for p in Path(__file__).resolve().parents]
    return next((f / name for f in folders if (f / name).is_file()), None)


def shared_data_or_skip(name: str) -> Path:
    """``shared_data_file(name)``, or skip the test that needs it when it is absent."""
    found = shared_data_file(name)
    if found is None:
        pytest.skip(f"{name} not found in $SHARED_DATA_DIR or ../shared/data")
    return found


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0, sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` (once) and wait; SIGKILL after ``timeout`` s. Returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return int(proc.returncode)


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the Prometheus samples ``name`` (or ``name_total``) whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric in (name, f"{name}_total") and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total


@dataclass
class Record:
    """One Kafka record as read back by ``read_all``."""

    topic: str
    key: str | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int
    partition: int = 0
    offset: int = 0

    def json(self) -> Any:
        return json.loads(self.value)


def read_all(bootstrap: str, topics: str | list[str], expected: int | None = None, idle_s: float = 1.5,
             timeout: float = 60.0) -> list[Record]:
    """Every record of ``topics`` from the beginning (a throw-away group, no commits).

    Reads until ``expected`` records arrived (if given) and then nothing new for ``idle_s``; with
    nothing at all, gives up after max(15, idle_s) s unless ``expected`` says to keep waiting.
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex[:10]}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 6000,
        "fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 16 * 1024 * 1024,
    })  # fmt: skip
    consumer.subscribe([topics] if isinstance(topics, str) else topics)
    out: list[Record] = []
    start = last = time.monotonic()
    try:
        while time.monotonic() - start < timeout:
            good = [m for m in consumer.consume(5000, 0.5) if m.error() is None]
            out.extend(_record(m) for m in good)
            now = time.monotonic()
            if good:
                last = now
            elif expected is not None and len(out) < expected:
                continue
            elif out and now - last > idle_s:
                break
            elif not out and now - start > max(15.0, idle_s):
                break
    finally:
        consumer.close()
    return out


def _record(m: Any) -> Record:
    key = m.key()
    return Record(m.topic(), key.decode() if key else None, m.value(), dict(m.headers() or []),
                  m.timestamp()[1], m.partition(), m.offset())


def query(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of one statement, on a connection of its own."""
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def count(db_url: str, table: str) -> int:
    """Rows in ``table`` (a name from the test itself, never from input)."""
    return int(query(db_url, f"SELECT count(*) FROM {table}")[0][0])
