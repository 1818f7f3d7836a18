"""One symbol's diff-depth stream in sequence, anchored by REST snapshots (pure, no I/O, no clock).

Binance numbers every change of a symbol's order book with one update-id sequence; a
``depthUpdate`` carries the first (``U``) and final (``u``) id of the changes it holds, and a
complete stream satisfies ``U == previous u + 1``. A REST snapshot (``/api/v3/depth``) is the book
as of its ``lastUpdateId``. A book can be rebuilt at any moment of a *segment* (a run of updates
with no break) from a snapshot of that segment and the updates after it (binance-streams.md,
"Keeping a local book"). Capture keeps every update it receives and at least one snapshot per
segment; this module decides what the ids say.

Rules:
  1. The first update of a symbol starts a segment; the segment wants a snapshot (``wants``).
  2. An update whose ``u`` is at or below the last accepted ``u`` is a duplicate (a rollover's
     overlap, a resend) and is dropped. One with ``U <= last + 1 <= u`` continues the segment
     (Binance applies it to its book the same way).
  3. An update with ``U > last + 1`` is a break: ids ``last + 1 .. U - 1`` are lost, and no REST
     call can bring them back (a ``Break``, recorded as an unrepairable gap). It starts a new
     segment, which wants a snapshot: a book is never joined across a break.
  4. ``interrupt(cause)``: the stream was cut (a reconnect); the next break carries the cause.
  5. A snapshot as of ``lastUpdateId`` anchors a segment when nothing lies between them:
     ``lastUpdateId + 1`` is at or after the segment's first ``U``. It may be ahead of the last
     update received (those to come up to it are superseded for the book, still stored), and it
     anchors a later segment too when it is ahead of that one's start. An older one is stale: the
     ids between it and the segment are unknown, so another is asked for.
  6. At most one snapshot request is out per symbol (``asked``); a failed one is asked again.
"""

from __future__ import annotations

from typing import Final, Literal

from ingestion.sequencer import Gap

NEW: Final = "new"
DUPLICATE: Final = "duplicate"
ANCHORED: Final = "anchored"
STALE: Final = "stale"


Break = Gap  # update ids ``first..last`` that never arrived, and the cut's cause (Rules 3-4)


Verdict = Literal["new", "duplicate"] | Break


class DepthSequence:
    """The last accepted ``u``, the current segment's start, and the latest snapshot's id."""

    __slots__ = ("asked", "interrupted", "last", "snapshot", "start")

    def __init__(self) -> None:
        self.last: int | None = None  # u of the last accepted update
        self.start: int | None = None  # U of the current segment's first update
        self.snapshot: int | None = None  # lastUpdateId of the latest snapshot received
        self.asked = False  # a request is out (Rule 6)
        self.interrupted: str | None = None

    def observe(self, first: int, final: int) -> Verdict:
        """Classify an update ``U=first, u=final`` (Rules 1-3) and, unless a duplicate, accept it."""
        last = self.last
        if last is not None and final <= last:
            return DUPLICATE
        self.last = final
        if last is not None and first <= last + 1:
            self.interrupted = None
            return NEW
        self.start = first
        if last is None:
            return NEW
        cause, self.interrupted = self.interrupted, None
        return Break(last + 1, first - 1, cause)

    def interrupt(self, cause: str) -> None:
        """Rule 4."""
        self.interrupted = cause

    @property
    def anchored(self) -> bool:
        """The current segment has a snapshot (Rule 5)."""
        return self.start is not None and self.snapshot is not None and self.snapshot + 1 >= self.start

    @property
    def wants(self) -> bool:
        """A snapshot should be asked for now: the segment has none, and none is out (Rule 6)."""
        return self.start is not None and not self.anchored and not self.asked

    def ask(self) -> None:
        """A request goes out."""
        self.asked = True

    def failed(self) -> None:
        """The request got no snapshot: ask again (Rule 6)."""
        self.asked = False

    def answer(self, last_update_id: int) -> Literal["anchored", "stale"]:
        """A snapshot as of ``last_update_id`` came (Rule 5): it anchors the segment, or is stale."""
        self.asked = False
        if self.snapshot is None or last_update_id > self.snapshot:
            self.snapshot = last_update_id
        return ANCHORED if self.anchored else STALE
