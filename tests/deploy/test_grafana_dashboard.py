"""Grafana's dashboard JSON: every SQL runs on the real TimescaleDB, every metric exists.

Grafana is not needed: its macros ($__timeFilter, $__timeFrom/To, $__interval(_ms)) and the
dashboard's variables are expanded here as Grafana's PostgreSQL data source expands them,
then each statement runs on the hand-built tape of tests/db/service/tape_data.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from prometheus_client import generate_latest

from consumer.metrics import WorkerMetrics
from db.service.ops import ApiMetrics
from ingestion.metrics import IngestionMetrics
from tests.db.service.tape_data import T0, tape_schema

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/binance-pipeline.json"
FROM, TO = T0 - timedelta(hours=1), T0 + timedelta(days=2)
INTERVAL = timedelta(minutes=1)


def load() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def targets(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, target) for every query of data source type ``kind``, annotations included."""
    doc = load()
    found = [(f"panel {p['title']!r}", t) for p in doc["panels"] for t in p["targets"]]
    found += [(f"annotation {a['name']!r}", a["target"]) for a in doc["annotations"]["list"]]
    return [(where, t) for where, t in found if kind in t["datasource"]["type"]]


def variables() -> dict[str, str]:
    return {v["name"]: v["current"]["value"] for v in load()["templating"]["list"]}


def ts(value: datetime) -> str:
    return "'" + value.strftime("%Y-%m-%dT%H:%M:%SZ") + "'"


def expand(raw: str, start: datetime, end: datetime, interval: timedelta, values: dict[str, str]) -> str:
    """Grafana's macros and variables, as its PostgreSQL data source substitutes them."""
    text = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m[1]} BETWEEN {ts(start)} AND {ts(end)}", raw)
    text = text.replace("$__timeFrom()", ts(start)).replace("$__timeTo()", ts(end))
    text = text.replace("$__interval_ms", str(int(interval.total_seconds() * 1000)))
    text = text.replace("$__interval", f"{int(interval.total_seconds())}s")
    for name in sorted(values, key=len, reverse=True):
        text = text.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return text


@pytest.fixture(scope="module")
def tape(database_url: str) -> Iterator[str]:
    with tape_schema(database_url) as url:
        yield url


def test_dashboard_has_the_issue_s_panels() -> None:
    """Candles with SMA, volume, whales, bid/ask, spread, gaps and the stages' health are all there."""
    titles = " | ".join(p["title"] for p in load()["panels"])
    words = ("Candles", "Volume", "Whale", "bid / ask", "spread", "Gaps", "Events in", "lag", "answering")
    for word in words:
        assert word in titles, titles


def test_every_sql_runs_on_timescaledb(tape: str) -> None:
    """Each SQL query, macros expanded, runs without error and finds the tape's rows."""
    sqls = targets("postgres")
    assert len(sqls) >= 8
    conn = psycopg2.connect(tape)
    conn.autocommit = True
    try:
        for where, target in sqls:
            query = expand(target["rawSql"], FROM, TO, INTERVAL, variables())
            assert "$" not in query, f"{where}: unexpanded macro in {query}"
            with conn.cursor() as cur:
                cur.execute(query)
                rows = cur.fetchall()
            assert rows, f"{where}: no rows from {query}"
    finally:
        conn.close()


def test_whale_and_candle_queries_agree_with_the_tape(tape: str) -> None:
    """The candle query's first minute and the whale query match the tape's known answers."""
    sql = [(where, t["rawSql"]) for where, t in targets("postgres")]
    candles = next(v for k, v in sql if k.startswith("panel 'Candles") and "AS open" in v)
    whales = next(v for k, v in sql if k.startswith("panel 'Whale"))
    conn = psycopg2.connect(tape)
    try:
        with conn.cursor() as cur:
            cur.execute(expand(candles, T0, T0 + INTERVAL, INTERVAL, variables()))
            assert [tuple(str(v) for v in row[1:5]) for row in cur.fetchall()] == [
                ("100.00000000", "101.50000000", "99.25000000", "99.25000000")]
            cur.execute(expand(whales, FROM, TO, INTERVAL, variables()))
            assert [row[1] for row in cur.fetchall()] == [5]
    finally:
        conn.close()


def test_every_prometheus_metric_is_exported_by_a_stage() -> None:
    """Each metric a PromQL expression names is one the stages' registries export."""
    exported: set[str] = {"up"}
    for registry in (IngestionMetrics().registry, WorkerMetrics().registry, ApiMetrics().registry):
        text = generate_latest(registry).decode()
        for name, kind in re.findall(r"^# TYPE (\S+) (\S+)", text, re.M):
            exported |= {name, f"{name}_total"} if kind == "counter" else {name}
    exprs = [t["expr"] for _, t in targets("prometheus")]
    assert exprs
    for expr in exprs:
        names = set(re.findall(r"\b([a-z_]+_(?:total|lag|seconds|count))\b", expr)) | (
            {"up"} if expr == "up" else set())
        assert names and names <= exported, (expr, names - exported)
