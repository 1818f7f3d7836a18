"""Disk use of the tape: bytes per stored row, indexes included: ``python -m bench.bench_capacity``.

Loads real Binance data (../shared/data: BTCUSDT trades and bookTicker of 2024-08-08 recorded by
hftbacktest, BTCUSDT aggTrades of 2026-01-01 from data.binance.vision), repeated with shifted ids
and times to about 100k trades, 100k aggTrades and 280k bookTicker rows spread over three symbols
and interleaved in time as live capture writes them (index pages fill as in production), into
the project's migrated schema (a schema of its own, dropped at the end), with every column the
worker writes.
Measures TimescaleDB's hypertable_detailed_size (heap, indexes, TOAST) after each table, and
turns bytes/row into disk per day at the rates measured in the same recordings. Baseline: the
raw size of the same events as the JSON Kafka carries (binance_pipeline.common.events.encode). Writes
bench/results/capacity.json. DATABASE_URL defaults to the local services.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg2

from bench.common import drop_schemas_of, fresh_schema

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():  # a worktree beside the main checkout
    DATA = Path("/work/shared/data")
RECORDING = DATA / "hftbacktest_spot_btcusdt_20240808.gz"
AGG_CSV = DATA / "BTCUSDT-aggTrades-2026-01-01.csv"
RESULTS = Path(__file__).resolve().parent / "results"
COPIES = {"trade": 9, "aggTrade": 21, "bookTicker": 9}  # multiples of len(SYMBOLS)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
TRADE_COLS = ("time", "symbol", "type", "id", "first_id", "last_id", "price", "qty", "buyer_maker",
              "best_match", "event_time", "received_at", "source")
BOOK_COLS = ("time", "symbol", "update_id", "bid_price", "bid_qty", "ask_price", "ask_qty")
Row = tuple[object, ...]


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat()


def recording() -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]], float]:
    """(trade payloads, (receipt us, bookTicker payload)), and the recording's span in seconds."""
    trades, books, first, last = [], [], None, 0
    with gzip.open(RECORDING, "rt") as f:
        for line in f:
            stamp, _, body = line.partition(" ")
            if not body.startswith('{"stream"'):
                continue
            msg = json.loads(body)
            recv_us = int(stamp) // 1000
            first, last = first or recv_us, recv_us
            if msg["stream"].endswith("@trade"):
                trades.append(msg["data"])
            elif msg["stream"].endswith("@bookTicker"):
                books.append((recv_us, msg["data"]))
    return trades, books, (last - (first or last)) / 1e6


def interleaved(timed: Iterable[tuple[int, Row]]) -> list[Row]:
    """Rows in time order, as the worker receives them from a live capture of several symbols."""
    return [row for _, row in sorted(timed, key=lambda pair: pair[0])]


def copy_of(c: int, span_us: int) -> tuple[str, int]:
    """Copy ``c`` of a recording: its symbol, and its time shift (copies of one symbol follow on)."""
    return SYMBOLS[c % len(SYMBOLS)], (c // len(SYMBOLS)) * span_us


def trade_rows(trades: list[dict[str, Any]], copies: int) -> list[Row]:
    span_us = (int(trades[-1]["T"]) - int(trades[0]["T"]) + 1) * 1000
    timed = []
    for c in range(copies):
        symbol, shift = copy_of(c, span_us)
        for t in trades:
            at = int(t["T"]) * 1000 + shift
            timed.append((at, (iso(at), symbol, "trade", int(t["t"]) + c * 10**7, None, None, t["p"], t["q"],
                               t["m"], t["M"], iso(at + 7000), iso(at + 9000), "stream")))
    return interleaved(timed)


def agg_rows(copies: int) -> tuple[list[Row], float]:
    raw = list(csv.reader(AGG_CSV.open()))
    span_us = int(raw[-1][5]) - int(raw[0][5]) + 1
    timed = []
    for c in range(copies):
        symbol, shift = copy_of(c, span_us)
        for a, p, q, f, last, t, m, best in raw:
            at = int(t) + shift
            timed.append((at, (iso(at), symbol, "aggTrade", int(a) + c * 10**7, int(f), int(last), p, q,
                               m == "True", best == "True", iso(at + 700), iso(at + 900), "stream")))
    return interleaved(timed), span_us / 1e6


def book_rows(books: list[tuple[int, dict[str, Any]]], copies: int) -> list[Row]:
    span_us = books[-1][0] - books[0][0] + 1
    timed = []
    for c in range(copies):
        symbol, shift = copy_of(c, span_us)
        for recv, b in books:
            at = recv + shift
            timed.append((at, (iso(at), symbol, int(b["u"]) + c * 10**9, b["b"], b["B"], b["a"], b["A"])))
    return interleaved(timed)


def copy(cur: psycopg2.extensions.cursor, table: str, cols: tuple[str, ...], rows: Iterable[Row]) -> int:
    buf, n = io.StringIO(), 0
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
        n += 1
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv)", buf)
    return n


def sizes(cur: psycopg2.extensions.cursor, table: str) -> dict[str, int]:
    cur.execute("SELECT table_bytes, index_bytes, toast_bytes, total_bytes FROM hypertable_detailed_size(%s)",
                (table,))
    row = cur.fetchone()
    assert row is not None
    heap, index, toast, total = row
    return {"heap": heap, "index": index, "toast": toast or 0, "total": total}


def per_row(after: dict[str, int], before: dict[str, int], n: int) -> dict[str, float]:
    return {k: (after[k] - before.get(k, 0)) / n for k in after}


def kafka_bytes(rows: list[Row], cols: tuple[str, ...]) -> float:
    """Mean size of the same events as JSON values (what the topics carry before compression)."""
    sample = rows[:2000]
    return sum(len(orjson.dumps(dict(zip(cols, r, strict=True)))) for r in sample) / len(sample)


def measure(cur: psycopg2.extensions.cursor) -> dict[str, object]:
    trades, books, span_s = recording()
    aggs, agg_span_s = agg_rows(COPIES["aggTrade"])
    out: dict[str, object] = {}
    zero = sizes(cur, "trades")
    n = copy(cur, "trades", TRADE_COLS, trade_rows(trades, COPIES["trade"]))
    cur.execute("ANALYZE trades")
    after_trades = sizes(cur, "trades")
    out["trade"] = {"rows": n, **per_row(after_trades, zero, n), "rate_per_s": len(trades) / span_s}
    n = copy(cur, "trades", TRADE_COLS, aggs)
    out["aggTrade"] = {"rows": n, **per_row(sizes(cur, "trades"), after_trades, n),
                       "rate_per_s": len(aggs) / COPIES["aggTrade"] / agg_span_s}
    zero = sizes(cur, "book_ticker")
    n = copy(cur, "book_ticker", BOOK_COLS, book_rows(books, COPIES["bookTicker"]))
    out["bookTicker"] = {"rows": n, **per_row(sizes(cur, "book_ticker"), zero, n),
                         "rate_per_s": len(books) / span_s}
    out["kafka_json_trade_bytes"] = kafka_bytes(trade_rows(trades, 1), TRADE_COLS)
    return out


def report(m: dict[str, object]) -> dict[str, object]:
    per_day = 0.0
    lines = []
    for kind in ("trade", "aggTrade", "bookTicker"):
        r = m[kind]
        assert isinstance(r, dict)
        day = r["total"] * r["rate_per_s"] * 86_400
        per_day += day
        lines.append(f"{kind:<10} {r['rows']:>8,} rows: {r['total']:6.1f} B/row (heap {r['heap']:.1f}, "
                     f"indexes {r['index']:.1f}); at {r['rate_per_s']:.1f}/s: {day / 1e9:.2f} GB/day")
    print("\n".join(lines))
    print(f"one symbol at BTCUSDT's recorded rates: {per_day / 1e9:.2f} GB/day in TimescaleDB "
          f"(Kafka JSON value of a trade: {m['kafka_json_trade_bytes']:.0f} B before lz4)")
    figures = {f"{k}_bytes_per_row": round(m[k]["total"], 1) for k in ("trade", "aggTrade", "bookTicker")}  # type: ignore[index]
    figures |= {f"{k}_rate_per_s": round(m[k]["rate_per_s"], 1) for k in ("trade", "aggTrade", "bookTicker")}  # type: ignore[index]
    figures["btcusdt_gb_per_day"] = round(per_day / 1e9, 2)
    return figures


def main() -> int:
    if not RECORDING.exists() or not AGG_CSV.exists():
        print(f"skipped: the recordings in {DATA} are absent")
        return 0
    url = fresh_schema("cap")
    started = time.monotonic()
    try:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            figures = report(measure(cur))
        conn.close()
    finally:
        drop_schemas_of([url])
    print(f"({time.monotonic() - started:.1f} s)")
    RESULTS.mkdir(exist_ok=True)
    result = {"name": "capacity", "figures": figures, "goal": "measured (no goal)", "met": True}
    (RESULTS / "capacity.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
