"""The audit verdict printed at the end of an import: id continuity over the imported range.

``audit_range`` is the one function the import calls. It is a minimal stand-in for the full
audit (``db.query audit``, built separately): when that lands, point ``audit_range`` at it and
keep this signature. Read-only: a session with ``default_transaction_read_only``.

Rules:
  1. Over the rows of one symbol and stream with trade time in ``[start_us, end_us)``: ids are
     each present once and without a hole from the first to the last; for aggTrades each
     ``first_id`` follows the previous ``last_id``. Anything else is not clean.
  2. ``wait_written`` waits (bounded) until the worker has written ``first..last``: the import
     only publishes, the worker writes, and the audit must judge the written tape. A missing
     ``trades`` table means the worker has not migrated yet: waited for like missing rows.
  3. Database errors leave as ``AuditError`` (wrapped ``from`` the psycopg2 error).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg2
import psycopg2.errors

from ingestion.history.errors import AuditError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SUMMARY = """
WITH r AS (
  SELECT id, first_id, lag(id) OVER w AS prev_id, lag(last_id) OVER w AS prev_last
  FROM trades WHERE symbol = %(s)s AND type = %(t)s AND time >= %(a)s AND time < %(b)s
  WINDOW w AS (ORDER BY id))
SELECT count(*), min(id), max(id),
       count(*) FILTER (WHERE id = prev_id),
       coalesce(sum(id - prev_id - 1) FILTER (WHERE id > prev_id + 1), 0),
       count(*) FILTER (WHERE %(t)s = 'aggTrade' AND id = prev_id + 1 AND first_id <> prev_last + 1),
       (array_agg(ARRAY[prev_id + 1, id - 1] ORDER BY id) FILTER (WHERE id > prev_id + 1))[1:5]
FROM r
"""
_WRITTEN = "SELECT count(*) FROM trades WHERE symbol = %s AND type = %s AND id BETWEEN %s AND %s"


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class AuditVerdict:
    """Rule 1 over one symbol and stream."""

    symbol: str
    stream: str
    rows: int
    first_id: int | None
    last_id: int | None
    duplicates: int
    missing: int
    chain_breaks: int
    holes: list[tuple[int, int]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.rows > 0 and self.duplicates == 0 and self.missing == 0 and self.chain_breaks == 0

    def line(self) -> str:
        head = f"{self.symbol} {self.stream}: {self.rows:,} rows, ids {self.first_id}..{self.last_id}"
        if self.clean:
            return f"{head}: CLEAN (every id once, no hole)"
        holes = ", ".join(f"{a}-{b}" for a, b in self.holes)
        return (f"{head}: NOT CLEAN ({self.missing} missing{f' in {holes}' if holes else ''}, "
                f"{self.duplicates} duplicated, {self.chain_breaks} f/l breaks)")


def _connect(dsn: str) -> psycopg2.extensions.connection:
    """A read-only autocommit session; options of the DSN (e.g. search_path) are kept."""
    params = psycopg2.extensions.parse_dsn(dsn)
    ours = "-c default_transaction_read_only=on -c TimeZone=UTC"
    params["options"] = f"{params['options']} {ours}" if params.get("options") else ours
    try:
        conn: psycopg2.extensions.connection = psycopg2.connect(**params)
    except psycopg2.Error as exc:
        raise AuditError(f"cannot connect to DATABASE_URL: {str(exc).strip()}") from exc
    conn.autocommit = True
    return conn


def audit_range(dsn: str, symbol: str, stream: str, start_us: int, end_us: int) -> AuditVerdict:
    """Rule 1 (the stand-in for ``db.query audit``)."""
    conn = _connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(_SUMMARY, {"s": symbol, "t": stream, "a": _at(start_us), "b": _at(end_us)})
            row = cur.fetchone()
    except psycopg2.Error as exc:
        raise AuditError(f"audit of {symbol} {stream}: {str(exc).strip()}") from exc
    finally:
        conn.close()
    assert row is not None  # noqa: S101 - an aggregate query always returns one row
    rows, first, last, dups, missing, breaks, holes = row
    return AuditVerdict(symbol, stream, rows, first, last, dups, int(missing), breaks,
                        [(int(a), int(b)) for a, b in holes or []])


def wait_written(
    dsn: str, symbol: str, stream: str, span: tuple[int, int], want: int, timeout: float
) -> int:
    """Rule 2: rows with ids in ``span`` written, polled until ``want`` are there or ``timeout``."""
    deadline, (first_id, last_id) = time.monotonic() + timeout, span
    conn = _connect(dsn)
    try:
        with conn.cursor() as cur:
            while True:
                have = _written(cur, symbol, stream, first_id, last_id)
                if have >= want or time.monotonic() > deadline:
                    return have
                time.sleep(0.5)
    except psycopg2.Error as exc:
        raise AuditError(f"waiting for {symbol} {stream} rows: {str(exc).strip()}") from exc
    finally:
        conn.close()


def _written(cur: psycopg2.extensions.cursor, symbol: str, stream: str, first_id: int, last_id: int) -> int:
    try:
        cur.execute(_WRITTEN, (symbol, stream, first_id, last_id))
    except psycopg2.errors.UndefinedTable:
        return 0  # Rule 2: the worker has not created the tables yet
    row = cur.fetchone()
    return int(row[0]) if row else 0
