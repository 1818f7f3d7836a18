"""Unfinished business: what a starting instance does with what the last one left open (pure).

Input: the frontier entries read back from Kafka, the (type, symbol) keys this instance
captures, and the clock. Output: a ``Pickup`` the shell carries out before any connection opens.

Rules:
  0. An instance owns the entries of the (type, symbol) keys it captures, and only those: it
     seeds its frontier with them, finishes their gaps and writes them. Other keys' entries may
     belong to another live instance sharing the topic; their open gaps are only reported.
  1. Every open id gap of an owned key is backfilled again, whoever opened it; its record is
     published again as open first, so it is tracked by this instance's frontier.
  2. Every open time gap (bookTicker) of an owned key is closed now, ``unrepairable``, with an end time: no
     window stays open across instances. A captured bookTicker stream then gets a ``restart``
     window from that moment (or from the frontier's last time when nothing was open), which
     the first bookTicker on the new connection closes.
  3. Every captured trade/aggTrade key with a known ``last_id`` is armed for ``first_contact``.
  4. At a clean stop, ``close_at_stop`` closes every open time gap the same way, so a feed that
     merely went quiet leaves no open row behind; id gaps stay open for the next instance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from binance_pipeline.common.events import GapMessage
from ingestion.frontier import FrontierEntry, Key
from ingestion.records import resolve


@dataclass
class Pickup:
    id_gaps: list[GapMessage] = field(default_factory=list)  # publish as open, then backfill
    closed: list[GapMessage] = field(default_factory=list)  # resolved time gaps to publish
    windows: list[tuple[Key, int]] = field(default_factory=list)  # restart windows: (key, since us)
    resume: dict[Key, FrontierEntry] = field(default_factory=dict)  # armed for first_contact
    owned: list[FrontierEntry] = field(default_factory=list)  # seeds this instance's frontier
    foreign_open: list[GapMessage] = field(default_factory=list)  # other keys' open gaps (Rule 0)


def close_time_gap(record: GapMessage, now: int, why: str) -> GapMessage:
    """The record closing an open time gap at ``now``: unrepairable, with an end time."""
    closed = resolve(record, "unrepairable", now, None, why)
    closed["end_time"] = max(now, record["start_time"] or now)
    return closed


def plan_pickup(entries: Iterable[FrontierEntry], captured: Iterable[Key], now: int) -> Pickup:
    """What to do at start (Rules 0-3)."""
    keys = set(captured)
    out = Pickup()
    for entry in entries:
        if entry.key not in keys:
            out.foreign_open.extend(entry.open_gaps.values())
            continue
        out.owned.append(entry)
        had_window = False
        for gap in entry.open_gaps.values():
            if gap["kind"] == "ids":
                out.id_gaps.append(gap)
            else:
                out.closed.append(close_time_gap(gap, now, "closed by the next instance at start"))
                had_window = True
        if entry.kind == "bookTicker":
            since = now if had_window else entry.last_time
            if since is not None:
                out.windows.append((entry.key, since))
        elif entry.last_id is not None:
            out.resume[entry.key] = entry
    out.id_gaps.sort(key=lambda g: (g["symbol"], g["stream"], g["first_id"] or 0))
    return out


def close_at_stop(open_gaps: Iterable[GapMessage], now: int) -> list[GapMessage]:
    """Resolved records for the open time gaps at a clean stop (Rule 4)."""
    why = "closed at shutdown: no bookTicker kept since start_time (a quiet feed, or a loss)"
    return [close_time_gap(g, now, why) for g in open_gaps if g["kind"] == "time"]
