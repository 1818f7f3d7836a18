"""History import and export, end to end: simulator archives -> ingestion.history -> Kafka -> worker ->
TimescaleDB -> db.query export / GET /v1/export."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from binance_pipeline.common.settings import Settings
from binance_pipeline.testing.helpers import ROOT, free_port, wait_for
from binance_pipeline.testing.stages import Pipeline, sim_stats
from ingestion.history.kafka_io import load_progress
from tests.e2e.history import (
    archive_csv,
    archive_lines,
    days_ago,
    history_env,
    run_import,
    spawn_import,
    tape_lines,
    today,
    zip_url,
)

pytestmark = pytest.mark.slow
SYMBOLS = ("BTCUSDT", "ETHUSDT")
STREAMS = ("trade", "aggTrade")


def _path(url: str) -> str:
    return url.split("/", 3)[3].join(["/", ""])


def test_three_days_two_symbols_every_id_once_digit_for_digit(
    sim: Callable[..., Any], pipeline: Callable[[Any], Pipeline], topic_factory: Callable[..., str]
) -> None:
    """3 archived days x 2 symbols: every id once, rows equal to the archive digit for digit, audit clean."""
    s = sim("--symbols", ",".join(SYMBOLS), "--archive-days", "3", "--archive-day-aggs", "400",
            "--rate", "10")
    pipe = pipeline(s)
    pipe.start_worker()
    env = history_env(pipe, s, topic_factory("prog", create=False))
    done = run_import(env, ",".join(SYMBOLS), "--from", str(days_ago(3)), "--to", str(days_ago(1)))
    assert done.returncode == 0, done.stdout + done.stderr + pipe.logs()
    assert "audit: CLEAN" in done.stdout
    for symbol in SYMBOLS:
        for stream in STREAMS:
            served: list[str] = []
            for n in (3, 2, 1):
                served += archive_lines(stream, archive_csv(s, stream, symbol, days_ago(n)))
            tape = [line for n in (3, 2, 1) for line in tape_lines(pipe, stream, symbol, days_ago(n))]
            assert tape == served, f"{symbol} {stream}"
            ids = [int(line.split(",", 1)[0]) for line in tape]
            assert ids == list(range(ids[0], ids[0] + len(ids)))
    sources = pipe.query("SELECT DISTINCT source FROM trades")
    assert sources == [("archive",)]


def test_killed_import_resumes_and_never_refetches_a_finished_day(
    sim: Callable[..., Any], pipeline: Callable[[Any], Pipeline], topic_factory: Callable[..., str],
    tmp_path: Path,
) -> None:
    """An import killed mid-way, started again, ends complete; no finished day is downloaded twice."""
    s = sim("--symbols", "BTCUSDT", "--archive-days", "4", "--archive-day-aggs", "60000", "--rate", "10")
    pipe = pipeline(s)
    pipe.start_worker()
    progress_topic = topic_factory("prog", create=False)
    env = history_env(pipe, s, progress_topic)
    args = ("BTCUSDT", "--streams", "aggTrade", "--from", str(days_ago(4)), "--to", str(days_ago(1)))
    first = spawn_import(env, tmp_path / "first.log", *args)
    second_day = _path(zip_url(s, "aggTrade", "BTCUSDT", days_ago(2)))
    wait_for(lambda: second_day in sim_stats(s.control_url)["archive_downloads"], 60, "the 3rd day")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    settings = Settings(kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
                        topic_history_progress=progress_topic)
    finished = [k for k in load_progress(settings) if not k.endswith("/rest")]
    assert 1 <= len(finished) < 4, finished
    again = run_import(env, *args)
    assert again.returncode == 0, again.stdout + again.stderr + (tmp_path / "first.log").read_text()
    assert "audit: CLEAN" in again.stdout
    downloads = sim_stats(s.control_url)["archive_downloads"]
    for key in finished:
        day = key.rsplit("/", 1)[1]
        assert downloads[_path(zip_url(s, "aggTrade", "BTCUSDT", _date(day)))] == 1, key
    for n in (4, 3, 2, 1):
        assert downloads[_path(zip_url(s, "aggTrade", "BTCUSDT", days_ago(n)))] <= 2
    assert pipe.query("SELECT count(*), count(DISTINCT id) FROM trades")[0] == (240_000, 240_000)


def _date(text: str) -> date:
    return date.fromisoformat(text)


def test_bad_checksum_is_retried_then_reported_and_nothing_of_it_written(
    sim: Callable[..., Any], pipeline: Callable[[Any], Pipeline], topic_factory: Callable[..., str]
) -> None:
    """A checksum corrupted once is retried; one always corrupted is reported by name and not written."""
    s = sim("--symbols", "BTCUSDT", "--archive-days", "2", "--archive-day-aggs", "200", "--rate", "10")
    bad, flaky = days_ago(2), days_ago(1)
    s.control("archive", {"fault": "corrupt_checksum", "symbol": "BTCUSDT", "stream": "aggTrade",
                          "date": str(bad), "count": 1000})
    s.control("archive", {"fault": "corrupt_checksum", "symbol": "BTCUSDT", "stream": "aggTrade",
                          "date": str(flaky), "count": 1})
    pipe = pipeline(s)
    pipe.start_worker()
    env = history_env(pipe, s, topic_factory("prog", create=False), HISTORY_ARCHIVE_ATTEMPTS="3",
                      BACKOFF_INITIAL_S="0.05", BACKOFF_MAX_S="0.2")
    done = run_import(env, "BTCUSDT", "--streams", "aggTrade", "--from", str(bad), "--to", str(flaky),
                      "--audit-timeout", "30")
    assert done.returncode == 1, done.stdout + done.stderr
    bad_name = f"BTCUSDT-aggTrades-{bad}.zip"
    assert f"FAILED {bad_name}" in done.stdout and "CHECKSUM" in done.stdout, done.stdout + done.stderr
    assert bad_name in done.stderr
    downloads = sim_stats(s.control_url)["archive_downloads"]
    assert downloads[_path(zip_url(s, "aggTrade", "BTCUSDT", bad)) + ".CHECKSUM"] == 3
    assert downloads[_path(zip_url(s, "aggTrade", "BTCUSDT", flaky)) + ".CHECKSUM"] == 2
    assert tape_lines(pipe, "aggTrade", "BTCUSDT", bad) == []
    served = archive_lines("aggTrade", archive_csv(s, "aggTrade", "BTCUSDT", flaky))
    assert tape_lines(pipe, "aggTrade", "BTCUSDT", flaky) == served


def _export(pipe: Pipeline, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "db.query", "export", *args], cwd=ROOT,
                          env={**os.environ, **pipe.env}, capture_output=True, timeout=120, check=False)


def test_export_equals_the_archive_line_for_line_and_parquet_exactly(
    sim: Callable[..., Any], pipeline: Callable[[Any], Pipeline], topic_factory: Callable[..., str],
    tmp_path: Path,
) -> None:
    """A day exported to CSV (CLI, HTTP) is the archive CSV line for line; Parquet reads back the same."""
    s = sim("--symbols", "BTCUSDT", "--archive-days", "1", "--archive-day-aggs", "3000", "--rate", "10")
    pipe = pipeline(s)
    pipe.start_worker()
    day = days_ago(1)
    env = history_env(pipe, s, topic_factory("prog", create=False))
    done = run_import(env, "BTCUSDT", "--from", str(day), "--to", str(day))
    assert done.returncode == 0, done.stdout + done.stderr
    span = ("--from", f"{day}T00:00:00Z", "--to", f"{today()}T00:00:00Z")
    for stream in STREAMS:
        served = archive_csv(s, stream, "BTCUSDT", day)
        out = tmp_path / f"{stream}.csv"
        result = _export(pipe, "BTCUSDT", "--stream", stream, *span, "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert out.read_bytes().splitlines() == served.splitlines()
        assert b"rows/s" in result.stderr
        parquet = tmp_path / f"{stream}.parquet"
        result = _export(pipe, "BTCUSDT", "--stream", stream, *span, "--format", "parquet",
                         "--out", str(parquet))
        assert result.returncode == 0, result.stderr
        _assert_parquet_equals(pq.read_table(parquet), stream, served)
    _assert_http_export(pipe, day, archive_csv(s, "aggTrade", "BTCUSDT", day))


def _assert_parquet_equals(table: Any, stream: str, served: bytes) -> None:
    assert str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("price").type) == "string"
    rows = table.to_pylist()
    lines = served.decode().splitlines()
    assert len(rows) == len(lines)
    for row, line in zip(rows, lines, strict=True):
        f = line.split(",")
        micros = int(f[5] if stream == "aggTrade" else f[4])
        when = row["time"]
        assert when.tzinfo is not None
        epoch_us = int(when.timestamp()) * 1_000_000 + when.microsecond
        assert epoch_us == micros
        assert (row["price"], row["qty"]) == (f[1], f[2])
        assert row["is_buyer_maker"] is (f[-2] == "True")


def _assert_http_export(pipe: Pipeline, day: Any, served: bytes) -> None:
    port = free_port()
    env = {**os.environ, **pipe.env, "QUERY_API_HOST": "127.0.0.1", "QUERY_API_PORT": str(port)}
    env.pop("QUERY_API_KEY", None)
    api = subprocess.Popen([sys.executable, "-m", "db.api"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(base), 20, "the query API")
        url = (f"{base}/v1/export?symbol=BTCUSDT&stream=aggTrade&from={day}T00:00:00Z"
               f"&to={today()}T00:00:00Z&format=csv")
        with urllib.request.urlopen(url, timeout=60) as resp:
            assert resp.headers["Content-Type"].startswith("text/csv")
            assert resp.read().splitlines() == served.splitlines()
        try:
            urllib.request.urlopen(f"{base}/v1/export?symbol=BTCUSDT&stream=nope&from=1&to=2", timeout=10)
            raise AssertionError("a bad stream must be refused")
        except urllib.error.HTTPError as err:
            assert err.code == 400
    finally:
        api.terminate()
        api.wait(10)


def _up(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2):
            return True
    except OSError:
        return False


def test_import_over_the_live_tape_adds_nothing_twice_and_joins_its_ids(
    sim: Callable[..., Any], pipeline: Callable[[Any], Pipeline], topic_factory: Callable[..., str]
) -> None:
    """An import from yesterday over the live capture of today: no duplicate, ids join, audit clean."""
    s = sim("--symbols", "BTCUSDT", "--archive-days", "1", "--archive-day-aggs", "500", "--rate", "200")
    pipe = pipeline(s)
    pipe.start_worker()
    pipe.start_ingestion(SYMBOLS="BTCUSDT", STREAM_TYPES="trade,aggTrade")
    wait_for(lambda: pipe.count() > 200, 60, "live rows")
    env = history_env(pipe, s, topic_factory("prog", create=False))
    done = run_import(env, "BTCUSDT", "--from", str(days_ago(1)))
    assert done.returncode == 0, done.stdout + done.stderr + pipe.logs()
    assert "audit: CLEAN" in done.stdout
    time.sleep(1.0)
    for stream in STREAMS:
        rows = pipe.query("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM trades WHERE type = %s",
                          (stream,))
        count, distinct, low, high = rows[0]
        assert count == distinct, f"{stream}: a duplicate"
        live = pipe.query("SELECT min(id) FROM trades WHERE type = %s AND source = 'stream'", (stream,))
        before = pipe.query("SELECT source FROM trades WHERE type = %s AND id = %s", (stream, live[0][0] - 1))
        assert before and before[0][0] in ("archive", "rest"), f"{stream}: the import misses the live ids"
        assert high - low + 1 == count, f"{stream}: ids do not join ({low}..{high}, {count} rows)"
