"""Helpers for the history tests: run the importer, read the simulator's archives, read the tape."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import urllib.request
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from binance_pipeline.testing.helpers import ROOT
from binance_pipeline.testing.stages import Pipeline

KINDS = {"trade": "trades", "aggTrade": "aggTrades"}


def today() -> date:
    return datetime.now(UTC).date()


def days_ago(n: int) -> date:
    return today() - timedelta(days=n)


def history_env(pipe: Pipeline, sim: Any, progress_topic: str, **extra: str) -> dict[str, str]:
    return {**os.environ, **pipe.env, "BINANCE_ARCHIVE_URL": sim.rest_url,
            "TOPIC_HISTORY_PROGRESS": progress_topic, **extra}


def run_import(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingestion.history", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def spawn_import(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingestion.history", *args], cwd=ROOT, env=env,
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )


def zip_url(sim: Any, stream: str, symbol: str, day: date) -> str:
    name = f"{symbol}-{KINDS[stream]}-{day.isoformat()}"
    return f"{sim.rest_url}/data/spot/daily/{KINDS[stream]}/{symbol}/{name}.zip"


def archive_csv(sim: Any, stream: str, symbol: str, day: date) -> bytes:
    """The CSV inside the zip the simulator serves (counts as a download)."""
    with urllib.request.urlopen(zip_url(sim, stream, symbol, day), timeout=30) as resp:
        archive = zipfile.ZipFile(io.BytesIO(resp.read()))
    return archive.read(archive.namelist()[0])


def tape_lines(pipe: Pipeline, stream: str, symbol: str, day: date) -> list[str]:
    """The day's rows from TimescaleDB as archive-like lines (text of price and qty, µs time)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rows = pipe.query(
        "SELECT id, price::text, qty::text, first_id, last_id,"
        " (extract(epoch FROM time) * 1000000)::bigint, buyer_maker, best_match, source"
        " FROM trades WHERE symbol = %s AND type = %s AND time >= %s AND time < %s ORDER BY id",
        (symbol, stream, start, start + timedelta(days=1)),
    )
    return [_line(stream, r) for r in rows]


def _line(stream: str, r: tuple[Any, ...]) -> str:
    ident, price, qty, first, last, micros, maker, best, _ = r
    middle = f"{first},{last}," if stream == "aggTrade" else ""
    return f"{ident},{price},{qty},{middle}{micros},{maker},{best}"


def archive_lines(stream: str, csv: bytes) -> list[str]:
    """Archive CSV lines reduced to the columns the tape keeps (trades drop quoteQty)."""
    out = []
    for line in csv.decode().splitlines():
        f = line.split(",")
        if stream == "trade":
            f = f[:3] + f[4:]
        out.append(",".join(f))
    return out
