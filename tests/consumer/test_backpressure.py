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


# The docstring's tables, written out independently of consumer.backpressure.TABLE, so a change
# to the module's table is a failing test rather than a self-consistent one.
DOCUMENTED = """
SUBMIT       WRITING  STALLED  -        -
WRITTEN      -        -        WRITING  WRITING
REFUSED      -        -        STALLED  STALLED
FINISHED     -        -        READY    DOWN
PING_OK      READY    READY    WRITING  WRITING
PING_FAILED  DOWN     DOWN     STALLED  STALLED
"""
COLUMNS = (State.READY, State.DOWN, State.WRITING, State.STALLED)


def test_the_table_is_the_documented_one() -> None:
    expected = {}
    for line in DOCUMENTED.strip().splitlines():
        event, *targets = line.split()
        for state, target in zip(COLUMNS, targets, strict=True):
            if target != "-":
                expected[(state, Event[event])] = State[target]
    assert dict(TABLE) == expected


@pytest.mark.parametrize(("state", "in_flight", "sink_up", "when_full"), [
    (State.READY, False, True, WhenFull.PAUSE),
    (State.DOWN, False, False, WhenFull.PAUSE),
    (State.WRITING, True, True, WhenFull.WAIT),
    (State.STALLED, True, False, WhenFull.PAUSE),
])
def test_each_state_says_in_flight_sink_up_and_when_full(
        state: State, in_flight: bool, sink_up: bool, when_full: WhenFull) -> None:
    bp = Backpressure(state)
    assert (bp.in_flight, bp.sink_up, bp.when_full) == (in_flight, sink_up, when_full)


def test_retry_after_is_cleared_by_a_write_and_kept_by_a_failed_ping() -> None:
    bp = Backpressure(State.READY)
    bp.on(Event.SUBMIT)
    assert bp.retry_after is None
    bp.on(Event.REFUSED, retry_after=1.5)
    bp.on(Event.PING_FAILED)
    assert bp.retry_after == 1.5
    bp.on(Event.REFUSED)  # a refusal that names no delay forgets the last one
    assert bp.retry_after is None
    bp.on(Event.REFUSED, retry_after=3.0)
    bp.on(Event.WRITTEN)
    assert bp.retry_after is None


def test_a_refused_event_names_the_event_and_the_state() -> None:
    with pytest.raises(TransitionError, match=r"^finished in state ready$"):
        Backpressure(State.READY).on(Event.FINISHED)


def test_a_new_back_pressure_starts_down() -> None:
    assert Backpressure().state is State.DOWN
