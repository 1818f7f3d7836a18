"""How far ahead a stream's next id may plausibly jump (pure, receipt times passed in).

An id gap is normal (a dropped event, a reconnect), but a jump far beyond what the stream's
recent rate allows in the time that passed is more likely a bad frame than half a million
trades: the flow has REST confirm such a jump before the baseline moves (``ingestion.flow``).

Rules:
  1. The rate is measured over windows of at least ``WINDOW_US`` of receipt time, from the
     ids accepted in order; a slower window halves it at most (a quiet spell does not make
     the next burst look implausible).
  2. A jump of ``n`` missing ids, ``elapsed`` seconds of receipt time after the last accepted
     id, is plausible when ``n <= JUMP_FLOOR + JUMP_FACTOR * max(rate, MIN_RATE) * (elapsed + 1)``:
     a long outage allows a long gap, a poisoned id copied from a live frame does not.
  3. Before any id was noted every jump is plausible (nothing to compare with).
"""

from __future__ import annotations

WINDOW_US = 1_000_000
JUMP_FLOOR = 1000
JUMP_FACTOR = 10.0
MIN_RATE = 100.0  # ids per second assumed for a stream slower than this


class Pace:
    """Recent id rate of one contiguous stream."""

    __slots__ = ("at", "rate", "start_at", "start_id")

    def __init__(self) -> None:
        self.at: int | None = None  # receipt time (us) of the last noted id
        self.start_at = 0
        self.start_id = 0
        self.rate = 0.0  # ids per second

    def note(self, ident: int, at: int) -> None:
        """An id accepted in order at receipt time ``at`` (Rule 1)."""
        if self.at is None:
            self.start_at, self.start_id = at, ident
        elif at - self.start_at >= WINDOW_US:
            measured = (ident - self.start_id) * 1e6 / (at - self.start_at)
            self.rate = max(measured, self.rate / 2)
            self.start_at, self.start_id = at, ident
        self.at = at

    def plausible(self, missing: int, at: int) -> bool:
        """Rules 2-3."""
        if self.at is None:
            return True
        elapsed = max(0, at - self.at) / 1e6
        return missing <= JUMP_FLOOR + JUMP_FACTOR * max(self.rate, MIN_RATE) * (elapsed + 1.0)
