"""The audit's shortcut, pure: which minutes the per-minute coverage (migration 006) proves, and
the id walk over proven minutes and raw rows. No I/O; db.store.audit_cover_scan runs the SQL.

The audit's answer is defined by the raw rows (db.store.audit). The coverage is a per-minute
summary of the same rows kept by the worker in their transaction; it only decides where the raw
rows need not be read.

Rules:
  1. Only whole minutes inside the range are looked up in the coverage (``whole_minutes``); the
     partial minutes at the edges, and the rows around the range, are always read raw.
  2. A minute of one stream is *whole* when its ``n`` rows have ``n`` distinct ids
     ``id_min..id_max``: n = id_max - id_min + 1 and the sum of its ids and the sum of the
     squares of their low 20 bits are those of id_min..id_max. It stands for a run of ids; any
     other minute is read raw.
     (Count and bounds alone would take a duplicate for a missing id; the two sums rule out
     every mix of up to two duplicated and two missing ids between two multiples of 2^20, and a
     mix of three or more would have to solve a Prouhet-Tarry-Escott equation exactly.)
  3. ``walk`` orders runs and raw rows by id and reports each place where the next id is not
     id + 1, as the raw scan does. When a run overlaps anything else (an id of a whole minute
     stored again elsewhere) it gives up (None) and the caller reads every row raw.
  4. A trade minute and the aggTrade minute over it *agree* when the trades' count, quantity,
     least and greatest id, id sum and two time-weighted sums equal the same sums over the trade
     ids the aggTrades name. Times whose trades and aggTrades disagree make their minute's sums
     differ unless the differences cancel in all seven at once, across two or more times of the
     minute with hashed time weights. A minute that does not agree is checked time by time, raw.
  5. ``intervals`` merges adjacent minutes into time intervals, so raw reads are few.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from binance_pipeline.common.utc import EPOCH

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Coverage:
    """One row of trades_cov_1m (migration 006 names the columns)."""

    bucket: datetime
    n: int
    volume: Decimal
    id_min: int
    id_max: int
    id_sum: Decimal
    id_sq: Decimal
    tid_n: Decimal
    tid_min: int | None
    tid_max: int | None
    tid_sum: Decimal
    tid_tw: Decimal
    qty_tw: Decimal


@dataclass(frozen=True)
class Piece:
    """Ids lo..hi, each stored once: a raw row (lo = hi, its time) or a whole minute (its bucket)."""

    lo: int
    hi: int
    time: datetime | None  # a raw row's time
    bucket: datetime | None  # a whole minute's bucket


def floor_minute(t: datetime) -> datetime:
    return t - (t - EPOCH) % MINUTE


def whole_minutes(start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """Rule 1: the whole minutes [m0, m1) inside [start, end), or None when there is none."""
    m0 = floor_minute(start)
    m0 = m0 if m0 == start else m0 + MINUTE
    m1 = floor_minute(end)
    return (m0, m1) if m0 < m1 else None


def _sum(lo: int, hi: int) -> int:
    return (lo + hi) * (hi - lo + 1) // 2


LOW_BITS = 1 << 20  # id_sq sums the squares of id mod 2^20 (migration 006), so it stays an integer sum


def _squares(n: int) -> int:
    """0² + 1² + ... + n² (0 for n < 0)."""
    return n * (n + 1) * (2 * n + 1) // 6 if n > 0 else 0


def _low_squares(n: int) -> int:
    """The sum of (i mod 2^20)² over i = 0..n, for n >= -1."""
    cycles, rest = divmod(n + 1, LOW_BITS)
    return cycles * _squares(LOW_BITS - 1) + _squares(rest - 1)


def _sum_sq(lo: int, hi: int) -> int:
    """The sum of (i mod 2^20)² over i = lo..hi (periodic in i, so shifted to non-negative ids)."""
    shift = -(lo // LOW_BITS) * LOW_BITS if lo < 0 else 0
    return _low_squares(hi + shift) - _low_squares(lo + shift - 1)


def is_whole(c: Coverage) -> bool:
    """Rule 2."""
    return (c.n == c.id_max - c.id_min + 1 and c.id_sum == _sum(c.id_min, c.id_max)
            and c.id_sq == _sum_sq(c.id_min, c.id_max))


def agree(trades: Coverage, aggs: Coverage) -> bool:
    """Rule 4: the trade minute's sums equal those of the trade ids its aggTrades name."""
    return (trades.n == aggs.tid_n and trades.volume == aggs.volume and trades.id_min == aggs.tid_min
            and trades.id_max == aggs.tid_max and trades.tid_sum == aggs.tid_sum
            and trades.tid_tw == aggs.tid_tw and trades.qty_tw == aggs.qty_tw)


def run_of(c: Coverage, lo_id: int, hi_id: int) -> Piece | None:
    """A whole minute's ids clipped to lo_id..hi_id (the scan's id bounds); None when none is left."""
    lo, hi = max(c.id_min, lo_id), min(c.id_max, hi_id)
    return Piece(lo, hi, None, c.bucket) if lo <= hi else None


def walk(pieces: list[Piece]) -> list[tuple[Piece, Piece]] | None:
    """Rule 3: consecutive pieces (in id order) whose ids do not follow on; None on an overlap
    with a run."""
    ordered = sorted(pieces, key=lambda p: (p.lo, p.time or p.bucket or EPOCH))
    out: list[tuple[Piece, Piece]] = []
    for a, b in itertools.pairwise(ordered):
        if b.lo <= a.hi and (a.bucket is not None or b.bucket is not None):
            return None
        if b.lo != a.hi + 1:
            out.append((a, b))
    return out


def intervals(minutes: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Rule 5: the minutes as [lo, hi) time intervals, adjacent ones merged."""
    out: list[tuple[datetime, datetime]] = []
    for m in sorted(minutes):
        if out and out[-1][1] == m:
            out[-1] = (out[-1][0], m + MINUTE)
        else:
            out.append((m, m + MINUTE))
    return out
