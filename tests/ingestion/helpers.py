"""Helpers for ingestion tests: run ingestion as a subprocess, read topics, a private broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.utils import Record, free_port, metric_sum, stop_process
from tests.utils import read_all as read_all  # re-exported for older callers (the helpers moved)
from tests.utils import wait_for as wait_for

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
        return metric_sum(str(self.get("/metrics")[1]), name, **labels)

    def stop(self, timeout: float = 30.0) -> int:
        if self.stopped_rc is None:
            self.stopped_rc = stop_process(self.process, timeout)
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
