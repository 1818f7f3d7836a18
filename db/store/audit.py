"""The audit's pure core: from what the SQL scans found to holes, explanations and a verdict.

The scans (db.store.audit_scan AUDIT_*) report only the anomalies of a range, never its rows: for each
stream the ids where the next id is not id + 1, and for the trade/aggTrade pair the trade times
whose totals disagree. This module turns them into the answer (no I/O).

Rules:
  1. A hole is a run of ids ``first..last`` missing between two stored rows; its time span is
     the times of those two rows (the missing events happened between them, since ids grow
     with time). A duplicate is an id stored twice.
  2. A hole is split where gap records start or end: each piece is explained by the gap record
     covering it (``open``, ``repaired``, ``unrepairable``; when several cover it, the first of
     that order, so a repair in progress is shown as such) or is ``unexplained``.
  3. A range is complete when no stream has a hole or a duplicate and, where both trade and
     aggTrade are audited, no aggTrade disagrees with its trades.
  4. ``repair_targets``: every hole, whatever explains it. An ``unrepairable`` gap may have
     failed on a REST error that has passed; a ``repaired`` one says the rows came while the
     table says they are not there (lost in a broker or database incident); an ``open`` one may
     belong to an instance that died mid-backfill. Fetching ids again is harmless: rows are
     idempotent, and the audit's gap record has a key of its own (db.repair).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

EXPLANATIONS = ("open", "unrepairable", "repaired")  # Rule 2's order of precedence
UNEXPLAINED = "unexplained"


@dataclass(frozen=True)
class GapSpan:
    """An id gap record that may explain part of a hole."""

    gap_id: str
    first_id: int
    last_id: int
    status: str
    reason: str


@dataclass(frozen=True)
class Hole:
    stream: str
    first_id: int
    last_id: int
    missing: int
    after_time: datetime  # time of the stored row just before the hole
    before_time: datetime  # time of the stored row just after it
    explanation: str  # open | repaired | unrepairable | unexplained
    gap_id: str | None
    reason: str | None


@dataclass(frozen=True)
class Duplicate:
    stream: str
    id: int
    time: datetime


@dataclass(frozen=True)
class StreamAudit:
    """One stream's continuity over the range: ids first_id..last_id, rows stored among them."""

    stream: str
    rows: int
    first_id: int | None
    last_id: int | None
    holes: int
    missing: int
    duplicates: int
    truncated: bool


@dataclass(frozen=True)
class AggMismatch:
    """An aggTrade that disagrees with its trades, or trades no aggTrade covers (agg_id None)."""

    time: datetime
    agg_id: int | None
    first_id: int | None
    last_id: int | None
    agg_qty: Decimal | None
    trades_qty: Decimal
    trades_found: int
    trades_expected: int | None
    problem: str  # quantity | trades_missing | not_covered | overlap | no_trade_ids


@dataclass(frozen=True)
class Audit:
    symbol: str
    start: datetime
    end: datetime
    complete: bool
    streams: list[StreamAudit]
    holes: list[Hole]
    duplicates: list[Duplicate]
    consistency_checked: bool
    mismatches: list[AggMismatch]


@dataclass(frozen=True)
class Anomaly:
    """One row of the continuity scan: a stored id whose successor is not id + 1."""

    id: int
    time: datetime
    next_id: int
    next_time: datetime


def explain(stream: str, anomaly: Anomaly, gaps: list[GapSpan]) -> list[Hole]:
    """The hole after ``anomaly`` split into pieces by the gap records covering it (Rule 2)."""
    first, last = anomaly.id + 1, anomaly.next_id - 1
    cuts = {first, last + 1}
    for g in gaps:
        cuts.update(c for c in (g.first_id, g.last_id + 1) if first < c <= last)
    edges = sorted(cuts)
    pieces: list[Hole] = []
    for lo, hi in itertools.pairwise(edges):
        gap = _cover(gaps, lo, hi - 1)
        why = gap.status if gap else UNEXPLAINED
        prev = pieces[-1] if pieces else None
        if prev and prev.explanation == why and prev.gap_id == (gap.gap_id if gap else None):
            pieces[-1] = _hole(stream, anomaly, prev.first_id, hi - 1, why, gap)
        else:
            pieces.append(_hole(stream, anomaly, lo, hi - 1, why, gap))
    return pieces


def _cover(gaps: list[GapSpan], lo: int, hi: int) -> GapSpan | None:
    covering = [g for g in gaps if g.first_id <= lo and hi <= g.last_id]
    for status in EXPLANATIONS:
        for g in covering:
            if g.status == status:
                return g
    return None


def _hole(stream: str, a: Anomaly, lo: int, hi: int, why: str, gap: GapSpan | None) -> Hole:
    return Hole(stream, lo, hi, hi - lo + 1, a.time, a.next_time, why,
                gap.gap_id if gap else None, gap.reason if gap else None)


def holes_of(stream: str, anomalies: list[Anomaly], gaps: list[GapSpan]) -> list[Hole]:
    """Every hole of one stream's anomalies, explained (Rules 1-2)."""
    out: list[Hole] = []
    for a in anomalies:
        if a.next_id > a.id + 1:
            out.extend(explain(stream, a, [g for g in gaps if g.last_id > a.id and g.first_id < a.next_id]))
    return out


def duplicates_of(stream: str, anomalies: list[Anomaly]) -> list[Duplicate]:
    return [Duplicate(stream, a.id, a.time) for a in anomalies if a.next_id == a.id]


def is_complete(streams: list[StreamAudit], mismatches: list[AggMismatch]) -> bool:
    """Rule 3."""
    return not mismatches and all(s.holes == 0 and s.duplicates == 0 for s in streams)


def repair_targets(holes: list[Hole]) -> list[Hole]:
    """Rule 4: the holes a repair fetches, the pieces of one hole merged."""
    out: list[Hole] = []
    for h in holes:
        prev = out[-1] if out else None
        if prev and prev.stream == h.stream and prev.last_id + 1 == h.first_id:
            out[-1] = Hole(h.stream, prev.first_id, h.last_id, h.last_id - prev.first_id + 1,
                           prev.after_time, h.before_time, UNEXPLAINED, None, None)
        else:
            out.append(h)
    return out


# (time, agg id, first_id, last_id, qty, its trades' qty, its trades found)
AggRow = tuple[datetime, int, int | None, int | None, Decimal, Decimal, int]
# (time, least id, greatest id, qty, count) of the trades no aggTrade of their time covers
UncoveredRow = tuple[datetime, int, int, Decimal, int]


def mismatches_of(aggs: list[AggRow], uncovered: list[UncoveredRow]) -> list[AggMismatch]:
    """The aggTrades (at the disagreeing times) that do not match their trades, and the trades
    no aggTrade covers; an aggTrade whose ids overlap the previous one's is an ``overlap``, one
    that names no trade ids (first_id/last_id null) is ``no_trade_ids``."""
    out: list[AggMismatch] = []
    prev_last: int | None = None
    for time, agg_id, first, last, qty, trades_qty, found in sorted(aggs, key=lambda a: (a[2] or 0, a[1])):
        if first is None or last is None:
            out.append(AggMismatch(time, agg_id, first, last, qty, trades_qty, found, None, "no_trade_ids"))
            continue
        expected = last - first + 1
        problem = ("overlap" if prev_last is not None and first <= prev_last else
                   "trades_missing" if found != expected else
                   "quantity" if trades_qty != qty else None)
        prev_last = last if prev_last is None else max(prev_last, last)
        if problem:
            out.append(AggMismatch(time, agg_id, first, last, qty, trades_qty, found, expected, problem))
    for time, lo, hi, qty, n in uncovered:
        out.append(AggMismatch(time, None, lo, hi, None, qty, n, None, "not_covered"))
    return sorted(out, key=lambda m: (m.time, m.first_id or 0))
