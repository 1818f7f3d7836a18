"""The kit's one helpers module: waits, free ports, process stops, Prometheus sums, a topic reader and
producer, a test's topic names, and SQL reads on a schema of the test's own.

Everything here talks to real services or real processes; nothing is a mock.

Rule 1: a wait either returns what it waited for or raises ``AssertionError`` naming it; none hangs.
Rule 2: a process is stopped by its own PID (SIGTERM, then SIGKILL after the timeout), never by name.
Rule 3: SQL values go as parameters; a table or schema name comes from the test, never from input.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import orjson
import psycopg2
from confluent_kafka import Consumer, Producer, TopicPartition

T = TypeVar("T")

# The folder the stages run from: the checkout holding this package (or site-packages once installed).
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Rule 1: poll ``predicate`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0, sig: int = signal.SIGTERM) -> int:
    """Rule 2: send ``sig`` (once) and wait; SIGKILL after ``timeout`` s. Returns the exit status."""
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


# --- Kafka
@dataclass
class Topics:
    """The topic names of one test (the four pipeline topics and ingestion's frontier)."""

    trades: str
    book_ticker: str
    gaps: str
    dead_letter: str
    partitions: int = 3
    frontier: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The stages' settings naming these topics."""
        return {
            "TOPIC_TRADES": self.trades,
            "TOPIC_BOOK_TICKER": self.book_ticker,
            "TOPIC_GAPS": self.gaps,
            "TOPIC_DEAD_LETTER": self.dead_letter,
            "TOPIC_PARTITIONS": str(self.partitions),
            **({"TOPIC_FRONTIER": self.frontier} if self.frontier else {}),
        }


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


def producer(bootstrap: str) -> Producer:
    """An idempotent producer (acks=all), batching like the stages do."""
    return Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 20,
        "batch.size": 1 << 20, "compression.type": "lz4",
    })  # fmt: skip


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
    if p.flush(60) != 0:
        raise AssertionError(f"{topic}: records left unacknowledged after 60 s")
    return n


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """Sum of the group's committed offsets on a topic (negative = none counts 0)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    finally:
        c.close()


# --- the database
def url_with_schema(url: str, schema: str) -> str:
    """The same database URL with search_path set to ``schema`` first, then public."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema},public')}"


def create_schema(database_url: str, prefix: str = "t") -> tuple[str, str]:
    """A fresh schema ``<prefix>_<random>``: (its name, a URL whose search_path starts with it)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    execute(database_url, f"CREATE SCHEMA {name}")
    return name, url_with_schema(database_url, name)


def drop_schemas(database_url: str, names: Iterable[str]) -> None:
    """Drop the schemas (and all they hold); missing ones are fine."""
    for name in names:
        execute(database_url, f"DROP SCHEMA IF EXISTS {name} CASCADE")


def execute(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    """One statement in autocommit, on a connection of its own."""
    conn = psycopg2.connect(db_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, params)
    finally:
        conn.close()


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
    """Rows in ``table`` (Rule 3: a name from the test itself)."""
    return int(query(db_url, f"SELECT count(*) FROM {table}")[0][0])
