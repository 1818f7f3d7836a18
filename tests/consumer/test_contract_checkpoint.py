"""consumer.checkpoint's contract: flush first, commit after, on the right thread, said exactly.

Each test names one behaviour of the module's Rules (its docstring). The collaborators are
in-memory implementations of consumer/ports.py that record what they were asked, from which
thread; the backoff is a stub with known delays, so no test depends on jitter, and the log
lines and metrics a reader sees are asserted exactly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import pytest

from binance_pipeline.common.backoff import Backoff
from consumer.backpressure import Event, State, TransitionError
from consumer.batcher import Batch, Batcher, DeadLetter
from consumer.checkpoint import Checkpointer
from consumer.decode import Row
from consumer.errors import CommitError, DeadLetterError, SinkBackpressureError, WorkerError
from consumer.metrics import WorkerMetrics
from consumer.ports import WriteOutcome

TP = tuple[str, int]
P0: TP = ("t", 0)
P1: TP = ("t", 1)
LOG = "consumer.checkpoint"


class FixedBackoff(Backoff):
    """Every delay is ``delay`` (the real Backoff's jitter is tested in tests/binance_pipeline/common)."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay, delay)
        self.delay = delay

    def next_delay(self) -> float:
        return self.delay


@dataclass
class World:
    """The fakes' shared record: calls in order with their thread, and the planned failures."""

    calls: list[tuple[str, str, object]] = field(default_factory=list)
    writes: deque[Exception | WriteOutcome] = field(default_factory=deque)
    publishes: deque[Exception] = field(default_factory=deque)
    commits: deque[Exception | list[str]] = field(default_factory=deque)
    pings: deque[Exception] = field(default_factory=deque)
    gate: threading.Event = field(default_factory=threading.Event)  # the sink writes once set
    ping_gate: threading.Event = field(default_factory=threading.Event)  # the sink answers pings once set

    def __post_init__(self) -> None:
        self.gate.set()
        self.ping_gate.set()

    def record(self, what: str, payload: object = None) -> None:
        self.calls.append((what, threading.current_thread().name, payload))

    def kinds(self) -> list[str]:
        return [what for what, _, _ in self.calls if what != "writing"]

    def wait_until(self, what: str) -> None:
        """Poll until ``what`` was recorded (5 s at most)."""
        deadline = time.monotonic() + 5
        while what not in [w for w, _, _ in self.calls] and time.monotonic() < deadline:
            time.sleep(0.002)
        assert what in [w for w, _, _ in self.calls], f"{what} never happened"


class Sink:
    def __init__(self, world: World) -> None:
        self.world = world

    def write(self, table: str, rows: list[Row]) -> WriteOutcome:
        self.world.record("writing")
        self.world.gate.wait(10)
        planned = self.world.writes.popleft() if self.world.writes else WriteOutcome(inserted=len(rows))
        if isinstance(planned, Exception):
            self.world.record("refused", table)
            raise planned
        self.world.record("write", (table, list(rows)))
        return planned

    def ping(self) -> None:
        self.world.record("ping")
        self.world.ping_gate.wait(10)
        if self.world.pings:
            raise self.world.pings.popleft()

    def close(self) -> None:
        self.world.record("sink closed")


class DeadLetters:
    def __init__(self, world: World) -> None:
        self.world = world

    def publish(self, dead: list[DeadLetter]) -> None:
        if self.world.publishes:
            self.world.record("dead refused")
            raise self.world.publishes.popleft()
        self.world.record("dead", [(d.partition, d.offset, d.reason) for d in dead])

    def close(self) -> None:
        self.world.record("dead letters closed")


class Offsets:
    def __init__(self, world: World) -> None:
        self.world = world

    def commit(self, offsets: dict[TP, int]) -> list[str]:
        self.world.record("commit", dict(offsets))
        planned = self.world.commits.popleft() if self.world.commits else []
        if isinstance(planned, Exception):
            raise planned
        return planned


def make(world: World, delay: float = 0.001) -> tuple[Checkpointer, WorkerMetrics]:
    metrics = WorkerMetrics()
    cp = Checkpointer(Sink(world), DeadLetters(world), Offsets(world), metrics, lambda: FixedBackoff(delay))
    return cp, metrics


def batch(*parts: tuple[TP, range], dead_every: int = 0, received: int = 0) -> Batch:
    """A drained 'trades' batch; with ``dead_every``, every offset divisible by it is undecodable."""
    batcher = Batcher(10_000, 1.0)
    for tp, offsets in parts:
        seg = batcher.segment(tp[0], tp[1], "trades", 0.0)
        for o in offsets:
            if dead_every and o % dead_every == 0:
                batcher.add_dead(seg, DeadLetter(tp[0], tp[1], o, None, b"bad", "undecodable", received))
            else:
                batcher.add(seg, o, f"k{o}".encode(), b"good", (o,), received)
    drained = batcher.drain("trades")
    assert drained is not None
    return drained


def sample(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOG]


# ------------------------------------------------------------------ Rules 1, 5: order and threads
def test_rows_are_written_on_the_writer_thread_and_committed_on_the_callers() -> None:
    """Steps 2-3 run on the 'writer' thread; step 4 (the commit) on the thread that calls finish."""
    world = World()
    cp, _ = make(world)
    cp.submit(batch((P0, range(0, 3))))
    outcome = cp.finish(timeout=None)
    assert outcome is not None and outcome.write == WriteOutcome(inserted=3)
    caller = threading.current_thread().name
    calls = [c for c in world.calls if c[0] != "writing"]
    assert [(what, thread) for what, thread, _ in calls] == [("write", "writer_0"), ("commit", caller)]
    assert calls[0][2] == ("trades", [(0,), (1,), (2,)])
    assert calls[1][2] == {P0: 3}
    cp.close()


def test_checkpoint_never_commits_past_an_unwritten_offset() -> None:
    """While the write has not returned, finish() commits nothing; once it has, the offset moves."""
    world = World()
    world.gate.clear()
    cp, _ = make(world)
    cp.submit(batch((P0, range(0, 3))))
    assert cp.finish(timeout=0.05) is None
    assert world.kinds() == []
    assert cp.pressure.in_flight
    world.gate.set()
    assert cp.finish(timeout=None) is not None
    assert world.kinds() == ["write", "commit"]
    assert not cp.pressure.in_flight
    cp.close()


def test_finish_does_not_wait_by_default() -> None:
    """finish() with no timeout given returns None at once while the write is still going on."""
    world = World()
    world.gate.clear()
    cp, _ = make(world)
    cp.submit(batch((P0, range(0, 3))))
    started = time.monotonic()
    assert cp.finish() is None
    assert time.monotonic() - started < 0.5
    world.gate.set()
    cp.close()


def test_finish_and_settle_with_nothing_in_flight_return_none() -> None:
    """No batch submitted: nothing to finish, settle or commit."""
    world = World()
    cp, _ = make(world)
    assert cp.finish(timeout=None) is None
    assert cp.settle(time.monotonic() + 1) is None
    assert world.kinds() == []
    cp.close()


def test_a_second_batch_cannot_be_submitted_while_one_is_in_flight() -> None:
    """Rule 2: at most one batch in flight; submitting another is a caller's bug (TransitionError)."""
    world = World()
    world.gate.clear()
    cp, _ = make(world)
    cp.submit(batch((P0, range(0, 3))))
    with pytest.raises(TransitionError):
        cp.submit(batch((P1, range(0, 3))))
    world.gate.set()
    cp.finish(timeout=None)
    cp.submit(batch((P0, range(3, 5))))
    cp.finish(timeout=None)
    assert [p for what, _, p in world.calls if what == "commit"] == [{P0: 3}, {P0: 5}]
    cp.close()


def test_a_batch_without_dead_letters_publishes_nothing() -> None:
    """Only rows: the dead-letter topic is not asked anything."""
    world = World()
    cp, metrics = make(world)
    assert cp.flush_now(batch((P0, range(1, 5))), time.monotonic() + 5)
    assert world.kinds() == ["write", "commit"]
    assert sample(metrics, "worker_dead_letters_total", cause="undecodable") == 0
    cp.close()


def test_undecodable_messages_and_rejected_rows_are_dead_lettered_before_the_commit() -> None:
    """Dead letters: the undecodable ones, then each rejected row with its reason; then the commit."""
    world = World()
    world.writes.append(WriteOutcome(inserted=3, rejected=[(1, "value too long")]))
    cp, metrics = make(world)
    assert cp.flush_now(batch((P0, range(0, 6)), dead_every=3), time.monotonic() + 5)
    calls = [c for c in world.calls if c[0] != "writing"]
    assert world.kinds() == ["write", "dead", "commit"]
    assert calls[1][1] == "writer_0"
    assert calls[1][2] == [(0, 0, "undecodable"), (0, 3, "undecodable"), (0, 2, "value too long")]
    assert calls[2][2] == {P0: 6}
    assert sample(metrics, "worker_dead_letters_total", cause="undecodable") == 2
    assert sample(metrics, "worker_dead_letters_total", cause="rejected_by_database") == 1
    cp.close()


# ------------------------------------------------------------------ retries and abandonment
def test_a_refusal_is_retried_after_the_delay_the_sink_asked_for(caplog: pytest.LogCaptureFixture) -> None:
    """The wait is the larger of the backoff and retry_after; without retry_after, the backoff alone."""
    world = World()
    world.writes.extend([SinkBackpressureError("pool exhausted", retry_after=0.2),
                         SinkBackpressureError("pool exhausted")])
    cp, metrics = make(world, delay=0.01)
    caplog.set_level(logging.WARNING, LOG)
    started = time.monotonic()
    assert cp.flush_now(batch((P0, range(0, 2))), time.monotonic() + 5)
    assert time.monotonic() - started >= 0.2
    assert messages(caplog) == [
        (logging.WARNING, "write trades failed (pool exhausted); retrying in 0.20 s"),
        (logging.WARNING, "write trades failed (pool exhausted); retrying in 0.01 s"),
    ]
    assert world.kinds() == ["refused", "refused", "write", "commit"]
    assert sample(metrics, "worker_db_retries_total") == 2
    cp.close()


def test_a_refusal_stalls_the_sink_until_a_write_succeeds() -> None:
    """During the retries the state is STALLED with the sink's retry_after; after the write, READY."""
    world = World()
    world.writes.append(SinkBackpressureError("busy", retry_after=0.3))
    cp, _ = make(world, delay=0.001)
    cp.pressure.on(Event.PING_OK)  # the sink was known up
    cp.submit(batch((P0, range(0, 2))))
    world.wait_until("refused")
    assert cp.pressure.state is State.STALLED and cp.pressure.retry_after == 0.3
    cp.finish(timeout=None)
    assert cp.pressure.state is State.READY and cp.pressure.retry_after is None
    cp.close()


def test_a_refused_dead_letter_publish_is_retried_without_counting_a_database_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The broker refusing dead letters: retried, logged as 'dead-letter failed', db_retries untouched."""
    world = World()
    world.publishes.append(DeadLetterError("not acknowledged in 5 s"))
    cp, metrics = make(world, delay=0.01)
    caplog.set_level(logging.WARNING, LOG)
    assert cp.flush_now(batch((P0, range(0, 3)), dead_every=2), time.monotonic() + 5)
    assert world.kinds() == ["write", "dead refused", "dead", "commit"]
    assert messages(caplog) == [
        (logging.WARNING, "dead-letter failed (not acknowledged in 5 s); retrying in 0.01 s")
    ]
    assert sample(metrics, "worker_db_retries_total") == 0
    assert cp.pressure.state is State.READY
    cp.close()


def test_a_retry_that_would_end_past_the_deadline_abandons_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """A 10 s backoff with 3 s left: abandoned now, not after waiting; nothing committed (Rule 3)."""
    world = World()
    world.writes.append(SinkBackpressureError("busy"))
    cp, _ = make(world, delay=10.0)
    caplog.set_level(logging.WARNING, LOG)
    started = time.monotonic()
    submitted = batch((P0, range(0, 4)))
    cp.submit(submitted, deadline=time.monotonic() + 3)
    outcome = cp.finish(timeout=None)
    assert time.monotonic() - started < 2
    assert outcome is not None and outcome.write is None and outcome.batch is submitted
    assert "commit" not in world.kinds()
    assert messages(caplog)[-1] == (logging.WARNING, "table trades: batch of 4 abandoned uncommitted")
    cp.close()


def test_flush_now_gives_up_as_soon_as_the_next_retry_would_end_past_its_deadline() -> None:
    """A 10 s backoff with 3 s left: flush_now returns False at once, not at its deadline."""
    world = World()
    world.writes.extend([SinkBackpressureError("busy")] * 10)
    cp, _ = make(world, delay=10.0)
    started = time.monotonic()
    assert not cp.flush_now(batch((P0, range(0, 4))), time.monotonic() + 3)
    assert time.monotonic() - started < 2
    assert world.kinds() == ["refused"]
    cp.close()


def test_flush_now_first_settles_the_batch_in_flight() -> None:
    """A batch already in flight is finished (and committed) before the flushed one is written."""
    world = World()
    world.gate.clear()
    cp, _ = make(world)
    cp.submit(batch((P0, range(0, 2))))
    world.wait_until("writing")
    world.gate.set()
    assert cp.flush_now(batch((P1, range(0, 3))), time.monotonic() + 5)
    assert [p for what, _, p in world.calls if what == "commit"] == [{P0: 2}, {P1: 3}]
    cp.close()


def test_abandon_stops_the_retries_of_the_batch_in_flight() -> None:
    """abandon() wakes the writer from its backoff: the batch finishes abandoned, uncommitted."""
    world = World()
    world.writes.extend([SinkBackpressureError("busy")] * 3)
    cp, _ = make(world, delay=10.0)
    cp.submit(batch((P0, range(0, 4))))
    world.wait_until("refused")
    started = time.monotonic()
    cp.abandon()
    outcome = cp.finish(timeout=None)
    assert time.monotonic() - started < 2
    assert outcome is not None and outcome.write is None and world.kinds() == ["refused"]
    cp.close()


def test_settle_abandons_at_its_deadline_and_returns_the_abandoned_batch() -> None:
    """settle(deadline in the past) on a sink that keeps refusing: abandoned at once, nothing committed."""
    world = World()
    world.writes.extend([SinkBackpressureError("busy")] * 1000)
    cp, _ = make(world, delay=0.05)
    cp.submit(batch((P0, range(0, 4))))
    started = time.monotonic()
    outcome = cp.settle(time.monotonic() - 1)
    assert time.monotonic() - started < 0.9
    assert outcome is not None and outcome.write is None
    assert not cp.flush_now(batch((P1, range(0, 2))), time.monotonic() - 1)
    assert "commit" not in world.kinds()
    cp.close()


def test_a_new_batch_is_not_abandoned_because_the_previous_one_was() -> None:
    """submit() clears the abandonment of the batch before: the next one's refusal is retried."""
    world = World()
    world.writes.extend([SinkBackpressureError("busy"), SinkBackpressureError("busy again")])
    # the first batch waits a minute before its retry (so only the abandonment can end it, however
    # late the abandonment comes); the second retries at once
    backoffs = iter([FixedBackoff(60.0), FixedBackoff(0.001)])
    sink, dead, offsets = Sink(world), DeadLetters(world), Offsets(world)
    cp = Checkpointer(sink, dead, offsets, WorkerMetrics(), lambda: next(backoffs))
    cp.submit(batch((P0, range(0, 2))))
    world.wait_until("refused")
    cp.abandon()
    first = cp.finish(timeout=None)
    cp.submit(batch((P0, range(0, 2))))
    second = cp.finish(timeout=None)
    assert first is not None and second is not None
    assert (first.write, second.write) == (None, WriteOutcome(inserted=2))
    assert world.kinds() == ["refused", "refused", "write", "commit"]
    cp.close()


# ------------------------------------------------------------------ step 4: the commit
def test_excluded_partitions_are_left_out_of_this_commit_only() -> None:
    """A partition excluded while in flight is not committed; the next batch commits it again."""
    world = World()
    world.gate.clear()
    cp, _ = make(world)
    cp.submit(batch((P0, range(0, 3)), (P1, range(0, 3))))
    cp.exclude([P0])
    world.gate.set()
    cp.finish(timeout=None)
    cp.submit(batch((P0, range(0, 2)), (P1, range(3, 4))))
    cp.finish(timeout=None)
    assert [p for what, _, p in world.calls if what == "commit"] == [{P1: 3}, {P0: 2, P1: 4}]
    cp.close()


def test_an_exclusion_with_nothing_in_flight_is_ignored() -> None:
    """exclude() only concerns the batch in flight; when idle, the next batch commits everything."""
    world = World()
    cp, _ = make(world)
    cp.exclude([P0])
    cp.flush_now(batch((P0, range(0, 3))), time.monotonic() + 5)
    assert [p for what, _, p in world.calls if what == "commit"] == [{P0: 3}]
    cp.close()


def test_a_batch_whose_partitions_are_all_excluded_commits_nothing_at_all() -> None:
    """Nothing left to commit: the offset store is not called, no latency is recorded."""
    world = World()
    world.gate.clear()
    cp, metrics = make(world)
    cp.submit(batch((P0, range(0, 3))))
    cp.exclude([P0])
    world.gate.set()
    outcome = cp.finish(timeout=None)
    assert outcome is not None and outcome.write is not None
    assert world.kinds() == ["write"]
    assert sample(metrics, "worker_receipt_to_commit_seconds_count") == 0
    cp.close()


def test_a_failed_commit_is_counted_and_logged_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    """CommitError: one failure counted, one warning, no second attempt, no latency (Rule 4)."""
    world = World()
    world.commits.append(CommitError("coordinator moved"))
    cp, metrics = make(world)
    caplog.set_level(logging.WARNING, LOG)
    assert cp.flush_now(batch((P0, range(0, 3))), time.monotonic() + 5)
    assert world.kinds() == ["write", "commit"]
    assert sample(metrics, "worker_commit_failures_total") == 1
    assert sample(metrics, "worker_receipt_to_commit_seconds_count") == 0
    assert messages(caplog) == [(
        logging.WARNING,
        "offset commit failed (rows are durable; a replay will skip them): coordinator moved",
    )]
    cp.close()


def test_refused_partitions_are_counted_one_each_and_named(caplog: pytest.LogCaptureFixture) -> None:
    """The broker refusing two partitions: two failures counted, both named in one warning."""
    world = World()
    world.commits.append(["t[0]: rebalance", "t[1]: rebalance"])
    cp, metrics = make(world)
    caplog.set_level(logging.WARNING, LOG)
    assert cp.flush_now(batch((P0, range(0, 2)), (P1, range(0, 2))), time.monotonic() + 5)
    assert sample(metrics, "worker_commit_failures_total") == 2
    assert messages(caplog) == [(
        logging.WARNING,
        "offset commit refused for t[0]: rebalance, t[1]: rebalance "
        "(rows are durable; a replay will skip them)",
    )]
    cp.close()


def test_a_commit_is_logged_per_partition_and_times_every_row(caplog: pytest.LogCaptureFixture) -> None:
    """Debug line 'committed t[0]@3, t[1]@2'; one receipt-to-commit latency per row, in seconds."""
    world = World()
    cp, metrics = make(world)
    caplog.set_level(logging.DEBUG, LOG)
    received = time.time_ns() // 1000 - 2_000_000  # received 2 s ago
    assert cp.flush_now(batch((P0, range(0, 3)), (P1, range(0, 2)), received=received), time.monotonic() + 5)
    assert (logging.DEBUG, "committed t[0]@3, t[1]@2") in messages(caplog)
    assert sample(metrics, "worker_receipt_to_commit_seconds_count") == 5
    assert 2.0 <= sample(metrics, "worker_receipt_to_commit_seconds_sum") / 5 < 5.0
    cp.close()


# ------------------------------------------------------------------ metrics of a write
def test_a_write_records_its_rows_duplicates_size_and_duration() -> None:
    """rows_written += inserted, rows_duplicate += skipped, one flush of len(rows) rows, in seconds."""
    world = World()
    world.writes.append(WriteOutcome(inserted=3, skipped=1))
    cp, metrics = make(world)
    assert cp.flush_now(batch((P0, range(0, 4))), time.monotonic() + 5)
    assert sample(metrics, "worker_rows_written_total", table="trades") == 3
    assert sample(metrics, "worker_rows_duplicate_total", table="trades") == 1
    assert sample(metrics, "worker_flush_rows_count", table="trades") == 1
    assert sample(metrics, "worker_flush_rows_sum", table="trades") == 4
    assert sample(metrics, "worker_flush_seconds_count", table="trades") == 1
    assert 0 <= sample(metrics, "worker_flush_seconds_sum", table="trades") < 5
    cp.close()


# ------------------------------------------------------------------ idle checks and closing
def test_an_idle_ping_answers_on_the_writer_thread_and_sets_readiness(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ping(): the sink answers -> READY; it fails -> DOWN, with a warning naming the error."""
    world = World()
    cp, _ = make(world)
    caplog.set_level(logging.WARNING, LOG)
    assert cp.pressure.state is State.DOWN
    cp.ping()
    cp.finish()  # nothing in flight: a ping is not a batch
    deadline = time.monotonic() + 5
    while cp.pressure.state is not State.READY and time.monotonic() < deadline:
        time.sleep(0.005)
    assert cp.pressure.state is State.READY
    world.pings.append(WorkerError("connection refused"))
    cp.ping()
    while cp.pressure.state is not State.DOWN and time.monotonic() < deadline:
        time.sleep(0.005)
    assert cp.pressure.state is State.DOWN
    assert [(what, thread) for what, thread, _ in world.calls] == [("ping", "writer_0"), ("ping", "writer_0")]
    assert messages(caplog) == [(logging.WARNING, "database check failed: connection refused")]
    cp.close()


def test_no_ping_while_a_batch_is_in_flight() -> None:
    """The write in flight already tells whether the database answers: ping() does nothing then."""
    world = World()
    world.gate.clear()
    cp, _ = make(world)
    cp.submit(batch((P0, range(0, 2))))
    cp.ping()
    world.gate.set()
    cp.finish(timeout=None)
    cp.close()
    assert "ping" not in world.kinds()


def test_a_write_waits_for_an_idle_check_in_progress() -> None:
    """One writer thread owns the sink (Rule 5): a batch submitted during a ping is written after it."""
    world = World()
    world.ping_gate.clear()
    cp, _ = make(world)
    cp.ping()
    world.wait_until("ping")
    cp.submit(batch((P0, range(0, 2))))
    assert cp.finish(timeout=0.1) is None
    assert world.kinds() == ["ping"]
    world.ping_gate.set()
    assert cp.finish(timeout=None) is not None
    assert [(what, thread) for what, thread, _ in world.calls] == [
        ("ping", "writer_0"), ("writing", "writer_0"), ("write", "writer_0"), ("commit", "MainThread")
    ]
    cp.close()


def test_close_lets_a_write_in_progress_end_before_closing_the_sink() -> None:
    """close() joins the writer: the sink is closed only after the write it was doing returned."""
    world = World()
    world.gate.clear()
    cp, _ = make(world)
    cp.submit(batch((P0, range(0, 2))))
    world.wait_until("writing")
    closing = threading.Thread(target=cp.close)
    closing.start()
    closing.join(0.1)
    assert closing.is_alive() and "sink closed" not in world.kinds()
    world.gate.set()
    closing.join(5)
    assert world.kinds() == ["write", "sink closed", "dead letters closed"]


def test_close_waits_for_the_writer_then_closes_sink_and_dead_letters() -> None:
    """close(): the retrying batch is abandoned, the writer joined, then both outputs closed."""
    world = World()
    world.writes.extend([SinkBackpressureError("busy")] * 1000)
    cp, _ = make(world, delay=10.0)
    cp.submit(batch((P0, range(0, 2))))
    started = time.monotonic()
    cp.close()
    assert time.monotonic() - started < 5
    assert world.kinds()[-2:] == ["sink closed", "dead letters closed"]
    assert "commit" not in world.kinds()


def test_flush_now_without_commit_writes_the_rows_and_commits_nothing() -> None:
    """Messages of a log the broker lost (loop Rule 8): written, True returned, no offset committed;
    the next batch commits as usual."""
    world = World()
    cp, metrics = make(world)
    assert cp.flush_now(batch((P0, range(0, 3)), (P1, range(0, 2))), time.monotonic() + 5, commit=False)
    assert world.kinds() == ["write"]
    assert sample(metrics, "worker_rows_written_total", table="trades") == 5
    assert cp.flush_now(batch((P1, range(2, 4))), time.monotonic() + 5)
    assert [p for what, _, p in world.calls if what == "commit"] == [{P1: 4}]
    cp.close()
