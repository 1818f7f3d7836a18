"""The audit's SQL and the scan that runs it (psycopg2): anomalies of a range, never its rows.

One audit for every caller: the query service (``db.query audit``, ``GET /v1/audit``, the
launcher's self-audit and ``audit --repair``, through ``db.service.queries.audit``) and the history
import's closing verdict (``ingestion.history.verdict``). db.store.audit holds the rules and turns
what this module finds into the answer.

Rules:
  1. Read only: parameterised SELECTs, on a session made from ``session_params`` (read-only,
     autocommit, UTC; the DSN's own options kept).
  2. ``audit`` runs its scans under ``timeout_ms`` instead of the session's statement timeout
     and restores that after, error or not.
  3. psycopg2 errors leave as they are: each caller classifies them (the query service by
     SQLSTATE, the history import as its ``AuditError``).
  4. ``written`` counts the stored rows of an id span (an import waits on it before auditing).
  5. One snapshot: the scans of one audit run in one REPEATABLE READ transaction (on an autocommit
     session), so rows a worker commits meanwhile are in all of them or in none.
  6. The coverage first: while it is usable (migration 006, db.store.audit_cover_scan), each scan
     reads raw rows only in the minutes the coverage does not prove, with the same answer; when
     it is not, or the shortcut declines, the full scans below run as they always did.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg2.extensions

from db.store import audit as au
from db.store import audit_cover_scan as cover

Connection = psycopg2.extensions.connection
_SESSION = "-c TimeZone=UTC -c jit=off -c default_transaction_read_only=on"

# The rows around [start, end) of one stream: the last one before it, the first and last in
# it, and the first one after it (index probes on trades_symbol_type_time_idx).
AUDIT_BOUNDS_SQL = """
SELECT b.id, b.time, f.id, f.time, l.id, l.time, a.id, a.time
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT id, time FROM trades WHERE symbol = %(symbol)s AND type = %(type)s
                   AND time < %(start)s ORDER BY time DESC, id DESC LIMIT 1) b ON true
LEFT JOIN LATERAL (SELECT id, time FROM trades WHERE symbol = %(symbol)s AND type = %(type)s
                   AND time >= %(start)s AND time < %(end)s ORDER BY time, id LIMIT 1) f ON true
LEFT JOIN LATERAL (SELECT id, time FROM trades WHERE symbol = %(symbol)s AND type = %(type)s
                   AND time >= %(start)s AND time < %(end)s ORDER BY time DESC, id DESC LIMIT 1) l ON true
LEFT JOIN LATERAL (SELECT id, time FROM trades WHERE symbol = %(symbol)s AND type = %(type)s
                   AND time >= %(end)s ORDER BY time, id LIMIT 1) a ON true"""

# Continuity: one pass over the ids lo_id..hi_id in id order (an index-only scan of the
# unique key (symbol, type, id, time), chunk by chunk, no sort); only the rows whose successor
# is not id + 1 come back (a hole after them, or a duplicate), plus the last row, whose
# row_number is the number of rows scanned. The time bounds only exclude chunks.
AUDIT_ANOMALIES_SQL = """
SELECT id, time, next_id, next_time, rn FROM (
  SELECT id, time, lead(id) OVER w AS next_id, lead(time) OVER w AS next_time,
         row_number() OVER w AS rn
  FROM trades
  WHERE symbol = %(symbol)s AND type = %(type)s AND id >= %(lo_id)s AND id <= %(hi_id)s
    AND time >= %(lo_t)s AND time <= %(hi_t)s
  WINDOW w AS (ORDER BY id)
) x
WHERE next_id IS NULL OR next_id <> id + 1
ORDER BY next_id IS NULL DESC, id
LIMIT %(limit)s"""

# trade/aggTrade consistency, first pass: per trade time (every trade of an aggTrade has the
# aggTrade's time), the trades' count, quantity and id bounds against the aggTrades' covered
# count, quantity and id bounds; one streaming pass, only disagreeing times come back.
AUDIT_TIMES_SQL = """
SELECT time FROM trades
WHERE symbol = %(symbol)s AND type IN ('trade', 'aggTrade') AND time >= %(start)s AND time < %(end)s
GROUP BY time
HAVING sum(qty) FILTER (WHERE type = 'trade') IS DISTINCT FROM sum(qty) FILTER (WHERE type = 'aggTrade')
    OR count(*) FILTER (WHERE type = 'trade')
       <> coalesce(sum((last_id - first_id + 1)::int) FILTER (WHERE type = 'aggTrade'), 0)
    OR min(id) FILTER (WHERE type = 'trade') IS DISTINCT FROM min(first_id) FILTER (WHERE type = 'aggTrade')
    OR max(id) FILTER (WHERE type = 'trade') IS DISTINCT FROM max(last_id) FILTER (WHERE type = 'aggTrade')
ORDER BY time
LIMIT %(limit)s"""

# Second pass, at the disagreeing times only: each aggTrade with its trades' sum and count...
AUDIT_AGGS_SQL = """
SELECT a.time, a.id, a.first_id, a.last_id, a.qty, coalesce(sum(t.qty), 0), count(t.id)
FROM trades a
LEFT JOIN trades t ON t.symbol = a.symbol AND t.type = 'trade' AND t.time = a.time
                  AND t.id BETWEEN a.first_id AND a.last_id
WHERE a.symbol = %(symbol)s AND a.type = 'aggTrade' AND a.time = ANY(%(times)s)
GROUP BY a.time, a.id, a.first_id, a.last_id, a.qty
ORDER BY a.time, a.id"""

# ...and the trades that no aggTrade of their time covers.
AUDIT_UNCOVERED_SQL = """
SELECT t.time, min(t.id), max(t.id), sum(t.qty), count(*)
FROM trades t
WHERE t.symbol = %(symbol)s AND t.type = 'trade' AND t.time = ANY(%(times)s)
  AND NOT EXISTS (SELECT 1 FROM trades a WHERE a.symbol = t.symbol AND a.type = 'aggTrade'
                  AND a.time = t.time AND t.id BETWEEN a.first_id AND a.last_id)
GROUP BY t.time ORDER BY t.time"""

# The id gap records that overlap ids lo..hi of one stream.
AUDIT_GAPS_SQL = """
SELECT gap_id, first_id, last_id, status, reason FROM gaps
WHERE symbol = %(symbol)s AND stream = %(type)s AND kind = 'ids'
  AND first_id <= %(hi_id)s AND last_id >= %(lo_id)s
ORDER BY first_id, gap_id"""

WRITTEN_SQL = """
SELECT count(*) FROM trades WHERE symbol = %(symbol)s AND type = %(type)s
  AND id BETWEEN %(first_id)s AND %(last_id)s"""


def session_params(dsn: str, statement_timeout_ms: int) -> dict[str, Any]:
    """Rule 1: libpq parameters of ``dsn`` plus the read-only session's settings and timeout."""
    params = psycopg2.extensions.parse_dsn(dsn)
    ours = f"{_SESSION} -c statement_timeout={int(statement_timeout_ms)}"
    params["options"] = f"{params['options']} {ours}" if params.get("options") else ours
    return params


def _rows(conn: Connection, query: str, params: Sequence[Any] | dict[str, Any]) -> list[Any]:
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


@contextmanager
def snapshot(conn: Connection) -> Iterator[None]:
    """Rule 5: the block in one read-only REPEATABLE READ transaction (autocommit sessions only;
    a session already in a transaction keeps its own)."""
    if not conn.autocommit:
        yield
        return
    _execute(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        yield
    except BaseException:
        if not conn.closed:
            _execute(conn, "ROLLBACK")
        raise
    _execute(conn, "COMMIT")


def _execute(conn: Connection, statement: str) -> None:
    with conn.cursor() as cur:
        cur.execute(statement)


@contextmanager
def statement_timeout(conn: Connection, timeout_ms: int) -> Iterator[None]:
    """Rule 2: run the block under ``timeout_ms`` instead of the session's statement timeout."""
    before = _rows(conn, "SELECT current_setting('statement_timeout')", ())[0][0]
    _rows(conn, "SELECT set_config('statement_timeout', %s, false)", (str(int(timeout_ms)),))
    try:
        yield
    finally:
        if not conn.closed:
            _rows(conn, "SELECT set_config('statement_timeout', %s, false)", (before,))


def audit(
    conn: Connection, symbol: str, start: datetime, end: datetime, streams: Sequence[str],
    limit: int = 10_000, timeout_ms: int = 300_000,
) -> au.Audit:
    """Continuity of each stream over [start, end) and, when both trade and aggTrade are
    audited and stored, their consistency; all checked in SQL (db.store.audit has the rules)."""
    with statement_timeout(conn, timeout_ms), snapshot(conn):
        fast = cover.usable(conn)
        parts = [_audit_stream(conn, symbol, s, start, end, limit, fast) for s in streams]
        both = set(streams) == {"trade", "aggTrade"} and all(p[0].rows for p in parts)
        mismatches = _consistency(conn, symbol, start, end, limit, fast) if both else []
    stream_audits = [p[0] for p in parts]
    return au.Audit(
        symbol=symbol, start=start, end=end, complete=au.is_complete(stream_audits, mismatches),
        streams=stream_audits, holes=[h for p in parts for h in p[1]],
        duplicates=[d for p in parts for d in p[2]], consistency_checked=both, mismatches=mismatches,
    )


def _audit_stream(
    conn: Connection, symbol: str, stream: str, start: datetime, end: datetime, limit: int, fast: bool
) -> tuple[au.StreamAudit, list[au.Hole], list[au.Duplicate]]:
    args: dict[str, Any] = {"symbol": symbol, "type": stream, "start": start, "end": end}
    b_id, b_t, f_id, _f_t, l_id, _l_t, a_id, a_t = _rows(conn, AUDIT_BOUNDS_SQL, args)[0]
    lo_id, hi_id = b_id if b_id is not None else f_id, a_id if a_id is not None else l_id
    if lo_id is None or hi_id is None or lo_id >= hi_id:
        rows = 1 if f_id is not None else 0
        return au.StreamAudit(stream, rows, f_id, l_id, 0, 0, 0, False), [], []
    args.update(lo_id=lo_id, hi_id=hi_id, lo_t=b_t or start, hi_t=a_t or end, limit=limit + 1)
    found = (cover.anomalies(conn, args, start, end) if fast else None) or _anomalies(conn, args)
    scanned, anomalies, truncated = found[0], found[1][:limit], len(found[1]) >= limit
    gaps = [au.GapSpan(*g) for g in _rows(conn, AUDIT_GAPS_SQL, args)]
    holes, dups = au.holes_of(stream, anomalies, gaps), au.duplicates_of(stream, anomalies)
    in_range = scanned - (b_id is not None) - (a_id is not None)
    summary = au.StreamAudit(
        stream, in_range, f_id, l_id, sum(1 for a in anomalies if a.next_id > a.id + 1),
        sum(a.next_id - a.id - 1 for a in anomalies if a.next_id > a.id), len(dups), truncated,
    )
    return summary, holes, dups


def _anomalies(conn: Connection, args: dict[str, Any]) -> tuple[int, list[au.Anomaly]]:
    """The full continuity scan: rows scanned, and the anomalies in id order (at most limit)."""
    found = _rows(conn, AUDIT_ANOMALIES_SQL, args)
    scanned = int(found[0][4])  # the last row (next_id NULL) comes first: its row_number
    return scanned, [au.Anomaly(i, t.astimezone(UTC), n, nt.astimezone(UTC)) for i, t, n, nt, _ in found[1:]]


def _consistency(
    conn: Connection, symbol: str, start: datetime, end: datetime, limit: int, fast: bool
) -> list[au.AggMismatch]:
    args: dict[str, Any] = {"symbol": symbol, "start": start, "end": end, "limit": limit}
    times = cover.disagreeing_times(conn, symbol, start, end, limit, AUDIT_TIMES_SQL) if fast else None
    if times is None:
        times = [t for (t,) in _rows(conn, AUDIT_TIMES_SQL, args)]
    if not times:
        return []
    args["times"] = times
    aggs = _rows(conn, AUDIT_AGGS_SQL, args)
    uncovered = _rows(conn, AUDIT_UNCOVERED_SQL, args)
    return au.mismatches_of(
        [(t.astimezone(UTC), i, f, lst, q, tq, n) for t, i, f, lst, q, tq, n in aggs],
        [(t.astimezone(UTC), lo, hi, q, n) for t, lo, hi, q, n in uncovered],
    )


def written(conn: Connection, symbol: str, stream: str, first_id: int, last_id: int) -> int:
    """Rule 4: stored rows of ``stream`` with ids in ``first_id..last_id`` (duplicates counted)."""
    args = {"symbol": symbol, "type": stream, "first_id": first_id, "last_id": last_id}
    return int(_rows(conn, WRITTEN_SQL, args)[0][0])
