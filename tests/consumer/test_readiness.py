"""The worker's readiness reasons about the broker and the poll loop (pure functions of times)."""

from __future__ import annotations

from consumer.readiness import BROKER_SILENCE_S, LOOP_STALL_S, broker_reason, loop_reason


def test_broker_reason_names_the_broker_once_it_has_been_silent_too_long() -> None:
    """None while the broker answered within BROKER_SILENCE_S; then a reason with its address and error."""
    assert broker_reason("k:9092", answered_at=100.0, last_error="", now=100.0 + BROKER_SILENCE_S) is None
    reason = broker_reason("k:9092", answered_at=100.0, last_error="Local: Timed out", now=109.0)
    assert reason == "kafka broker k:9092 unreachable: no answer for 9 s: Local: Timed out"


def test_loop_reason_only_for_a_started_loop_that_stopped_turning() -> None:
    """No reason before the loop starts or while it turns; a stall past LOOP_STALL_S is named."""
    assert loop_reason(None, now=1000.0) is None
    assert loop_reason(50.0, now=50.0 + LOOP_STALL_S) is None
    assert loop_reason(50.0, now=62.0) == "poll loop stalled for 12 s"


def test_broker_reason_says_why_only_when_it_knows() -> None:
    assert broker_reason("k:9092", 0.0, "", 10.0) == "kafka broker k:9092 unreachable: no answer for 10 s"
    assert broker_reason("k:9092", 0.0, "timed out", 10.0) == (
        "kafka broker k:9092 unreachable: no answer for 10 s: timed out")
