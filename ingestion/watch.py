"""When a connection must be replaced, and how (pure: state and clock in, decision out).

The supervisor polls ``decide`` for each live connection; nothing here sleeps or reads a clock.

Rules, in this order (the first that holds decides):
  1. The receive loop ended (``ended`` says why): replace after a backoff.
  2. No frame for ``stall_s`` seconds: replace after a backoff ("stalled").
  3. The server announced a shutdown: roll over, make-before-break ("serverShutdown").
  4. The connection is ``rollover_s`` old: roll over ("age").
  5. Streaming for ``stable_s`` without trouble (and not yet marked stable): "stable", so the
     caller resets its reconnect backoff. Otherwise "keep".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["keep", "stable", "replace", "rollover"]


@dataclass(frozen=True, slots=True)
class Limits:
    stall_s: float
    rollover_s: float
    stable_s: float


@dataclass(frozen=True, slots=True)
class WatchState:
    """What the supervisor knows of a connection (times: us for frames, s for age)."""

    ended: str | None
    last_frame_at: int  # receipt time (us) of the last frame, or the open time
    opened_at: float  # monotonic seconds when it opened
    shutdown_notice: bool
    stable: bool


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    why: str = ""


KEEP = Decision("keep")


def stalled(last_frame_at: int, now_us: int, stall_s: float) -> bool:
    """True when no frame arrived for more than ``stall_s`` seconds (Rule 2)."""
    return now_us - last_frame_at > stall_s * 1e6


def decide(state: WatchState, now_us: int, now_mono: float, limits: Limits) -> Decision:
    """Rules 1-5."""
    if state.ended is not None:
        return Decision("replace", state.ended)
    if stalled(state.last_frame_at, now_us, limits.stall_s):
        return Decision("replace", f"stalled: no frame for {limits.stall_s:g} s")
    if state.shutdown_notice:
        return Decision("rollover", "serverShutdown")
    age = now_mono - state.opened_at
    if age >= limits.rollover_s:
        return Decision("rollover", "age")
    if not state.stable and age >= limits.stable_s:
        return Decision("stable")
    return KEEP
