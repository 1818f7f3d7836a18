"""Back-pressure as one explicit state: is a batch in flight, and does the sink take writes?

Pure: no I/O, no clock. The Checkpointer feeds it events from both threads (under its lock);
the poll loop and the readiness probe only read ``state`` and its derived properties.

States (TABLE below is the whole of the behaviour):

    state     in flight  sink up  buffer full ->
    READY     no         yes      PAUSE (until the due batch is submitted and drains the buffer)
    DOWN      no         no       PAUSE (keep polling so the group membership stays alive)
    WRITING   yes        yes      WAIT  (the writer is catching up: block on it, do not poll)
    STALLED   yes        no       PAUSE (the sink refused the batch; it is retried with backoff)

Transitions:

    event \\ state  READY    DOWN     WRITING  STALLED
    SUBMIT          WRITING  STALLED  -        -
    WRITTEN         -        -        WRITING  WRITING
    REFUSED         -        -        STALLED  STALLED
    FINISHED        -        -        READY    DOWN
    PING_OK         READY    READY    WRITING  WRITING
    PING_FAILED     DOWN     DOWN     STALLED  STALLED

Rules:
  1. An event not in the table is a bug in the caller (``TransitionError``), never ignored:
     e.g. SUBMIT while a batch is in flight, or FINISHED with nothing in flight.
  2. SUBMIT and FINISHED come from the poll thread only, so "in flight" changes on that thread
     alone; WRITTEN, REFUSED and the pings come from the writer thread and move "sink up" only.
  3. A batch submitted while the sink is down starts STALLED: readiness stays off until a write
     or a ping succeeds, not merely because a new batch was handed over.
  4. ``retry_after`` is the delay the sink asked for with its last refusal (None if it did not
     say, or once it took a write); the writer waits at least that long before the next attempt.
"""

from __future__ import annotations

import enum
import threading


class State(enum.Enum):
    READY = "ready"
    DOWN = "down"
    WRITING = "writing"
    STALLED = "stalled"


class Event(enum.Enum):
    SUBMIT = "submit"  # poll thread: a batch is handed to the writer
    WRITTEN = "written"  # writer: the sink made the batch durable
    REFUSED = "refused"  # writer: the sink refused an attempt (SinkBackpressureError)
    FINISHED = "finished"  # poll thread: the batch in flight is done (committed or abandoned)
    PING_OK = "ping_ok"  # writer: the idle check answered
    PING_FAILED = "ping_failed"  # writer: the idle check did not answer


class WhenFull(enum.Enum):
    WAIT = "wait"  # block on the writer for a moment instead of polling
    PAUSE = "pause"  # pause every assigned partition and keep polling


S, E = State, Event
TABLE: dict[tuple[State, Event], State] = {
    (S.READY, E.SUBMIT): S.WRITING,
    (S.DOWN, E.SUBMIT): S.STALLED,
    (S.WRITING, E.WRITTEN): S.WRITING,
    (S.STALLED, E.WRITTEN): S.WRITING,
    (S.WRITING, E.REFUSED): S.STALLED,
    (S.STALLED, E.REFUSED): S.STALLED,
    (S.WRITING, E.FINISHED): S.READY,
    (S.STALLED, E.FINISHED): S.DOWN,
    (S.READY, E.PING_OK): S.READY,
    (S.DOWN, E.PING_OK): S.READY,
    (S.WRITING, E.PING_OK): S.WRITING,
    (S.STALLED, E.PING_OK): S.WRITING,
    (S.READY, E.PING_FAILED): S.DOWN,
    (S.DOWN, E.PING_FAILED): S.DOWN,
    (S.WRITING, E.PING_FAILED): S.STALLED,
    (S.STALLED, E.PING_FAILED): S.STALLED,
}
IN_FLIGHT = frozenset({S.WRITING, S.STALLED})
SINK_UP = frozenset({S.READY, S.WRITING})
WHEN_FULL = {S.READY: WhenFull.PAUSE, S.DOWN: WhenFull.PAUSE, S.WRITING: WhenFull.WAIT,
             S.STALLED: WhenFull.PAUSE}


class TransitionError(RuntimeError):
    """An event the current state does not accept (Rule 1)."""


class Backpressure:
    """The state of TABLE, safe to update from two threads; starts DOWN (nothing proven yet)."""

    def __init__(self, state: State = State.DOWN) -> None:
        self._state = state
        self._retry_after: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> State:
        return self._state

    @property
    def in_flight(self) -> bool:
        return self._state in IN_FLIGHT

    @property
    def sink_up(self) -> bool:
        return self._state in SINK_UP

    @property
    def when_full(self) -> WhenFull:
        return WHEN_FULL[self._state]

    @property
    def retry_after(self) -> float | None:
        return self._retry_after

    def on(self, event: Event, retry_after: float | None = None) -> State:
        """Apply ``event`` (Rule 1); REFUSED may carry the sink's ``retry_after`` (Rule 4)."""
        with self._lock:
            nxt = TABLE.get((self._state, event))
            if nxt is None:
                raise TransitionError(f"{event.value} in state {self._state.value}")
            self._state = nxt
            if event is Event.REFUSED:
                self._retry_after = retry_after
            elif event in (Event.WRITTEN, Event.PING_OK):
                self._retry_after = None
            return nxt
