"""Dedupe and gap detection for one (symbol, stream) sequence of ids (pure).

Every event of every connection passes through the sequencer of its (symbol, stream) before
it is published: it is the single point of dedupe. Ids are ``t`` (trade), ``a`` (aggTrade)
and ``u`` (bookTicker).

Rules:
  1. The first id ever seen is new; it sets the baseline (nothing before it is claimed).
  2. An id at or below the highest id accepted so far is a duplicate and is dropped.
  3. Contiguous sequences (trade, aggTrade): ``last + 1`` is new; a larger id is new too but
     reports ``Gap(last + 1, id - 1)``. Non-contiguous sequences (bookTicker ``u`` jumps by
     design) never report gaps.
  4. Accepted ids therefore strictly increase, and accepted ids plus reported gaps cover every
     id from the baseline to the highest accepted id exactly once (property-tested).
  5. ``interrupt(cause)`` marks that the stream was cut (reconnect): the next gap carries the cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

NEW: Final = "new"
DUPLICATE: Final = "duplicate"


@dataclass(frozen=True, slots=True)
class Gap:
    """Ids ``first..last`` (inclusive) never arrived; the event that revealed it is new."""

    first: int
    last: int
    cause: str | None = None  # set when the stream had been interrupted (Rule 5)

    @property
    def missing(self) -> int:
        return self.last - self.first + 1


Verdict = Literal["new", "duplicate"] | Gap


class Sequencer:
    """The highest id accepted for one (symbol, stream), and what the next id means."""

    __slots__ = ("contiguous", "interrupted", "last")
    interrupted: str | None

    def __init__(self, contiguous: bool, last: int | None = None) -> None:
        self.contiguous = contiguous
        self.last = last
        self.interrupted = None

    def observe(self, ident: int) -> Verdict:
        """Classify ``ident`` (Rules 1-3) and, unless it is a duplicate, accept it."""
        last = self.last
        if last is not None and ident <= last:
            return DUPLICATE
        self.last = ident
        if last is None or ident == last + 1 or not self.contiguous:
            self.interrupted = None
            return NEW
        gap = Gap(last + 1, ident - 1, self.interrupted)
        self.interrupted = None
        return gap

    def interrupt(self, cause: str) -> None:
        """The stream was cut; the next gap is attributed to ``cause`` (Rule 5)."""
        self.interrupted = cause
