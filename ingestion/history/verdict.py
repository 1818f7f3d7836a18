"""The audit verdict printed at the end of an import: the database audit over the imported range.

The verdict is ``db.query audit``'s own code (db.store.audit_scan and the rules of db.store.audit),
run on a read-only session; this module only waits for the rows, calls it and words its answer
as one line per symbol and stream.

Rules:
  1. Per symbol, over the streams imported and the trade times ``[start_us, end_us)``: each id
     present once, without a hole (a hole at the range's edges counts, as in ``db.query audit``)
     and, when both trade and aggTrade are imported, every trade covered by its aggTrade with
     the same quantity. A stream is clean when it has rows, no hole, no duplicate and (for
     aggTrade) no disagreement with its trades.
  2. ``audit_import`` first waits (bounded, per stream) until the worker has written each
     stream's ``first..last`` rows: the import only publishes, the worker writes, and the audit
     must judge the written tape. A missing ``trades`` table means the worker has not migrated
     yet: waited for like missing rows.
  3. Database errors leave as ``AuditError`` (wrapped ``from`` the psycopg2 error).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg2
import psycopg2.errors

from binance_pipeline.common.utc import at_us
from db.store import audit as au
from db.store import audit_scan as scan
from ingestion.history.errors import AuditError
from ingestion.history.run import Series

HOLES_SHOWN = 5
POLL_S = 0.5


@dataclass(frozen=True)
class StreamVerdict:
    """Rule 1 over one symbol and stream, from the database audit's answer."""

    symbol: str
    stream: str
    rows: int
    first_id: int | None
    last_id: int | None
    duplicates: int
    missing: int
    mismatches: int = 0  # aggTrades disagreeing with their trades (aggTrade line, both imported)
    holes: list[tuple[int, int]] = field(default_factory=list)  # the first HOLES_SHOWN

    @property
    def clean(self) -> bool:
        return self.rows > 0 and self.duplicates == 0 and self.missing == 0 and self.mismatches == 0

    def line(self) -> str:
        head = f"{self.symbol} {self.stream}: {self.rows:,} rows, ids {self.first_id}..{self.last_id}"
        if self.clean:
            return f"{head}: CLEAN (every id once, no hole)"
        holes = ", ".join(f"{a}-{b}" for a, b in self.holes)
        agree = f", {self.mismatches} disagreeing with their trades" if self.mismatches else ""
        return (f"{head}: NOT CLEAN ({self.missing} missing{f' in {holes}' if holes else ''}, "
                f"{self.duplicates} duplicated{agree})")


def verdicts(answer: au.Audit) -> list[StreamVerdict]:
    """One verdict per audited stream of the database audit's ``answer`` (Rule 1; pure)."""
    out = []
    for s in answer.streams:
        holes = au.repair_targets([h for h in answer.holes if h.stream == s.stream])
        mismatches = len(answer.mismatches) if s.stream == "aggTrade" else 0
        shown = [(h.first_id, h.last_id) for h in holes[:HOLES_SHOWN]]
        out.append(StreamVerdict(answer.symbol, s.stream, s.rows, s.first_id, s.last_id, s.duplicates,
                                 s.missing, mismatches, shown))
    return out


@contextmanager
def _session(dsn: str, timeout_ms: int) -> Iterator[scan.Connection]:
    """A read-only autocommit session (db.store.audit_scan Rule 1); Rule 3 for every error in it."""
    try:
        conn: scan.Connection = psycopg2.connect(**scan.session_params(dsn, timeout_ms))
    except psycopg2.Error as exc:
        raise AuditError(f"cannot connect to DATABASE_URL: {str(exc).strip()}") from exc
    conn.autocommit = True
    try:
        yield conn
    except psycopg2.Error as exc:
        raise AuditError(f"database error: {str(exc).strip()}") from exc
    finally:
        conn.close()


def wait_written(conn: scan.Connection, s: Series, timeout: float) -> int:
    """Rule 2: rows of ``s``'s id span written, polled until all ``s.rows`` are there or ``timeout``."""
    assert s.first_id is not None and s.last_id is not None  # noqa: S101 - only series with rows
    deadline = time.monotonic() + timeout
    while True:
        try:
            have = scan.written(conn, s.symbol, s.stream, s.first_id, s.last_id)
        except psycopg2.errors.UndefinedTable:
            have = 0  # Rule 2: the worker has not created the tables yet
        if have >= s.rows or time.monotonic() > deadline:
            return have
        time.sleep(POLL_S)


def audit_import(
    dsn: str, timeout_ms: int, series: Sequence[Series], span_us: tuple[int, int], wait_s: float
) -> list[StreamVerdict]:
    """Rules 1-3 over the series that got rows, in their order, grouped per symbol."""
    done = [s for s in series if s.first_id is not None and s.last_id is not None]
    start, end = at_us(span_us[0]), at_us(span_us[1])
    out: list[StreamVerdict] = []
    with _session(dsn, timeout_ms) as conn:
        for s in done:
            wait_written(conn, s, wait_s)
        for symbol in dict.fromkeys(s.symbol for s in done):
            streams = [s.stream for s in done if s.symbol == symbol]
            out += verdicts(scan.audit(conn, symbol, start, end, streams, timeout_ms=timeout_ms))
    return out
