"""Benchmark of the tape queries at two sizes: ``python -m bench.bench_query``.

For each size (BENCH_QUERY_SIZES, default ``10000000,50000000`` rows) a schema of its own
(dropped at the end) is filled inside the database with generate_series: 3 symbols, trades
spread evenly over the same 32 days (so the larger tape is denser, as a busier market is),
plus 2,000 gap records per symbol; the rollups are then built with ``rollup_rebuild()`` (what
the worker keeps up to date row by row) and the tables ANALYZEd. Each query runs through
db.service.queries and its median is printed, then the ratio large/small per query:
latest, price-at, a 1-hour range, 1 day of 1-minute candles, 30 days of 1-hour candles, stats,
10 days of gaps. ``audit`` has its own benchmark (``bench.bench_audit``). The raw-row statement of
1 day of 1-minute candles is timed too, as the baseline the rollup replaces.
Writes bench/results/query.json. DATABASE_URL defaults to the local services.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2

from bench.common import DSN
from binance_pipeline.testing.helpers import url_with_schema
from db.service import queries, sqltext
from db.store.migrate import apply

SIZES = [int(s) for s in os.environ.get("BENCH_QUERY_SIZES", "10000000,50000000").split(",")]
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
DAYS = 32
START = datetime(2024, 6, 1, tzinfo=UTC)
GAPS_PER_SYMBOL = 2000
GOAL_MS, GOAL_RATIO = 50.0, 1.5
SLICE = 1_000_000

FILL_SQL = """
INSERT INTO trades (time, symbol, type, id, price, qty, buyer_maker, received_at)
SELECT %(start)s::timestamptz + (g * %(step)s) * interval '1 millisecond', %(symbol)s, 'trade', g,
       round((%(base)s + %(base)s * 0.02 * sin(g / 20000.0))::numeric, 2)::numeric(20, 8),
       (((g::bigint * 7919) %% 100000) + 1)::numeric(20, 8) / 100000,
       g %% 2 = 0, %(start)s::timestamptz + (g * %(step)s) * interval '1 millisecond'
FROM generate_series(%(lo)s, %(hi)s) g"""

GAPS_SQL = """
INSERT INTO gaps (gap_id, symbol, stream, kind, first_id, last_id, start_time, end_time, missing,
                  reason, status, detected_at, repaired_at)
SELECT %(symbol)s || '-' || g, %(symbol)s, lower(%(symbol)s) || '@trade', 'ids', g * 10, g * 10 + 4,
       t, t + interval '2 seconds', 5, 'stream', 'repaired', t + interval '3 seconds',
       t + interval '9 seconds'
FROM generate_series(1, %(n)s) g,
     LATERAL (SELECT %(start)s::timestamptz + g * (%(span_s)s / %(n)s) * interval '1 second') AS s(t)"""


def execute(url: str, statement: str, args: dict[str, object] | None = None) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute(statement, args)
    finally:
        conn.close()


def fill(url: str, rows: int) -> tuple[float, float]:
    """Insert the trades and gaps, build the rollups, ANALYZE; returns (fill s, rollup s)."""
    per_symbol = rows // len(SYMBOLS)
    step = DAYS * 86_400_000 / per_symbol
    t0 = time.perf_counter()
    slices = [{"start": START, "step": step, "symbol": sym, "base": base, "lo": lo,
               "hi": min(lo + SLICE - 1, per_symbol)}
              for lo in range(1, per_symbol + 1, SLICE)
              for sym, base in zip(SYMBOLS, (60_000, 3_000, 600), strict=True)]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda a: execute(url, FILL_SQL, a), slices))
    for sym in SYMBOLS:
        execute(url, GAPS_SQL, {"symbol": sym, "n": GAPS_PER_SYMBOL, "start": START, "span_s": DAYS * 86400})
    filled = time.perf_counter() - t0
    execute(url, "SELECT rollup_rebuild()")
    rolled = time.perf_counter() - t0 - filled
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("ANALYZE trades; ANALYZE trades_1m; ANALYZE gaps")
    conn.close()
    return filled, rolled


def median_ms(fn: Callable[[int], object], runs: int) -> float:
    fn(0)  # warm the plan cache and buffers
    times = []
    for i in range(1, runs + 1):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


def measure(url: str) -> dict[str, float]:
    conn = queries.connect(url, statement_timeout_ms=600_000)
    rnd = random.Random(42)
    sym = SYMBOLS

    def when(i: int, room_days: int = 1) -> datetime:
        return START + timedelta(seconds=rnd.uniform(0, (DAYS - room_days) * 86400))

    def day(i: int) -> datetime:
        return START + timedelta(days=1 + i % (DAYS - 2))

    hour, minute = timedelta(hours=1), timedelta(minutes=1)
    figures = {
        "latest": median_ms(lambda i: queries.latest(conn, sym[i % 3]), 50),
        "price_at": median_ms(lambda i: queries.price_at(conn, sym[i % 3], when(i)), 50),
        "range_1h": median_ms(lambda i: queries.range_summary(conn, sym[i % 3], t := when(i), t + hour), 30),
        "candles_1d_1m": median_ms(lambda i: queries.candles(
            conn, sym[i % 3], d := day(i), d + timedelta(days=1), minute), 20),
        "candles_30d_1h": median_ms(lambda i: queries.candles(
            conn, sym[i % 3], START + timedelta(days=i % 2), START + timedelta(days=30 + i % 2), hour), 10),
        "stats": median_ms(lambda i: queries.stats(conn, sym[i % 3]), 20),
        "gaps_10d": median_ms(lambda i: queries.completeness(
            conn, sym[i % 3], t := when(i, 10), t + timedelta(days=10)), 20),
    }
    figures["baseline_raw_candles_1d_1m"] = median_ms(lambda i: raw_candles(conn, day(i)), 3)
    conn.close()
    return figures


def raw_candles(conn: queries.Connection, start: datetime) -> None:
    """The raw-row statement of 1 day of 1-minute candles (what the rollup replaces)."""
    args = {"symbol": SYMBOLS[0], "type": "trade", "start": start, "end": start + timedelta(days=1),
            "width_s": 60}
    with conn.cursor() as cur:
        cur.execute(sqltext.CANDLES_SQL, args)
        cur.fetchall()


def run_size(rows: int) -> dict[str, float]:
    name = f"bench_query_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(DSN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {name}")
    try:
        url = url_with_schema(DSN, name)
        apply(url)
        fill_s, rollup_s = fill(url, rows)
        print(f"{rows:,} trades ({len(SYMBOLS)} symbols, {DAYS} days): filled in {fill_s:.0f} s, "
              f"rollups built in {rollup_s:.0f} s", flush=True)
        figures = measure(url)
        figures.update(fill_seconds=round(fill_s), rollup_build_seconds=round(rollup_s))
        for key, value in figures.items():
            print(f"  {key:28s} {value:>10}")
        return figures
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        admin.close()


QUERIES = ("latest", "price_at", "range_1h", "candles_1d_1m", "candles_30d_1h", "stats", "gaps_10d")


def main() -> int:
    results = {rows: run_size(rows) for rows in SIZES}
    small, large = min(SIZES), max(SIZES)
    print(f"\nquery               {small / 1e6:>6g}M ms  {large / 1e6:>6g}M ms   ratio   "
          f"(goal < {GOAL_MS:g} ms at {large / 1e6:g}M, ratio <= {GOAL_RATIO})")
    figures: dict[str, float] = {"rows_small": small, "rows_large": large}
    met = True
    for q in QUERIES:
        a, b = results[small][q], results[large][q]
        ratio = round(b / a, 2) if a else 0.0
        ok = b < GOAL_MS and (len(SIZES) < 2 or ratio <= GOAL_RATIO)
        met &= ok
        figures.update({f"{q}_ms_small": a, f"{q}_ms_large": b, f"{q}_ratio": ratio})
        print(f"{q:18s} {a:>10.3f} {b:>10.3f} {ratio:>7.2f}   {'ok' if ok else 'NOT met'}")
    print("audit: see python -m bench.bench_audit")
    for rows in SIZES:
        tag = f"{rows / 1e6:g}M"
        figures[f"baseline_raw_candles_1d_1m_ms_{tag}"] = results[rows]["baseline_raw_candles_1d_1m"]
        figures[f"fill_seconds_{tag}"] = results[rows]["fill_seconds"]
        figures[f"rollup_build_seconds_{tag}"] = results[rows]["rollup_build_seconds"]
    goal = f"every query < {GOAL_MS:g} ms median at {large:,} rows, ratio large/small <= {GOAL_RATIO}"
    print(f"goal: {goal}: {'met' if met else 'NOT met'}")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "query.json").write_text(json.dumps(
        {"name": "query", "figures": figures, "goal": goal, "met": met}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
