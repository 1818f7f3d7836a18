"""Bounded in-memory trade history and the REST queries over it (pure).

Owns the rows REST serves. Never formats HTTP answers and never touches the clock.

Rule 1: rows are kept in strictly increasing id order; a row whose id does not exceed the
        last one kept is refused (``append`` returns False), so bisection stays valid.
Rule 2: at most ``cap`` rows are kept; the oldest go first, trimmed in chunks so appends stay
        amortized O(1).
Rule 3: every query returns rows in ascending id order, at most ``limit`` of them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any

Row = tuple[Any, ...]
# trade row:    (id, price, qty, quoteQty or None, time_us, isBuyerMaker, isBestMatch)
# aggTrade row: (a, price, qty, first_id, last_id, time_us, isBuyerMaker, isBestMatch)


class IdSeries:
    """Id-ordered rows of one symbol and one kind, with their trade times in microseconds."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.ids: list[int] = []
        self.times: list[int] = []
        self.rows: list[Row] = []

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, ident: int, time_us: int, row: Row) -> bool:
        """Keep a row; False (and nothing kept) when ``ident`` is not above the last id."""
        if self.ids and ident <= self.ids[-1]:
            return False
        self.ids.append(ident)
        self.times.append(time_us)
        self.rows.append(row)
        if len(self.ids) > self.cap + max(1, self.cap // 16):
            self._trim()
        return True

    def _trim(self) -> None:
        excess = len(self.ids) - self.cap
        del self.ids[:excess]
        del self.times[:excess]
        del self.rows[:excess]

    def recent(self, limit: int) -> list[Row]:
        """The newest ``limit`` rows."""
        return self.rows[-limit:] if limit > 0 else []

    def from_id(self, from_id: int, limit: int) -> list[Row]:
        """Rows with id >= ``from_id``."""
        start = bisect_left(self.ids, from_id)
        return self.rows[start : start + limit]

    def time_range(self, start_us: int | None, end_us: int | None, limit: int) -> list[Row]:
        """Rows with ``start_us <= time <= end_us`` (either bound optional), oldest first.

        With only an end bound, the newest ``limit`` rows at or before it are returned.
        """
        lo = 0 if start_us is None else bisect_left(self.times, start_us)
        hi = len(self.times) if end_us is None else bisect_right(self.times, end_us)
        if hi <= lo:
            return []
        if start_us is None:
            return self.rows[max(lo, hi - limit) : hi]
        return self.rows[lo : min(hi, lo + limit)]
