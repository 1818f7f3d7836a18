"""Dedupe and gap detection for one (symbol, stream) sequence of ids (pure).

Every event of every connection passes through the sequencer of its (symbol, stream) before
it is published: it is the single point of dedupe. Ids are ``t`` (trade), ``a`` (aggTrade)
and ``u`` (bookTicker).

Invariant: **a valid event is never dropped because of an invalid one.** Frames are
validated before they reach a sequencer, so an invalid frame never claims an id; an id that
looks valid but jumps implausibly far ahead is verified against REST before it may move the
baseline (``ingestion.flow``); and an id inside a gap that is still open is a fill, never a
duplicate, so even an id accepted too early cannot make the events it skipped look like
repeats.

Rules:
  1. The first id ever seen is new; it sets the baseline (nothing before it is claimed).
     ``seed(last)`` sets the baseline from a stored frontier instead (resume).
  2. An id at or below the highest id accepted so far is a duplicate and is dropped, unless
     it lies in an open hole (Rule 6).
  3. Contiguous sequences (trade, aggTrade): ``last + 1`` is new; a larger id is new too but
     reports ``Gap(last + 1, id - 1)`` and opens that hole. Non-contiguous sequences
     (bookTicker ``u`` jumps by design) never report gaps and have no holes.
  4. Accepted ids (new and fills) are each accepted once, and accepted ids plus the ids still
     in holes cover every id from the baseline to the highest accepted id exactly once
     (property-tested).
  5. ``interrupt(cause)`` marks that the stream was cut (reconnect): the next gap carries the cause.
  6. An id inside a hole is a ``FILL``: it is accepted and the hole narrows (or splits). At
     most ``MAX_HOLES`` holes are kept per sequence, the oldest forgotten first (their ids are
     the backfiller's to repair).
  7. ``reveal(latest)``: ids up to ``latest`` exist (REST says so) that the stream has not
     delivered; beyond ``last`` they are a gap and a hole like one an event reveals (Rule 3),
     with the interruption's cause, and ``latest`` becomes ``last``, so the stream's next id
     ``latest + 1`` is contiguous.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Final, Literal

NEW: Final = "new"
DUPLICATE: Final = "duplicate"
FILL: Final = "fill"
MAX_HOLES = 256
_ABOVE = 2**64  # sorts after every (first, last) with the same first


@dataclass(frozen=True, slots=True)
class Gap:
    """Ids ``first..last`` (inclusive) never arrived; the event that revealed it is new."""

    first: int
    last: int
    cause: str | None = None  # set when the stream had been interrupted (Rule 5)

    @property
    def missing(self) -> int:
        return self.last - self.first + 1


Verdict = Literal["new", "duplicate", "fill"] | Gap


class Sequencer:
    """The highest id accepted for one (symbol, stream), the open holes, and what the next id means."""

    __slots__ = ("contiguous", "holes", "interrupted", "last")
    interrupted: str | None

    def __init__(self, contiguous: bool, last: int | None = None) -> None:
        self.contiguous = contiguous
        self.last = last
        self.interrupted = None
        self.holes: list[tuple[int, int]] = []  # sorted, disjoint (first, last) ranges (Rule 6)

    def seed(self, last: int) -> None:
        """Set the baseline from a stored frontier when nothing was accepted yet (Rule 1)."""
        if self.last is None:
            self.last = last

    def observe(self, ident: int) -> Verdict:
        """Classify ``ident`` (Rules 1-3, 6) and, unless it is a duplicate, accept it."""
        last = self.last
        if last is not None and ident <= last:
            return self._fill(ident) if self.holes else DUPLICATE
        self.last = ident
        if last is None or ident == last + 1 or not self.contiguous:
            self.interrupted = None
            return NEW
        return self._open(Gap(last + 1, ident - 1, self.interrupted))

    def reveal(self, latest: int) -> Gap | None:
        """Ids up to ``latest`` exist but have not arrived (Rule 7); None when none is beyond ``last``."""
        last = self.last
        if last is None or latest <= last:
            return None
        self.last = latest
        return self._open(Gap(last + 1, latest, self.interrupted))

    def _open(self, gap: Gap) -> Gap:
        self.interrupted = None
        self.holes.append((gap.first, gap.last))
        if len(self.holes) > MAX_HOLES:
            del self.holes[0]
        return gap

    def _fill(self, ident: int) -> Verdict:
        at = bisect.bisect_right(self.holes, (ident, _ABOVE)) - 1
        if at < 0 or not self.holes[at][0] <= ident <= self.holes[at][1]:
            return DUPLICATE
        first, last = self.holes.pop(at)
        parts = [(a, b) for a, b in ((first, ident - 1), (ident + 1, last)) if a <= b]
        self.holes[at:at] = parts
        return FILL

    def in_hole(self, ident: int) -> bool:
        """True when ``ident`` would be a fill."""
        at = bisect.bisect_right(self.holes, (ident, _ABOVE)) - 1
        return at >= 0 and self.holes[at][0] <= ident <= self.holes[at][1]

    def interrupt(self, cause: str) -> None:
        """The stream was cut; the next gap is attributed to ``cause`` (Rule 5)."""
        self.interrupted = cause
