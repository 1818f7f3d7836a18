"""Questions asked of the tape: one function per query, over a psycopg2 connection.

Rules:
  1. Parameterised SQL only; identifiers through ``psycopg2.sql.Identifier``. This module never
     writes: connections made by ``connect`` are read-only sessions.
  2. ``type`` selects 'trade' or 'aggTrade' rows; every trades query filters on it, so the two
     streams are never mixed.
  3. Intervals are half-open ``[start, end)`` on the exchange trade time; the tape's order is
     (time, id), so "first"/"last"/open/close break ties on time by id.
  4. Values come back as ``db.service.results`` types (Decimal prices with the exchange's digits,
     UTC-aware times). psycopg2 errors leave as ``db.service.errors`` types, classified by SQLSTATE.
  5. ``latest`` and ``price_at`` are index lookups on trades_symbol_type_time_idx whatever the
     table size (tests EXPLAIN the SQL below).
  6. ``range``, candles of whole-minute buckets, ``stats`` and the day counts of ``gaps`` read
     the 1-minute and 1-hour rollups (db.service.sqltext Rule 4), so their cost follows the answer's
     span in hours and minutes, not the rows under it; sub-minute candles read raw rows.
  7. A session made by ``connect`` counts the statements sent on it (``CountingConnection.statements``,
     through its cursors): the dashboard shows each refresh's count, so "one statement per refresh,
     whatever the number of symbols" (``markets``) is a figure the product itself reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from db.service import results as r
from db.service.errors import classify
from db.service.params import BUCKET_ORIGIN
from db.service.sqltext import (
    CANDLES_FILLED_SQL,
    CANDLES_SQL,
    DAY_COUNTS_SQL,
    GAP_STATUS_SQL,
    GAPS_SQL,
    HAS_ANY_SQL,
    HAS_QUOTES_SQL,
    LATEST_SQL,
    MARKETS_SQL,
    MISSING_TABLES_SQL,
    PRICE_AT_SQL,
    QUOTE_BUCKETS_SQL,
    ROLLUP_CANDLES_FILLED_SQL,
    ROLLUP_CANDLES_SQL,
    ROLLUP_RANGE_SQL,
    SPREAD_SQL,
    STATS_SQL,
    SYMBOLS_SQL,
    WHALES_SQL,
)
from db.store import audit as au
from db.store import audit_scan as scan

Connection = psycopg2.extensions.connection


def connect_params(dsn: str, statement_timeout_ms: int) -> dict[str, Any]:
    """libpq parameters of ``dsn`` plus the query session's settings (UTC, read-only, timeout)."""
    return scan.session_params(dsn, statement_timeout_ms)


class CountingCursor(psycopg2.extensions.cursor):
    """A cursor that counts each statement it sends on its connection (Rule 7)."""

    def execute(self, query: str | bytes | sql.Composable, vars: Any = None) -> None:
        connection = self.connection
        if isinstance(connection, CountingConnection):
            connection.statements += 1
        super().execute(query, vars)


class CountingConnection(psycopg2.extensions.connection):
    """A connection whose cursors count the statements sent on it: ``statements`` (Rule 7)."""

    def __init__(self, dsn: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(dsn, *args, **kwargs)
        self.statements = 0
        self.cursor_factory = CountingCursor


def connect(dsn: str, statement_timeout_ms: int = 15_000) -> CountingConnection:
    """A read-only autocommit session in UTC that counts its statements (Rule 7); raises
    ``DatabaseUnavailable`` when unreachable."""
    try:
        params = connect_params(dsn, statement_timeout_ms)
        conn = psycopg2.connect(connection_factory=CountingConnection, **params)
    except psycopg2.Error as exc:
        raise classify(exc) from exc
    if not isinstance(conn, CountingConnection):
        raise TypeError(f"psycopg2.connect made a {type(conn).__name__}, not a CountingConnection")
    conn.autocommit = True
    return conn


def _rows(conn: Connection, query: str | sql.Composed, params: Sequence[Any] | dict[str, Any]) -> list[Any]:
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()
    except psycopg2.Error as exc:
        raise classify(exc) from exc


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _trade(row: Sequence[Any]) -> r.Trade:
    return r.Trade(time=row[0].astimezone(UTC), id=row[1], price=row[2], qty=row[3], buyer_maker=row[4])


def latest(conn: Connection, symbol: str, type: str = "trade") -> r.Trade | None:
    """The last trade of the tape (highest (time, id)), or None when the symbol has none."""
    rows = _rows(conn, LATEST_SQL, {"symbol": symbol, "type": type})
    return _trade(rows[0]) if rows else None


def price_at(conn: Connection, symbol: str, at: datetime, type: str = "trade") -> r.PriceAt:
    """The last trade at or before ``at`` and the first trade strictly after it."""
    rows = _rows(conn, PRICE_AT_SQL, {"symbol": symbol, "type": type, "at": at})
    sides = {row[0]: _trade(row[1:]) for row in rows}
    return r.PriceAt(at=at, before=sides.get("before"), after=sides.get("after"))


def range_summary(
    conn: Connection, symbol: str, start: datetime, end: datetime, type: str = "trade"
) -> r.RangeSummary:
    """OHLC, volume, quote volume (sum of price*qty, exact), VWAP and count over [start, end)."""
    args = {"symbol": symbol, "type": type, "start": start, "end": end, **r.rollup_split(start, end)}
    n, high, low, volume, quote, t0, t1, open_, close = _rows(conn, ROLLUP_RANGE_SQL, args)[0]
    return r.RangeSummary(
        start=start, end=end, trade_count=n, open=open_, high=high, low=low, close=close,
        volume=volume, quote_volume=quote, vwap=r.vwap(quote, volume),
        first_time=_utc(t0), last_time=_utc(t1),
    )


def candles(
    conn: Connection, symbol: str, start: datetime, end: datetime, width: timedelta,
    type: str = "trade", fill: bool = False,
) -> list[r.Candle]:
    """OHLCV per time_bucket of ``width`` over [start, end), oldest first.

    ``fill``: every bucket of the range is returned; an empty one has volume 0, trade_count 0
    and open=high=low=close = the previous close (the last trade before ``start`` seeds it;
    None when the symbol has no earlier trade).
    """
    width_s = int(width.total_seconds())
    args = {"symbol": symbol, "type": type, "start": start, "end": end, "width_s": width_s,
            **r.rollup_split(start, end, hours=width_s % 3600 == 0)}
    rows = _rows(conn, _candles_sql(width_s, fill), args)
    return [
        r.Candle(bucket=b.astimezone(UTC), open=o, high=h, low=lo, close=c, volume=v,
                 quote_volume=q, trade_count=n)
        for b, o, h, lo, c, v, q, n in rows
    ]


def _candles_sql(width_s: int, fill: bool) -> str:
    """Rule 6: whole-minute buckets from the rollup, sub-minute ones from raw rows."""
    if width_s % 60 == 0:
        return ROLLUP_CANDLES_FILLED_SQL if fill else ROLLUP_CANDLES_SQL
    return CANDLES_FILLED_SQL if fill else CANDLES_SQL


def sma(
    conn: Connection, symbol: str, start: datetime, end: datetime, width: timedelta, window: int,
    type: str = "trade",
) -> list[r.SmaPoint]:
    """Simple moving average of the last ``window`` bucket closes, for each bucket of [start, end).

    Closes are gap-filled (an empty bucket's close is the previous close), and the
    ``window - 1`` buckets before ``start`` are read too, so the first points are defined.
    """
    first = r.bucket_start(start, width, BUCKET_ORIGIN)
    warm = candles(conn, symbol, first - (window - 1) * width, end, width, type, fill=True)
    averages = r.moving_average([c.close for c in warm], window)
    return [
        r.SmaPoint(bucket=c.bucket, close=c.close, sma=avg)
        for c, avg in zip(warm, averages, strict=True)
        if c.bucket >= first
    ]


def stats(conn: Connection, symbol: str) -> r.SymbolStats:
    """Row counts, first/last event time and min/max price per table for one symbol (rollups)."""
    tables = []
    for table, type_, query in STATS_SQL:
        n, t0, t1, lo, hi = _rows(conn, query, {"symbol": symbol})[0]
        tables.append(r.TableStats(table, type_, n, _utc(t0), _utc(t1), lo, hi))
    gaps = {status: 0 for status in ("open", "repaired", "unrepairable")}
    gaps.update(dict(_rows(conn, GAP_STATUS_SQL, {"symbol": symbol})))
    return r.SymbolStats(symbol=symbol, tables=tables, gaps=gaps)


def spread(conn: Connection, symbol: str, at: datetime) -> r.Quote | None:
    """Best bid, best ask and spread in force at ``at`` (last bookTicker received at or before)."""
    rows = _rows(conn, SPREAD_SQL, {"symbol": symbol, "at": at})
    if not rows:
        return None
    t, uid, bid, bid_qty, ask, ask_qty, diff = rows[0]
    return r.Quote(at, t.astimezone(UTC), uid, bid, bid_qty, ask, ask_qty, diff)


def quote_buckets(
    conn: Connection, symbol: str, start: datetime, end: datetime, width: timedelta
) -> list[r.QuoteBucket]:
    """Best bid/ask over time: per bucket of [start, end), its last quote and widest spread."""
    args = {"symbol": symbol, "start": start, "end": end, "width_s": int(width.total_seconds())}
    return [
        r.QuoteBucket(b.astimezone(UTC), bid, ask, spread, widest, n)
        for b, bid, ask, spread, widest, n in _rows(conn, QUOTE_BUCKETS_SQL, args)
    ]


def whales(
    conn: Connection, symbol: str, start: datetime, end: datetime,
    threshold: Decimal = Decimal(100_000), type: str = "trade", limit: int = 100,
) -> r.Whales:
    """Trades in [start, end) with notional price*qty >= threshold, oldest first, at most limit."""
    args = {"symbol": symbol, "type": type, "start": start, "end": end,
            "threshold": threshold, "limit": limit + 1}
    rows = _rows(conn, WHALES_SQL, args)
    found = [r.Whale(t.astimezone(UTC), i, p, q, m, n) for t, i, p, q, m, n in rows[:limit]]
    return r.Whales(trades=found, truncated=len(rows) > limit)


def completeness(conn: Connection, symbol: str, start: datetime, end: datetime) -> r.Completeness:
    """The gaps whose data overlaps [start, end) with their status, and per-UTC-day row counts."""
    args = {"symbol": symbol, "start": start, "end": end, **r.rollup_split(start, end)}
    gaps = [
        r.Gap(gid, stream, kind, f, lst, _utc(gs), _utc(ge), miss, why, status, det.astimezone(UTC),
              _utc(rep), _utc(ds), _utc(de))
        for gid, stream, kind, f, lst, gs, ge, miss, why, status, det, rep, ds, de
        in _rows(conn, GAPS_SQL, args)
    ]
    days = [r.DayCount(d.astimezone(UTC), n, agg) for d, n, agg in _rows(conn, DAY_COUNTS_SQL, args)]
    return r.Completeness(gaps=gaps, days=days)


def markets(conn: Connection, start: datetime, end: datetime) -> list[r.Market]:
    """Every symbol in the database in one statement: trades in [start, end), gap records by
    status, last trade; most trades first (db.service.sqltext.MARKETS_SQL)."""
    rows = _rows(conn, MARKETS_SQL, {"start": start, "end": end, **r.rollup_split(start, end)})
    return [r.Market(s, n, op, rep, unrep, r.completeness_of(op, rep, unrep), _utc(t), i, p)
            for s, n, op, rep, unrep, t, i, p in rows]


def symbols(conn: Connection) -> list[str]:
    """The symbols in the database (rollups and gap records), in order, in one statement."""
    return [row[0] for row in _rows(conn, SYMBOLS_SQL, {})]


def has_any(conn: Connection, symbol: str) -> bool:
    """Whether the symbol has any row in trades, book_ticker or gaps."""
    return bool(_rows(conn, HAS_ANY_SQL, {"symbol": symbol})[0][0])


def has_quotes(conn: Connection, symbol: str) -> bool:
    """Whether the symbol has any bookTicker row."""
    return bool(_rows(conn, HAS_QUOTES_SQL, {"symbol": symbol})[0][0])


PIPELINE_TABLES = ("book_ticker", "gaps", "trades")


def missing_tables(conn: Connection) -> list[str]:
    """The pipeline tables this session cannot see (migrations not applied): empty when ready."""
    return [row[0] for row in _rows(conn, MISSING_TABLES_SQL, {"names": list(PIPELINE_TABLES)})]


# --- audit ----------------------------------------------------------------------------------


def audit(
    conn: Connection, symbol: str, start: datetime, end: datetime, streams: Sequence[str],
    limit: int = 10_000, timeout_ms: int = 300_000,
) -> au.Audit:
    """The store's audit (db.store.audit_scan, rules in db.store.audit), errors classified."""
    try:
        return scan.audit(conn, symbol, start, end, streams, limit, timeout_ms)
    except psycopg2.Error as exc:
        raise classify(exc) from exc


def rows_of(conn: Connection, query: str, params: Sequence[Any] | dict[str, Any]) -> list[Any]:
    """Rows of one parameterised statement (for db.repair's waits), errors classified."""
    return _rows(conn, query, params)
