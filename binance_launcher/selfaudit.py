"""The launcher's periodic self-audit: ``db.service.queries.audit`` of the recent window of every symbol.

Rules:
  1. Every SELF_AUDIT_INTERVAL_S (0: never) the window [now - SETTLE - SELF_AUDIT_WINDOW_S,
     now - SETTLE) of each symbol is audited (both trade streams and their consistency); SETTLE
     leaves the rows still in flight (producer linger, worker batches) out of the verdict.
  2. The audit runs in the status loop, between two redraws: it reads only the window, which
     is small, and a failure (database down) is a verdict like any other, never a crash.
  3. ``summary`` is pure: an audit in, one short line out.
  4. The symbols audited are the ones captured now (``follow``: SYMBOLS resolved by ingestion,
     listings included). A round starts every interval and audits every symbol once, in batches
     of ``ceil(n / (interval / 2))`` per poll (one poll a second), so a whole market is covered
     within half the interval without holding the status view for long; a symbol listed during
     a round is audited in the next one.
  5. Up to DETAIL_MAX symbols, one line each; beyond, a count per verdict and the symbols that
     are not complete (at most DETAIL_MAX of them).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from db.service import queries
from db.service.errors import DatabaseError
from db.store import audit as au

SETTLE = timedelta(seconds=30)
STREAMS = ("trade", "aggTrade")
DETAIL_MAX = 10


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
    """Owns the schedule, the round in progress and the last verdicts (Rules 1-2, 4)."""

    dsn: str
    symbols: tuple[str, ...]
    interval_s: float
    window_s: float
    verdicts: dict[str, str] = field(default_factory=dict)
    checked: datetime | None = None
    _next: float = 0.0
    _todo: list[str] = field(default_factory=list)
    _batch: int = 1

    def follow(self, symbols: tuple[str, ...] | list[str]) -> None:
        """Rule 4: audit these from now on; verdicts of symbols no longer captured are dropped."""
        self.symbols = tuple(symbols)
        kept = set(self.symbols)
        self.verdicts = {s: v for s, v in self.verdicts.items() if s in kept}

    def poll(self, now: float) -> None:
        """Start a round when due; audit the round's next batch (Rule 4)."""
        if self.interval_s <= 0 or not self.symbols:
            return
        if not self._todo:
            if now < self._next:
                return
            self._next = now + self.interval_s
            self._todo = list(self.symbols)
            self._batch = max(1, math.ceil(len(self._todo) / max(1.0, self.interval_s / 2)))
        batch, self._todo = self._todo[: self._batch], self._todo[self._batch :]
        self.run(datetime.now(UTC), batch)

    def run(self, now: datetime, symbols: list[str] | None = None) -> None:
        """Audit ``symbols`` (default: all) over the window ending SETTLE before ``now``."""
        names = list(self.symbols) if symbols is None else symbols
        end = now - SETTLE
        start = end - timedelta(seconds=self.window_s)
        try:
            conn = queries.connect(self.dsn, statement_timeout_ms=int(self.interval_s * 1000) or 60_000)
        except DatabaseError as exc:
            self.verdicts.update(dict.fromkeys(names, f"not checked: {exc}"))
            return
        try:
            for symbol in names:
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
        """The status view's lines (empty when off), Rule 5."""
        if self.interval_s <= 0:
            return []
        window = f"last {self.window_s / 60:g} min"
        if self.checked is None:
            return [f"self-audit ({window}, every {self.interval_s:g} s): first check pending"]
        at = self.checked.strftime("%H:%M:%SZ")
        if len(self.symbols) <= DETAIL_MAX:
            head = f"self-audit ({window} up to {SETTLE.seconds} s ago, checked {at}):"
            return [head] + [f"  {s:<12} {v}" for s, v in self.verdicts.items()]
        return self._market_lines(window, at)

    def _market_lines(self, window: str, at: str) -> list[str]:
        kinds = Counter(v.split(" (")[0].split(":")[0] for v in self.verdicts.values())
        counts = ", ".join(f"{n:,} {kind}" for kind, n in sorted(kinds.items(), key=lambda p: -p[1]))
        head = (f"self-audit ({window} up to {SETTLE.seconds} s ago, every {self.interval_s:g} s, "
                f"last checked {at}): {len(self.verdicts):,} of {len(self.symbols):,} captured symbols "
                f"checked: {counts or 'none yet'}")  # fmt: skip
        bad = [(s, v) for s, v in self.verdicts.items() if not v.startswith(("complete", "no data"))]
        more = [f"  ... and {len(bad) - DETAIL_MAX} more"] if len(bad) > DETAIL_MAX else []
        return [head] + [f"  {s:<12} {v}" for s, v in bad[:DETAIL_MAX]] + more
