"""consumer.backpressure: the transition table is complete, strict, and says what a full buffer does."""

from __future__ import annotations

import pytest

from consumer.backpressure import TABLE, Backpressure, Event, State, TransitionError, WhenFull


def test_every_pair_is_either_a_transition_or_refused() -> None:
    """Each (state, event) not in the table raises and leaves the state as it was."""
    for state in State:
        for event in Event:
            bp = Backpressure(state)
            if (state, event) in TABLE:
                assert bp.on(event) is TABLE[(state, event)]
            else:
                with pytest.raises(TransitionError):
                    bp.on(event)
                assert bp.state is state


def test_a_batch_submitted_while_the_sink_is_down_keeps_readiness_off() -> None:
    """Handing over a batch proves nothing: readiness comes back with a durable write (Rule 3)."""
    bp = Backpressure()
    assert bp.state is State.DOWN and not bp.sink_up
    bp.on(Event.SUBMIT)
    assert bp.in_flight and not bp.sink_up and bp.when_full is WhenFull.PAUSE
    bp.on(Event.WRITTEN)
    assert bp.sink_up and bp.when_full is WhenFull.WAIT
    bp.on(Event.FINISHED)
    assert bp.state is State.READY and not bp.in_flight


def test_a_refusal_carries_retry_after_until_the_next_success() -> None:
    """REFUSED records the sink's retry_after; a write or a ping clears it (Rule 4)."""
    bp = Backpressure(State.READY)
    bp.on(Event.SUBMIT)
    bp.on(Event.REFUSED, retry_after=2.5)
    assert bp.state is State.STALLED and bp.retry_after == 2.5
    bp.on(Event.FINISHED)
    assert bp.state is State.DOWN
    bp.on(Event.PING_OK)
    assert bp.state is State.READY and bp.retry_after is None


def test_only_writing_to_a_healthy_sink_waits_when_full() -> None:
    """A full buffer waits on the writer only in WRITING; every other state pauses partitions."""
    assert {s for s in State if Backpressure(s).when_full is WhenFull.WAIT} == {State.WRITING}
