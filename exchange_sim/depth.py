"""Diff-depth streams and their ground truth (pure, clock passed in).

Owns when a ``depthUpdate`` is due on each speed (``<symbol>@depth@100ms`` and ``<symbol>@depth``,
every 1000 ms), what it holds, and the record a test reads back: what was sent, what a fault
withheld, and the book as of any update id or time. The book itself lives in exchange_sim.book.

Rule 1: one update-id sequence per symbol, shared with bookTicker's ``u``: an event covers the
        ids after the previous event of its speed up to the book's current id, so on each speed
        ``U == previous u + 1`` always holds and ``u`` is the book's id as the event is made.
Rule 2: an event lists every level whose quantity changed since the previous event of its speed
        (book Rule 5: even one that changed back), with its quantity now ("0.00000000" for a
        removed level); when nothing changed no event is made and the next one covers the ids
        passed meanwhile.
Rule 3: the ground truth is the book the record started from (the generator's first book, or a
        recording's inline snapshot) and every 100 ms event made since, whether it was sent or
        not; the book as of id N is that start plus the events with ``u <= N``.
Rule 3a: 100 ms events made before the start (a recording lists the snapshot after the events
        received while it was fetched) are kept, the last ``EARLY_CAP`` of them; those with
        ``u`` past the start's id join the record when the start is set, as the local-book
        procedure's buffer would.
Rule 4: the record keeps the latest ``cap`` 100 ms events of a symbol (``--depth-record``): an
        older one is folded into the start as it leaves, so memory stays bounded on long runs
        and ``book_at`` answers any moment from the start (now later) on, exactly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from exchange_sim.book import Levels, OrderBook, wire
from exchange_sim.events import Event

DEPTH_100MS: Final = "depth@100ms"
DEPTH_1S: Final = "depth"
DEPTH_KINDS: Final = (DEPTH_100MS, DEPTH_1S)
PERIOD_US: Final = {DEPTH_100MS: 100_000, DEPTH_1S: 1_000_000}
EARLY_CAP = 1000  # 100 ms events kept while no start is known (Rule 3a)
DEPTH_RECORD_CAP = 6000  # default of ``cap`` (Rule 4): 10 minutes of a symbol changing every 100 ms


def depth_event(symbol: str, kind: str, event_us: int, first: int, last: int, bids: Any, asks: Any) -> Event:
    """A ``depthUpdate`` event with the fields and order Binance sends (``E`` in ms, µs on request)."""
    body = {"e": "depthUpdate", "E": event_us // 1000, "s": symbol, "U": first, "u": last}
    body.update(b=bids, a=asks)
    return Event(kind, symbol, last, body, {"E": event_us})


class DepthStream:
    """One speed of one symbol's diff-depth stream (Rules 1 and 2)."""

    def __init__(self, kind: str, book: OrderBook) -> None:
        self.kind = kind
        self.period = PERIOD_US[kind]
        self.last_id = book.update_id  # the book's id at the previous event of this speed
        self.touched = book.watch()
        self.next_due = 0

    def due(self, book: OrderBook, symbol: str, now_us: int, force: bool = False) -> Event | None:
        """The event due at ``now_us`` (a period boundary passed, or ``force``), or None."""
        if not force and now_us < self.next_due:
            return None
        self.next_due = (now_us // self.period + 1) * self.period
        if book.update_id == self.last_id or not (self.touched.bids or self.touched.asks):
            return None  # Rule 2: the next event covers these ids
        bids, asks = book.changes(self.touched)
        self.touched.clear()
        first, self.last_id = self.last_id + 1, book.update_id
        return depth_event(symbol, self.kind, now_us, first, book.update_id, wire(bids), wire(asks))


@dataclass
class DepthStats:
    """What one speed of one symbol's depth stream made, sent and withheld."""

    generated: int = 0
    sent: int = 0
    dropped: int = 0
    first_U: int | None = None  # Binance's field name
    last_u: int | None = None
    dropped_ranges: list[list[int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON shape served in ``/control/stats`` under ``depth``."""
        return {
            "generated": self.generated, "sent": self.sent, "dropped": self.dropped,
            "first_U": self.first_U, "last_u": self.last_u, "dropped_ranges": self.dropped_ranges,
        }  # fmt: skip


@dataclass
class DepthTruth:
    """A symbol's depth ground truth (Rule 3) and accounting per speed."""

    start: OrderBook | None = None
    diffs: deque[tuple[int, int, int, Any, Any]] = field(default_factory=deque)  # (E ms, U, u, b, a)
    stats: dict[str, DepthStats] = field(default_factory=lambda: {k: DepthStats() for k in DEPTH_KINDS})
    cap: int = DEPTH_RECORD_CAP
    early: deque[tuple[int, int, int, Any, Any]] = field(default_factory=lambda: deque(maxlen=EARLY_CAP))

    def begin(self, book: OrderBook) -> None:
        """Set the book the record starts from, once (later calls keep the first); Rule 3a."""
        if self.start is None:
            self.start = book.copy()
            self.diffs = deque(d for d in self.early if d[2] > book.update_id)
            self.early.clear()

    def record(self, event: Event) -> None:
        """Account for a made event; keep 100 ms events that follow the start (Rules 3, 4)."""
        body, stats = event.body, self.stats[event.kind]
        stats.generated += 1
        if stats.first_U is None:
            stats.first_U = body["U"]
        stats.last_u = body["u"]
        row = (body["E"], body["U"], body["u"], body["b"], body["a"])
        if event.kind != DEPTH_100MS:
            return
        if self.start is None:
            self.early.append(row)  # Rule 3a
            return
        if body["u"] <= self.start.update_id:
            return
        self.diffs.append(row)
        if len(self.diffs) > self.cap:  # Rule 4: fold the oldest into the start
            _, _, last, bids, asks = self.diffs.popleft()
            self.start.apply(bids, asks, last)

    def mark_sent(self, event: Event) -> None:
        """The event reached at least one connection."""
        self.stats[event.kind].sent += 1

    def mark_dropped(self, event: Event) -> None:
        """A fault withheld the event from every connection: its ids are a known hole."""
        stats = self.stats[event.kind]
        stats.dropped += 1
        first, last = event.body["U"], event.body["u"]
        if stats.dropped_ranges and stats.dropped_ranges[-1][1] + 1 == first:
            stats.dropped_ranges[-1][1] = last
        else:
            stats.dropped_ranges.append([first, last])

    def book_at(self, update_id: int | None = None, time_ms: int | None = None) -> OrderBook | None:
        """The book as of the last 100 ms event with ``u <= update_id`` (or ``E <= time_ms``).

        None when the moment is before the start (a recording's snapshot came later).
        """
        if self.start is None or (update_id is not None and update_id < self.start.update_id):
            return None
        book = self.start.copy()
        for event_ms, _first, last, bids, asks in self.diffs:
            if (update_id is not None and last > update_id) or (time_ms is not None and event_ms > time_ms):
                break
            book.apply(bids, asks, last)
        return book

    def as_dict(self) -> dict[str, Any]:
        """Per speed accounting, JSON-ready."""
        return {kind: st.as_dict() for kind, st in self.stats.items()}


def book_json(book: OrderBook, limit: int | None = None) -> dict[str, Any]:
    """A book as ``/api/v3/depth`` answers: ``lastUpdateId``, ``bids``, ``asks`` (strings)."""
    return {
        "lastUpdateId": book.update_id,
        "bids": wire(book.levels("bid", limit)),
        "asks": wire(book.levels("ask", limit)),
    }


__all__ = ["DEPTH_KINDS", "DepthStream", "DepthTruth", "Levels", "book_json", "depth_event"]
