"""Benchmark of the tape queries on a 10-million-row trades hypertable: ``python bench/bench_query.py``.

Fills a schema of its own (dropped at the end) with 3 symbols x 3.34 M trades over 10 days,
generated inside the database with generate_series, ANALYZEs, then times through the
db.queries functions (median of ~50 runs each): latest, price-at, a 1-hour range and a 1-day
series of 1-minute candles. Baselines in the same run: latest with index scans disabled
(the sequential-scan cost the index avoids), and a plain count(*) over the same hour/day.
Writes bench/results/query.json. DATABASE_URL defaults to the local services.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db import queries
from db.migrate import apply

DSN = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/pipeline")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
ROWS_PER_SYMBOL = 3_340_000
DAYS = 10
START = datetime(2024, 6, 1, tzinfo=UTC)
RUNS = 50
GOALS_MS = {"latest": 5.0, "price_at": 5.0, "range_1h": 50.0, "candles_1d_1m": 300.0}
STEP_MS = DAYS * 86_400_000 / ROWS_PER_SYMBOL

FILL_SQL = """
INSERT INTO trades (time, symbol, type, id, price, qty, buyer_maker, received_at)
SELECT %(start)s::timestamptz + (g * %(step)s) * interval '1 millisecond', %(symbol)s, 'trade', g,
       round((%(base)s + %(base)s * 0.02 * sin(g / 20000.0))::numeric, 2)::numeric(20, 8),
       (((g::bigint * 7919) %% 100000) + 1)::numeric(20, 8) / 100000,
       g %% 2 = 0, %(start)s::timestamptz + (g * %(step)s) * interval '1 millisecond'
FROM generate_series(%(lo)s, %(hi)s) g"""


def schema_url(name: str) -> str:
    sep = "&" if "?" in DSN else "?"
    return f"{DSN}{sep}options={quote(f'-csearch_path={name},public')}"


def fill_part(url: str, symbol: str, base: int, lo: int, hi: int) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute(FILL_SQL, {"start": START, "step": STEP_MS, "symbol": symbol, "base": base,
                                   "lo": lo, "hi": hi})
    finally:
        conn.close()


def fill(url: str) -> float:
    """Insert the rows (two connections, in day-ordered slices); return seconds taken."""
    t0 = time.perf_counter()
    slices = [(sym, base, lo, min(lo + 999_999, ROWS_PER_SYMBOL))
              for sym, base in zip(SYMBOLS, (60_000, 3_000, 600), strict=True)
              for lo in range(1, ROWS_PER_SYMBOL + 1, 1_000_000)]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda s: fill_part(url, *s), slices))
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("ANALYZE trades")
    conn.close()
    return time.perf_counter() - t0


def median_ms(fn: Callable[[int], object], runs: int = RUNS) -> float:
    fn(0)  # warm the plan cache and buffers
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


def measure(url: str) -> dict[str, float]:
    conn = queries.connect(url, statement_timeout_ms=600_000)
    rnd = random.Random(42)
    span_s = DAYS * 86400 - 86400

    def when(i: int) -> datetime:
        return START + timedelta(seconds=rnd.uniform(0, span_s))

    sym = SYMBOLS
    figures = {
        "latest": median_ms(lambda i: queries.latest(conn, sym[i % 3])),
        "price_at": median_ms(lambda i: queries.price_at(conn, sym[i % 3], when(i))),
        "range_1h": median_ms(lambda i: queries.range_summary(
            conn, sym[i % 3], t := when(i), t + timedelta(hours=1))),
        "candles_1d_1m": median_ms(lambda i: queries.candles(
            conn, sym[i % 3], d := START + timedelta(days=i % (DAYS - 1)), d + timedelta(days=1),
            timedelta(minutes=1))),
    }
    figures.update(baselines(conn, when))
    conn.close()
    return figures


def baselines(conn: queries.Connection, when: Callable[[int], datetime]) -> dict[str, float]:
    """The same latest query with index scans off, and plain counts over the same spans."""

    def run(sql: str, args: dict[str, object]) -> None:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            cur.fetchall()

    count = "SELECT count(*) FROM trades WHERE symbol = %(symbol)s AND type = 'trade'" \
            " AND time >= %(start)s AND time < %(end)s"
    out = {
        "baseline_count_1h": median_ms(lambda i: run(count, {"symbol": SYMBOLS[i % 3], "start": (
            t := when(i)), "end": t + timedelta(hours=1)})),
        "baseline_count_1d": median_ms(lambda i: run(count, {"symbol": SYMBOLS[i % 3], "start": (
            d := START + timedelta(days=i % (DAYS - 1))), "end": d + timedelta(days=1)})),
    }
    with conn.cursor() as cur:
        cur.execute("SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off")
    out["baseline_latest_no_index"] = median_ms(lambda i: queries.latest(conn, SYMBOLS[i % 3]), runs=5)
    with conn.cursor() as cur:
        cur.execute("RESET enable_indexscan; RESET enable_bitmapscan; RESET enable_indexonlyscan")
    return out


def main() -> int:
    name = f"bench_query_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(DSN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {name}")
    try:
        url = schema_url(name)
        apply(url)
        load_s = fill(url)
        rows = len(SYMBOLS) * ROWS_PER_SYMBOL
        print(f"loaded {rows:,} trades ({len(SYMBOLS)} symbols, {DAYS} days, "
              f"{ROWS_PER_SYMBOL // DAYS:,} per symbol-day) in {load_s:.1f} s")
        figures = measure(url)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        admin.close()
    report(figures, rows, load_s)
    return 0


def report(figures: dict[str, float], rows: int, load_s: float) -> None:
    figures["ratio_latest_vs_no_index"] = round(figures["baseline_latest_no_index"] / figures["latest"], 1)
    figures["ratio_range_1h_vs_count"] = round(figures["range_1h"] / figures["baseline_count_1h"], 2)
    figures["ratio_candles_vs_count_1d"] = round(figures["candles_1d_1m"] / figures["baseline_count_1d"], 2)
    figures["rows"], figures["load_seconds"] = rows, round(load_s, 1)
    for key, value in figures.items():
        goal = f"   (goal < {GOALS_MS[key]:g} ms)" if key in GOALS_MS else ""
        print(f"{key:28s} {value:>12}{goal}")
    met = all(figures[k] < v for k, v in GOALS_MS.items())
    goal_text = ", ".join(f"{k} < {v:g} ms" for k, v in GOALS_MS.items()) + " (medians)"
    print(f"goal: {goal_text}: {'met' if met else 'NOT met'}")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "query.json").write_text(json.dumps(
        {"name": "query", "figures": figures, "goal": goal_text, "met": met}, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
