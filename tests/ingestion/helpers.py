"""Helpers for ingestion tests: run ingestion as a subprocess, read topics, a private broker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from confluent_kafka import Consumer

ROOT = Path(__file__).resolve().parents[2]

# Short timers so tests run in seconds, not minutes.
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Record:
    topic: str
    key: str | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int

    def json(self) -> Any:
        return json.loads(self.value)


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
        url = f"http://127.0.0.1:{self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                body = answer.read()
                status = answer.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        _, text = self.get("/metrics")
        total = 0.0
        for line in str(text).splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            metric, _, rest = head.partition("{")
            if metric not in (name, f"{name}_total"):
                continue
            if all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total += float(value)
        return total

    def stop(self, timeout: float = 30.0) -> int:
        if self.stopped_rc is not None:
            return self.stopped_rc
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        self.stopped_rc = int(self.process.returncode)
        return self.stopped_rc


def start_ingestion(env: dict[str, str], args: Iterable[str] = ()) -> Ingestion:
    """Start ingestion with ``env`` on top of FAST_ENV and wait until its health port answers."""
    port = free_port()
    full = {**os.environ, **FAST_ENV, "INGESTION_HEALTH_PORT": str(port), **env}
    log_file = tempfile.NamedTemporaryFile(prefix="ingestion-", suffix=".log")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingestion.ws_consumer", *args],
        env=full, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
    )
    ing = Ingestion(proc, log_file, port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ingestion exited {proc.returncode}: {ing.log()[-2000:]}")
        try:
            ing.get("/healthz")
            return ing
        except OSError:
            time.sleep(0.1)
    ing.stop()
    raise RuntimeError(f"ingestion health port never answered: {ing.log()[-2000:]}")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def read_all(bootstrap: str, topics: list[str], idle_s: float = 1.5, timeout: float = 60.0) -> list[Record]:
    """Every record of ``topics`` from the beginning, until nothing new arrives for ``idle_s``."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex[:10]}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 6000,
        "fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 16 * 1024 * 1024,
    })  # fmt: skip
    consumer.subscribe(topics)
    out: list[Record] = []
    start = last = time.monotonic()
    try:
        while time.monotonic() - start < timeout:
            batch = consumer.consume(5000, 0.5)
            good = [m for m in batch if m.error() is None]
            if good:
                last = time.monotonic()
            elif out and time.monotonic() - last > idle_s:
                break
            elif not out and time.monotonic() - start > max(15.0, idle_s):
                break
            for m in good:
                key = m.key()
                out.append(Record(m.topic(), key.decode() if key else None, m.value(),
                                  {k: v for k, v in (m.headers() or [])}, m.timestamp()[1]))  # fmt: skip
    finally:
        consumer.close()
    return out


def events_by_type(records: list[Record]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Decoded event values grouped by (type, symbol)."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        v = r.json()
        grouped.setdefault((v["type"], v["symbol"]), []).append(v)
    return grouped


def id_of(event: dict[str, Any]) -> int:
    return int(event["update_id"] if event["type"] == "bookTicker" else event["id"])


def assert_complete(stats: dict[str, Any], records: list[Record], types: Iterable[str]) -> None:
    """The topics hold every id the simulator generated, once (no hole, no duplicate)."""
    grouped = events_by_type(records)
    for symbol, per_type in stats["symbols"].items():
        for kind in types:
            s = per_type[kind]
            ids = [id_of(e) for e in grouped.get((kind, symbol), [])]
            dupes = [i for i, n in Counter(ids).items() if n > 1]
            assert not dupes, f"{symbol} {kind}: duplicate ids {dupes[:10]}"
            if kind == "bookTicker":
                assert len(ids) == s["sent"], f"{symbol} {kind}: {len(ids)} published, {s['sent']} sent"
                continue
            expected = set(range(s["first_id"], s["last_id"] + 1))
            assert len(expected) == s["generated"]
            missing = sorted(expected - set(ids))
            extra = sorted(set(ids) - expected)
            assert not missing, f"{symbol} {kind}: {len(missing)} ids missing, e.g. {missing[:10]}"
            assert not extra, f"{symbol} {kind}: unexpected ids {extra[:10]}"


