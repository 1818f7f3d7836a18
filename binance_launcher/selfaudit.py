"""The launcher's periodic self-audit: ``db.service.queries.audit`` of the recent window of every symbol.

Rules:
  1. Every SELF_AUDIT_INTERVAL_S (0: never) the window [now - SETTLE - SELF_AUDIT_WINDOW_S,
     now - SETTLE) of each symbol is audited (both trade streams and their consistency); SETTLE
     leaves the rows still in flight (producer linger, worker batches) out of the verdict.
  2. The audit runs in the status loop, between two redraws: it reads only the window, which
     is small, and a failure (database down) is a verdict like any other, never a crash.
  3. ``summary`` is pure: an audit in, one short line out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from db.service import queries
from db.service.errors import DatabaseError
from db.store import audit as au

SETTLE = timedelta(seconds=30)
STREAMS = ("trade", "aggTrade")


def summary(res: au.Audit) -> str:
    """Rule 3: 'complete (N rows)' or what is wrong, in a few words."""
    rows = sum(s.rows for s in res.streams)
    if rows == 0 and not res.holes:
        return "no data"
    if res.complete:
        return f"complete ({rows:,} rows)"
    missing = sum(s.missing for s in res.streams)
    unexplained = sum(h.missing for h in res.holes if h.explanation == au.UNEXPLAINED)
    holes = sum(s.holes for s in res.streams)
    parts = [f"{holes} holes, {missing:,} ids missing ({unexplained:,} unexplained)"]
    if res.duplicates:
        parts.append(f"{len(res.duplicates)} duplicates")
    if res.mismatches:
        parts.append(f"{len(res.mismatches)} trade/aggTrade disagreements")
    return "INCOMPLETE: " + ", ".join(parts)


@dataclass
class SelfAudit:
    """Owns the schedule and the last verdicts (Rules 1-2)."""

    dsn: str
    symbols: tuple[str, ...]
    interval_s: float
    window_s: float
    verdicts: dict[str, str] = field(default_factory=dict)
    checked: datetime | None = None
    _next: float = 0.0

    def poll(self, now: float) -> None:
        """Audit when due."""
        if self.interval_s <= 0 or now < self._next:
            return
        self._next = now + self.interval_s
        self.run(datetime.now(UTC))

    def run(self, now: datetime) -> None:
        end = now - SETTLE
        start = end - timedelta(seconds=self.window_s)
        try:
            conn = queries.connect(self.dsn, statement_timeout_ms=int(self.interval_s * 1000) or 60_000)
        except DatabaseError as exc:
            self.verdicts = dict.fromkeys(self.symbols, f"not checked: {exc}")
            return
        try:
            for symbol in self.symbols:
                self.verdicts[symbol] = self._one(conn, symbol, start, end)
        finally:
            conn.close()
        self.checked = now

    @staticmethod
    def _one(conn: queries.Connection, symbol: str, start: datetime, end: datetime) -> str:
        try:
            return summary(queries.audit(conn, symbol, start, end, STREAMS, limit=1000))
        except DatabaseError as exc:
            return f"not checked: {exc}"

    def lines(self) -> list[str]:
        """The status view's lines (empty when off)."""
        if self.interval_s <= 0:
            return []
        window = f"last {self.window_s / 60:g} min"
        if self.checked is None:
            return [f"self-audit ({window}, every {self.interval_s:g} s): first check pending"]
        at = self.checked.strftime("%H:%M:%SZ")
        head = f"self-audit ({window} up to {SETTLE.seconds} s ago, checked {at}):"
        return [head] + [f"  {s:<12} {v}" for s, v in self.verdicts.items()]
