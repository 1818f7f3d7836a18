"""The audit's shortcut, its SQL: read the per-minute coverage (migration 006) and the raw rows
only where it does not prove the minute (rules in db.store.audit_cover). Called by
db.store.audit_scan, which falls back to its full scans whenever this returns None.

Rules:
  1. Read only, inside the caller's snapshot (db.store.audit_scan runs the whole audit in one
     REPEATABLE READ transaction, so the coverage and the raw rows are the same moment's).
  2. ``usable``: the coverage is trusted only while ``coverage_state.dirty`` is false (nothing
     wrote trades around the worker's rollups since the last full ``rollup_rebuild()``).
  3. Every answer equals the full scan's over the same rows: the same anomalies in id order with
     the same times, the same count of rows scanned, the same disagreeing times in time order,
     each cut at ``limit`` as the full scan cuts it.
  4. More than ``MAX_INTERVALS`` separate raw intervals: None (the full scan is then cheaper).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2.extensions

from db.store import audit as au
from db.store import audit_cover as ac

Connection = psycopg2.extensions.connection
MAX_INTERVALS = 50
_US = timedelta(microseconds=1)

DIRTY_SQL = "SELECT dirty FROM coverage_state"

COVERAGE_SQL = """
SELECT bucket, n, volume, id_min, id_max, id_sum, id_sq, tid_n, tid_min, tid_max, tid_sum, tid_tw, qty_tw
FROM trades_cov_1m
WHERE symbol = %(symbol)s AND type = %(type)s AND bucket >= %(m0)s AND bucket < %(m1)s"""

# The raw rows of one stream in one time interval, within the continuity scan's id bounds.
RAW_IDS_SQL = """
SELECT id, time FROM trades
WHERE symbol = %(symbol)s AND type = %(type)s AND time >= %(lo)s AND time < %(hi)s
  AND id >= %(lo_id)s AND id <= %(hi_id)s"""

# The time of each id of a whole minute (one row per id there, audit_cover Rule 2), in order.
RUN_TIMES_SQL = """
SELECT (SELECT time FROM trades WHERE symbol = %(symbol)s AND type = %(type)s AND id = q.id
          AND time >= q.b AND time < q.b + INTERVAL '1 minute' ORDER BY time LIMIT 1)
FROM unnest(%(ids)s::bigint[], %(buckets)s::timestamptz[]) WITH ORDINALITY AS q(id, b, k)
ORDER BY q.k"""


def _rows(conn: Connection, query: str, params: dict[str, Any]) -> list[Any]:
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def usable(conn: Connection) -> bool:
    """Rule 2."""
    return not _rows(conn, DIRTY_SQL, {})[0][0]


def coverage(
    conn: Connection, symbol: str, stream: str, minutes: tuple[datetime, datetime]
) -> list[ac.Coverage]:
    args = {"symbol": symbol, "type": stream, "m0": minutes[0], "m1": minutes[1]}
    return [ac.Coverage(b.astimezone(UTC), *rest) for b, *rest in _rows(conn, COVERAGE_SQL, args)]


def anomalies(
    conn: Connection, args: dict[str, Any], start: datetime, end: datetime
) -> tuple[int, list[au.Anomaly]] | None:
    """The continuity scan's answer (rows scanned, every anomaly in id order) from the coverage
    and the raw rows of the other minutes; None when the full scan must run (Rules 3-4)."""
    minutes = ac.whole_minutes(start, end)
    if minutes is None:
        return None
    cov = coverage(conn, args["symbol"], args["type"], minutes)
    whole = [c for c in cov if ac.is_whole(c)]
    raw = [(args["lo_t"], minutes[0]), *ac.intervals([c.bucket for c in cov if not ac.is_whole(c)]),
           (minutes[1], args["hi_t"] + _US)]
    if len(raw) > MAX_INTERVALS:
        return None
    pieces = [p for c in whole if (p := ac.run_of(c, args["lo_id"], args["hi_id"])) is not None]
    for lo, hi in raw:
        if lo < hi:
            pieces += [ac.Piece(i, i, t.astimezone(UTC), None)
                       for i, t in _rows(conn, RAW_IDS_SQL, {**args, "lo": lo, "hi": hi})]
    steps = ac.walk(pieces)
    if steps is None:
        return None
    return sum(p.hi - p.lo + 1 for p in pieces), _with_times(conn, args, steps)


def _with_times(
    conn: Connection, args: dict[str, Any], steps: list[tuple[ac.Piece, ac.Piece]]
) -> list[au.Anomaly]:
    """Each step as the scan's anomaly: the ids on either side and their rows' times."""
    ends = [(a.hi, a.bucket) for a, _ in steps] + [(b.lo, b.bucket) for _, b in steps]
    runs: list[tuple[int, datetime | None]] = [(i, b) for i, b in ends if b is not None]
    found = _rows(conn, RUN_TIMES_SQL, {**args, "ids": [i for i, _ in runs], "buckets": [b for _, b in runs]})
    times: dict[tuple[int, datetime | None], datetime] = {
        end: t.astimezone(UTC) for end, (t,) in zip(runs, found, strict=True)}
    return [au.Anomaly(a.hi, a.time or times[a.hi, a.bucket], b.lo, b.time or times[b.lo, b.bucket])
            for a, b in steps]


def disagreeing_times(
    conn: Connection, symbol: str, start: datetime, end: datetime, limit: int, times_sql: str
) -> list[datetime] | None:
    """The consistency pass's times (``times_sql`` over [start, end) cut at ``limit``), read only in
    the minutes whose trade and aggTrade coverage do not agree; None when the full pass must run."""
    minutes = ac.whole_minutes(start, end)
    if minutes is None:
        return None
    trades = {c.bucket: c for c in coverage(conn, symbol, "trade", minutes)}
    aggs = {c.bucket: c for c in coverage(conn, symbol, "aggTrade", minutes)}
    bad = [m for m in trades.keys() | aggs.keys()
           if m not in trades or m not in aggs or not ac.agree(trades[m], aggs[m])]
    raw = [(start, minutes[0]), *ac.intervals(bad), (minutes[1], end)]
    if len(raw) > MAX_INTERVALS:
        return None
    out: list[datetime] = []
    for lo, hi in raw:
        if lo < hi and len(out) < limit:
            args = {"symbol": symbol, "start": lo, "end": hi, "limit": limit - len(out)}
            out += [t for (t,) in _rows(conn, times_sql, args)]
    return out
