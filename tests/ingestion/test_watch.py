"""ingestion/watch.py: each verdict with its reason, and the connection's age from when it opened."""

from __future__ import annotations

from ingestion.watch import KEEP, Decision, Limits, WatchState, decide

T0 = 1_723_100_000_000_000
LIMITS = Limits(stall_s=10, rollover_s=100, stable_s=30)


def state(opened_at: float = 0.0, stable: bool = False) -> WatchState:
    return WatchState(ended=None, last_frame_at=T0, opened_at=opened_at, shutdown_notice=False, stable=stable)


def test_a_stalled_connection_is_replaced_and_the_reason_gives_the_limit() -> None:
    assert decide(state(), T0 + 10_000_001, 5.0, LIMITS) == Decision("replace", "stalled: no frame for 10 s")


def test_age_counts_from_the_opening() -> None:
    """A connection opened at 1000 s is 99 s old at 1099 s: kept; 100 s old at 1100 s: rolled over."""
    assert decide(state(opened_at=1000.0, stable=True), T0, 1099.0, LIMITS) == KEEP
    assert decide(state(opened_at=1000.0, stable=True), T0, 1100.0, LIMITS) == Decision("rollover", "age")
    assert decide(state(opened_at=1000.0), T0, 1029.0, LIMITS) == KEEP
    assert decide(state(opened_at=1000.0), T0, 1030.0, LIMITS) == Decision("stable")
