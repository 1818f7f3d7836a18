"""consumer.checkpoint in-process: sinks that fail at each step, and the commit order they leave.

The Checkpointer is driven through the protocols of consumer/ports.py by in-memory
implementations that share one journal. The invariant checked everywhere: no offset is
committed before every message below it is durable (a row written or a dead letter published).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binance_pipeline.common.backoff import Backoff
from consumer.backpressure import State
from consumer.batcher import Batch, Batcher, DeadLetter
from consumer.checkpoint import DEAD_LETTER_MAX_VALUE, Checkpointer
from consumer.decode import Row
from consumer.errors import (
    CommitError,
    DeadLetterError,
    FatalDatabaseError,
    SinkBackpressureError,
)
from consumer.metrics import WorkerMetrics
from consumer.ports import WriteOutcome

TP = tuple[str, int]
PARTITIONS: tuple[TP, ...] = (("t", 0), ("t", 1))


@dataclass
class Journal:
    """What each fake did, in order; the actions still planned for each step."""

    entries: list[tuple[str, object]] = field(default_factory=list)
    plan: dict[str, deque[str]] = field(default_factory=lambda: {"write": deque(), "dlq": deque(),
                                                                 "commit": deque()})

    def next(self, step: str) -> str:
        queue = self.plan[step]
        return queue.popleft() if queue else "ok"


class FakeSink:
    """ports.Sink: a row is 'offset:tp' text; 'refuse' raises back-pressure, 'reject' rejects row 0."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def write(self, table: str, rows: list[Row]) -> WriteOutcome:
        action = self.journal.next("write")
        if action == "refuse":
            self.journal.entries.append(("refused", table))
            raise SinkBackpressureError("planned refusal", retry_after=0.0)
        if action == "fatal":
            raise FatalDatabaseError("planned fatal error")
        rejected = [(0, "planned rejection")] if action == "reject" and rows else []
        self.journal.entries.append(("durable", [r for i, r in enumerate(rows) if i not in dict(rejected)]))
        return WriteOutcome(inserted=len(rows) - len(rejected), rejected=rejected)

    def ping(self) -> None:
        self.journal.entries.append(("ping", None))

    def close(self) -> None:
        pass


class FakeDeadLetters:
    """ports.DeadLetterOut: 'refuse' raises DeadLetterError."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def publish(self, dead: list[DeadLetter]) -> None:
        if self.journal.next("dlq") == "refuse":
            raise DeadLetterError("planned refusal")
        self.journal.entries.append(("dead", [f"{d.offset}:{d.topic}/{d.partition}" for d in dead]))

    def close(self) -> None:
        pass


class FakeOffsets:
    """ports.OffsetStore: 'raise' raises CommitError, 'refuse' answers a refused partition."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.committed: dict[TP, int] = {}

    def commit(self, offsets: dict[TP, int]) -> list[str]:
        action = self.journal.next("commit")
        if action == "raise":
            raise CommitError("planned failure")
        if action == "refuse":
            return ["planned refusal"]
        self.journal.entries.append(("commit", dict(offsets)))
        self.committed.update(offsets)
        return []


def make(journal: Journal) -> tuple[Checkpointer, FakeOffsets]:
    offsets = FakeOffsets(journal)
    cp = Checkpointer(FakeSink(journal), FakeDeadLetters(journal), offsets, WorkerMetrics(),
                      lambda: Backoff(0.0001, 0.001))
    return cp, offsets


def fill(batcher: Batcher, tp: TP, offsets: range) -> None:
    """Buffer ``offsets`` of ``tp``; every offset divisible by 5 is undecodable (a dead letter)."""
    seg = batcher.segment(tp[0], tp[1], "trades", 0.0)
    for o in offsets:
        if o % 5 == 0:
            batcher.add_dead(seg, DeadLetter(tp[0], tp[1], o, None, b"bad", "undecodable", 0))
        else:
            batcher.add(seg, o, None, b"good", f"{o}:{tp[0]}/{tp[1]}", 0)


def batch_of(*parts: tuple[TP, range]) -> Batch:
    """One drained batch holding ``offsets`` of each ``tp`` (see ``fill``)."""
    batcher = Batcher(1000, 1.0)
    for tp, offsets in parts:
        fill(batcher, tp, offsets)
    batch = batcher.drain("trades")
    assert batch is not None
    return batch


def assert_commits_follow_durability(journal: Journal) -> None:
    """Every committed offset has each message below it durable earlier in the journal."""
    done: set[str] = set()
    last: dict[TP, int] = {}
    for kind, payload in journal.entries:
        if kind in ("durable", "dead"):
            done.update(payload)  # type: ignore[arg-type]
        if kind == "commit":
            for (t, p), upto in payload.items():  # type: ignore[attr-defined]
                missing = [o for o in range(upto) if f"{o}:{t}/{p}" not in done]
                assert not missing, f"{t}[{p}] committed at {upto} before {missing[:5]} were durable"
                assert upto > last.get((t, p), 0), f"{t}[{p}] commit went back to {upto}"
                last[(t, p)] = upto


def test_a_refused_write_is_retried_then_committed_after_it_is_durable() -> None:
    """Two refusals, then the write: the commit comes after the durable write, never before."""
    journal = Journal()
    journal.plan["write"].extend(["refuse", "refuse"])
    cp, offsets = make(journal)
    batch = batch_of((PARTITIONS[0], range(1, 5)))
    cp.submit(batch)
    outcome = cp.finish(timeout=None)
    assert outcome is not None and outcome.write is not None
    assert [k for k, _ in journal.entries] == ["refused", "refused", "durable", "commit"]
    assert offsets.committed == {PARTITIONS[0]: 5}
    assert cp.pressure.state is State.READY
    cp.close()


def test_an_abandoned_batch_commits_nothing() -> None:
    """A batch whose sink keeps refusing past the deadline is abandoned: no commit, sink down."""
    journal = Journal()
    journal.plan["write"].extend(["refuse"] * 1000)
    cp, offsets = make(journal)
    batch = batch_of((PARTITIONS[0], range(1, 5)))
    assert not cp.flush_now(batch, time.monotonic() + 0.05)
    assert offsets.committed == {}
    assert "commit" not in [k for k, _ in journal.entries]
    assert cp.pressure.state is State.DOWN and not cp.pressure.sink_up
    cp.close()


def test_dead_letters_are_acknowledged_before_the_commit() -> None:
    """A refused dead-letter publish is retried; the commit waits for its acknowledgement."""
    journal = Journal()
    journal.plan["write"].append("reject")
    journal.plan["dlq"].extend(["refuse", "refuse"])
    cp, offsets = make(journal)
    batch = batch_of((PARTITIONS[1], range(0, 7)))
    assert cp.flush_now(batch, time.monotonic() + 5)
    kinds = [k for k, _ in journal.entries]
    assert kinds == ["durable", "dead", "commit"]
    assert sorted(journal.entries[1][1]) == ["0:t/1", "1:t/1", "5:t/1"]  # type: ignore[arg-type]
    assert offsets.committed == {PARTITIONS[1]: 7}
    cp.close()


def test_a_fatal_sink_error_commits_nothing() -> None:
    """A fatal sink error surfaces from finish() and nothing is committed."""
    journal = Journal()
    journal.plan["write"].append("fatal")
    cp, offsets = make(journal)
    batch = batch_of((PARTITIONS[0], range(1, 5)))
    cp.submit(batch)
    with pytest.raises(FatalDatabaseError):
        cp.finish(timeout=None)
    assert offsets.committed == {}
    assert not cp.pressure.in_flight
    cp.close()


def test_excluded_partitions_are_not_committed() -> None:
    """A partition excluded while its batch is in flight (its log was recreated) is not committed."""
    journal = Journal()
    journal.plan["write"].extend(["refuse"] * 3)
    cp, offsets = make(journal)
    batch = batch_of((PARTITIONS[0], range(1, 5)), (PARTITIONS[1], range(1, 5)))
    cp.submit(batch)
    cp.exclude([PARTITIONS[0]])
    cp.finish(timeout=None)
    assert offsets.committed == {PARTITIONS[1]: 5}
    cp.close()


SCENARIOS = {
    "ok": {},
    "write refused twice": {"write": ["refuse", "refuse"]},
    "write abandoned": {"write": ["refuse"] * 50},
    "row rejected": {"write": ["reject"]},
    "dead letters refused twice": {"dlq": ["refuse", "refuse"]},
    "dead letters abandoned": {"dlq": ["refuse"] * 50},
    "commit raises": {"commit": ["raise"]},
    "commit refused": {"commit": ["refuse"]},
}


def run_batch(cp: Checkpointer, batch: Batch, scenario: str, journal: Journal) -> bool:
    """Plan ``scenario`` for one batch and put it through steps 1-4; True if committed."""
    for step in journal.plan.values():
        step.clear()
    for step, actions in SCENARIOS[scenario].items():
        journal.plan[step].extend(actions)
    deadline = time.monotonic() + (0.02 if "abandoned" in scenario else 5)
    cp.submit(batch, deadline)
    outcome = cp.settle(deadline)
    return outcome is not None and outcome.write is not None


@pytest.mark.slow  # 60 generated failure sequences, each through real writer threads (2-3 s)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(sorted(SCENARIOS)), st.integers(1, 6), st.integers(0, 1)),
                min_size=1, max_size=12))
def test_no_offset_is_committed_before_a_durable_write_whatever_fails(
    steps: list[tuple[str, int, int]],
) -> None:
    """For any sequence of failures at any step, commits only follow durable writes, in order."""
    journal = Journal()
    cp, offsets = make(journal)
    batcher = Batcher(1000, 1.0)
    position = {tp: 0 for tp in PARTITIONS}
    try:
        for scenario, n, which in steps:
            tp = PARTITIONS[which]
            fill(batcher, tp, range(position[tp], position[tp] + n))
            position[tp] += n
            batch = batcher.drain("trades")
            assert batch is not None
            if not run_batch(cp, batch, scenario, journal):
                for t in batch.offsets():  # abandoned: like a rebalance, consume again from the commit
                    batcher.discard([t])
                    position[t] = offsets.committed.get(t, 0)
        assert_commits_follow_durability(journal)
        assert not cp.pressure.in_flight
    finally:
        cp.close()


def test_a_dead_letter_too_big_for_the_topic_is_cut_and_says_so() -> None:
    """A dead letter's value over DEAD_LETTER_MAX_VALUE is cut to it, the reason naming both sizes."""
    big = DeadLetter("t", 0, 7, b"k", b"x" * (DEAD_LETTER_MAX_VALUE + 1), "not JSON", 1)
    small = DeadLetter("t", 0, 8, None, b"x" * DEAD_LETTER_MAX_VALUE, "not JSON", 1)
    cut = big.fitted(DEAD_LETTER_MAX_VALUE)
    assert cut.value == b"x" * DEAD_LETTER_MAX_VALUE and cut.key == b"k" and cut.offset == 7
    n = DEAD_LETTER_MAX_VALUE
    assert cut.reason == f"not JSON (value cut to its first {n} of {n + 1} bytes)"
    assert small.fitted(DEAD_LETTER_MAX_VALUE) is small
