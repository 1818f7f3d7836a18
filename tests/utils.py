"""The tests' one home for waits, ports, readers and process handling.

Everything here talks to real services or real processes; nothing is a mock. Test modules and
the per-package helpers (tests/consumer/helpers.py, tests/ingestion/helpers.py,
tests/e2e/pipeline.py) import from here rather than defining their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
from confluent_kafka import Consumer

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def private_port() -> int:
    """A free port for a private server, from TEST_PORT_RANGE ("low-high", default 20100-20199)."""
    low, high = (int(x) for x in os.environ.get("TEST_PORT_RANGE", "20100-20199").split("-"))
    for port in random.sample(range(low, high + 1), high + 1 - low):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in TEST_PORT_RANGE {low}-{high}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


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


KAFKA_LIBS = Path(os.environ.get("KAFKA_LIBS", "/tmp/kpom/libs"))  # noqa: S108 - this machine's jars


def kafka_available() -> bool:
    """True when Apache Kafka can be started here (java and the jars at KAFKA_LIBS)."""
    return shutil.which("java") is not None and any(KAFKA_LIBS.glob("kafka-server-*.jar"))


@contextlib.contextmanager
def private_kafka(port: int, workdir: Path, timeout: float = 90.0) -> Iterator[str]:
    """An empty single-node Apache Kafka (KRaft) on 127.0.0.1:``port``, from the jars at KAFKA_LIBS.

    Its data lives in ``workdir`` and is wiped first, so each use starts a new, empty cluster on
    the same address (what a restarted non-durable broker looks like). Topics are never created
    by the broker itself (auto.create.topics.enable=false). Stopped by PID on exit.
    """
    shutil.rmtree(workdir, ignore_errors=True)
    (workdir / "data").mkdir(parents=True)
    props, controller = workdir / "server.properties", private_port()
    props.write_text(
        f"process.roles=broker,controller\nnode.id=1\ncontroller.quorum.bootstrap.servers=127.0.0.1:{controller}\n"
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n"
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n"
        "controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n"
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
        f"log.dirs={workdir / 'data'}\noffsets.topic.replication.factor=1\n"
        "transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n"
        "group.initial.rebalance.delay.ms=0\nnum.partitions=1\nauto.create.topics.enable=false\n"
    )
    classpath = f"{KAFKA_LIBS}/*"
    subprocess.run(["java", "-cp", classpath, "kafka.tools.StorageTool", "format", "--standalone",
                    "-t", uuid.uuid4().hex[:22], "-c", str(props)], check=True, capture_output=True)
    with (workdir / "kafka.log").open("ab") as log:
        proc = subprocess.Popen(["java", "-Xmx512m", "-cp", classpath, "kafka.Kafka", str(props)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is not None or port_open(port), timeout, f"Kafka on port {port}")
        assert proc.poll() is None, f"Kafka exited {proc.returncode}; see {workdir / 'kafka.log'}"
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc, 20.0)
        shutil.rmtree(workdir / "data", ignore_errors=True)
