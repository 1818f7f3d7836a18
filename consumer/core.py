"""The worker's decisions, sans I/O: events in, actions out. consumer/loop.py only executes them.

Like websockets' ``protocol.py`` or h11's ``Connection``: one object owns the poll loop's state
(the batcher, the assigned partitions, pause, missing topics, known topic ids, timers, stop
requests) and every input returns the actions to run, in order. Inputs: a turn of the loop
(``before_poll``, ``received``, ``tick``), the broker's answers (``topics_created``, ``ids_seen``),
rebalances (``assigned``, ``revoked``, ``lost``), write results (``may_write``, ``flushed``),
stops and fatal errors (``stop``, ``failed``, ``shutdown``), readiness (``*_reason``).

Rules (loop.py's Rules in brackets; the module docstring there says why each exists):
  1. No I/O, no clock, no threads: ``now`` (monotonic s) and ``now_us`` (wall µs) are passed in;
     Kafka messages and errors arrive as plain values (``Record``, ``Fault``) and Kafka's error
     codes as data (``Config.kafka_errors``); the back-pressure state as ``backpressure.State``.
     Its own imports are checked (tests/consumer/test_core.py). Modules it builds on still load
     libraries it never calls: ``changed_ids`` sits beside the admin client in kafka/topic_ids.py,
     errors.py imports psycopg2 for SQLSTATEs, backpressure.py a lock.
  2. Offsets move only through ``Submit``, ``Flush`` and ``Settle``, which the Checkpointer runs:
     rows durable first, commit after [1]. Whether a ``Flush`` commits is ``FLUSHES[why]``.
  3. Buffers past ``buffer_max``: ``WaitForWriter`` while the state says WAIT, else ``Pause``
     (once), ``Resume`` below half the bound; a poll never waits past the oldest buffer's due
     time [2].
  4. Revoked partitions are flushed and committed; lost ones, recreated ones (offsets going
     back) and a renewed topic's ones are written uncommitted; after a fatal error nothing is
     written [3, 5, 8]. A ``Flush`` writes only while the database answers, except at shutdown,
     which waits for it until the deadline unless a second stop came [4].
  5. A missing-topic error asks for ``CreateTopics`` once; a failed creation is asked again after
     TOPICS_RETRY_S; a success asks for ``RefreshMetadata`` at once [6, 10].
  6. A fatal Kafka error is ``Fatal`` and nothing after it in that poll is buffered [7].
  7. A topic id that changes: ``RenewConsumer`` after its stale buffers are written uncommitted [8].
  8. While nothing is assigned: ``RefreshMetadata`` every METADATA_REFRESH_S, bounded [9, 10].
  9. ``stop`` is the one input called from another thread (the signal handler's): it only counts
     the stops and asks for ``Abandon`` at the second [4].
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from binance_pipeline.kafka.topic_ids import changed_ids
from consumer.actions import (
    FLUSHES,
    TP,
    Abandon,
    Action,
    CloseConsumer,
    CloseWriter,
    Collect,
    Count,
    CreateTopics,
    ErrorKind,
    Exclude,
    Fatal,
    Fault,
    Flush,
    ForgetPartition,
    Gauge,
    Housekeeping,
    Pause,
    Poll,
    Record,
    RefreshMetadata,
    RenewConsumer,
    Resume,
    Settle,
    Submit,
    WaitForWriter,
    Why,
)
from consumer.backpressure import IN_FLIGHT, SINK_UP, WHEN_FULL, State, WhenFull
from consumer.batcher import Batcher, DeadLetter
from consumer.decode import BOOK_TICKER, GAPS, TRADES, decode
from consumer.errors import DecodeError, OffsetOrderError
from consumer.readiness import broker_reason, loop_reason

if TYPE_CHECKING:
    from binance_pipeline.common.settings import WorkerSettings

log = logging.getLogger(__name__)
HOUSEKEEPING_S = 5.0
TOPICS_RETRY_S = 2.0
METADATA_REFRESH_S = 1.0
METADATA_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Config:
    """What the core needs to know of the settings."""

    tables: Mapping[str, str]  # topic -> table
    kafka_errors: Mapping[int, ErrorKind]  # Kafka error code -> meaning (Rule 1)
    batch_max_rows: int = 10_000
    batch_max_seconds: float = 1.0
    buffer_max: int = 50_000
    poll_messages: int = 10_000
    poll_timeout: float = 0.25
    shutdown_timeout: float = 30.0
    revoke_timeout: float = 5.0
    servers: str = ""
    worker_name: str = ""
    can_renew: bool = True

    @classmethod
    def from_settings(
        cls, s: WorkerSettings, kafka_errors: Mapping[int, ErrorKind], can_renew: bool
    ) -> Config:
        return cls(
            tables={s.topic_trades: TRADES, s.topic_book_ticker: BOOK_TICKER, s.topic_gaps: GAPS},
            kafka_errors=kafka_errors, batch_max_rows=s.batch_max_rows,
            batch_max_seconds=s.batch_max_seconds,
            buffer_max=max(s.worker_buffer_max_messages, 2 * s.batch_max_rows),
            poll_messages=s.worker_poll_messages, poll_timeout=min(0.25, s.batch_max_seconds / 4),
            shutdown_timeout=s.worker_shutdown_timeout_s,
            revoke_timeout=max(1.0, s.kafka_session_timeout_ms / 2000),
            servers=s.kafka_bootstrap_servers, worker_name=s.worker_name, can_renew=can_renew)


class WorkerCore:
    """All of the poll loop's state and decisions (Rules 1-9)."""

    def __init__(self, config: Config) -> None:
        self._cfg = config
        self._batcher = Batcher(config.batch_max_rows, config.batch_max_seconds)
        self._assigned: set[TP] = set()
        self._log_ids: dict[str, str] = {}
        self._paused = self._topics_missing = self._creating = self._failed = False
        self._stops, self._clean = 0, True
        self._next_housekeeping = self._next_topics_check = self._next_refresh = 0.0
        self._turned_at: float | None = None

    def topics(self) -> list[str]:
        """The topics to subscribe to."""
        return list(self._cfg.tables)

    def pending(self) -> int:
        return self._batcher.pending()

    # -- a turn of the loop ---------------------------------------------------------------------
    def before_poll(self, now: float, state: State) -> list[Action]:
        """Rule 3: wait for the writer, or pause/resume and poll with a bounded budget."""
        full = self._batcher.pending() >= self._cfg.buffer_max
        if full and WHEN_FULL[state] is WhenFull.WAIT:
            return [WaitForWriter(self._cfg.poll_timeout)]
        return [*self._pause(full, state), Poll(self._cfg.poll_messages, self._budget(now, state)),
                Collect()]

    def received(self, items: Sequence[Record | Fault], now: float, now_us: int) -> list[Action]:
        """Buffer each record in its partition's segment; Kafka errors are judged (Rules 5, 6)."""
        actions: list[Action] = [Count("consumed", len(items))]
        for item in items:
            more = self._fault(item) if isinstance(item, Fault) else self._buffer(item, now, now_us)
            actions += more
            if more and isinstance(more[-1], Fatal):
                break
        return actions

    def tick(self, now: float, state: State) -> list[Action]:
        """After a poll: submit what is due, topics, metadata, housekeeping."""
        self._turned_at = now
        actions = self._submit_due(now, state)
        if self._topics_missing:
            actions += self._create_topics(now)
        if not self._assigned:
            actions += self._refresh(now)
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + HOUSEKEEPING_S
            actions += [Gauge("buffered", self._batcher.pending()),
                        Housekeeping(tuple(sorted(self._assigned)))]
        return actions

    # -- the broker's answers -------------------------------------------------------------------
    def topics_created(self, failures: Mapping[str, str], now: float) -> list[Action]:
        """The creation request answered: retry later, or look at the topics at once (Rule 5)."""
        self._creating, self._next_topics_check = False, now + TOPICS_RETRY_S
        if failures:
            log.warning("missing topics not created yet (%s); retrying in %.0f s", dict(failures),
                        TOPICS_RETRY_S)
            return []
        self._topics_missing, self._next_refresh = False, now
        return [Count("topics_recreated")]

    def ids_seen(self, ids: Mapping[str, str], now: float) -> list[Action]:
        """Rule 7: a subscribed topic with a new id is a new log; replace the consumer."""
        changed = changed_ids(self._log_ids, dict(ids))
        if not changed or not self._cfg.can_renew:
            return []
        log.warning("topic(s) %s have a new id: the broker lost their log (restarted empty?); "
                    "replacing the consumer to read the new log from its start (Rule 8)", ", ".join(changed))
        stale = tuple(sorted(tp for tp in self._assigned if tp[0] in changed))
        deadline = now + self._cfg.revoke_timeout
        actions: list[Action] = [Exclude(stale), Settle(deadline),
                                 *self._flushes(stale, Why.RENEWED, deadline), RenewConsumer(),
                                 *self._forget(sorted(self._assigned))]
        self._paused = False
        return [*actions, Count("consumer_renewals")]

    # -- rebalances (inside the consumer's poll) ------------------------------------------------
    def assigned(self, tps: Iterable[TP]) -> list[Action]:
        tps = list(tps)
        self._assigned |= set(tps)
        self._paused = False
        log.info("assigned %s", _names(tps))
        return [Gauge("assigned", len(self._assigned))]

    def revoked(self, tps: Iterable[TP], now: float) -> list[Action]:
        """Flushed and committed while the database answers; nothing after a fatal error (Rule 4)."""
        tps = list(tps)
        log.info("revoked %s", _names(tps))
        if self._failed:
            self._batcher.discard(tps)
            return self._forget(tps)
        deadline = now + self._cfg.revoke_timeout
        return [Settle(deadline), *self._flushes(tps, Why.REVOKED, deadline), *self._forget(tps)]

    def lost(self, tps: Iterable[TP], now: float) -> list[Action]:
        """Written uncommitted: their offsets may belong to another member now (Rule 4)."""
        tps = tuple(tps)
        log.warning("lost %s; their buffers are written without a commit", _names(tps))
        deadline = now + self._cfg.revoke_timeout
        return [Exclude(tps), Settle(now), *self._flushes(tps, Why.LOST, deadline), *self._forget(tps)]

    # -- writes ---------------------------------------------------------------------------------
    def may_write(self, flush: Flush, state: State) -> bool:
        """Rule 4: only while the database answers; at shutdown until the deadline or a 2nd stop."""
        waits = FLUSHES[flush.why][1]
        return self._stops < 2 if waits else state in SINK_UP

    def flushed(self, flush: Flush, written: bool) -> None:
        """Say what became of a flushed batch; one left uncommitted at shutdown makes it unclean."""
        batch, why = flush.batch, flush.why.value
        if written and not flush.commit:
            log.warning("%s: %d message(s) of %s written uncommitted", why, len(batch), batch.table)
        elif not written:
            self._clean = self._clean and flush.why is not Why.SHUTDOWN
            log.warning("%s: %d message(s) of %s left uncommitted", why, len(batch), batch.table)

    # -- stopping -------------------------------------------------------------------------------
    def stop(self) -> list[Action]:
        """First stop: finish cleanly. Second: stop waiting for the database (Rule 9)."""
        self._stops += 1
        return [Abandon()] if self._stops > 1 else []

    def failed(self) -> list[Action]:
        """A fatal Kafka or database error: close without committing further (Rule 6)."""
        self._failed = True
        return [CloseConsumer(), CloseWriter()]

    def shutdown(self, now: float) -> list[Action]:
        """Flush everything (committing), then close; ``exit_status`` says how it went."""
        deadline = now + self._cfg.shutdown_timeout
        batches = [self._batcher.drain(table) for table in (TRADES, BOOK_TICKER, GAPS)]
        flushes = [Flush(b, deadline, Why.SHUTDOWN) for b in batches if b is not None]
        return [Settle(deadline), *flushes, CloseConsumer(), CloseWriter()]

    def exit_status(self) -> int:
        log.info("worker stopped %s", "cleanly" if self._clean else "with uncommitted messages")
        return 0 if self._clean else 1

    # -- readiness (read on the health server's thread) -----------------------------------------
    def database_reason(self, state: State) -> str | None:
        return None if state in SINK_UP else "database unreachable"

    def assignment_reason(self) -> str | None:
        return None if self._assigned else "no partitions assigned"

    def broker_reason(self, answered_at: float, last_error: str, now: float) -> str | None:
        return broker_reason(self._cfg.servers, answered_at, last_error, now)

    def loop_reason(self, now: float) -> str | None:
        return loop_reason(self._turned_at, now)

    # -- steps ----------------------------------------------------------------------------------
    def _pause(self, full: bool, state: State) -> list[Action]:
        actions: list[Action] = []
        if full and not self._paused:
            self._paused = True
            actions.append(Pause())
            log.warning("paused %d partition(s): %d messages buffered, database %s",
                        len(self._assigned), self._batcher.pending(), state.value)
        elif self._paused and self._batcher.pending() < self._cfg.buffer_max // 2:
            self._paused = False
            actions.append(Resume())
            log.info("resumed %d partition(s)", len(self._assigned))
        return [*actions, Gauge("paused", int(self._paused))]

    def _budget(self, now: float, state: State) -> float:
        """How long a poll may block: never past the moment the oldest buffer falls due."""
        deadline = self._batcher.next_deadline()
        if deadline is None or state in IN_FLIGHT:
            return self._cfg.poll_timeout
        return min(self._cfg.poll_timeout, max(0.001, deadline - now))

    def _submit_due(self, now: float, state: State) -> list[Action]:
        if state in IN_FLIGHT:
            return []
        due = self._batcher.due(now)
        batch = self._batcher.drain(due[0]) if due else None
        return [Submit(batch)] if batch is not None else []

    def _fault(self, fault: Fault) -> list[Action]:
        kind = ErrorKind.FATAL if fault.fatal else self._cfg.kafka_errors.get(fault.code, ErrorKind.LOG)
        if kind is ErrorKind.FATAL:
            name = self._cfg.worker_name or "unset"
            return [Fatal(f"fatal Kafka error (WORKER_NAME={name}): {fault.text}")]
        if kind is ErrorKind.MISSING_TOPIC and not self._topics_missing:
            self._topics_missing = True
            log.warning("kafka: %s; creating the missing topics (Rule 6)", fault.text)
        else:
            log.warning("kafka: %s", fault.text)
        return []

    def _buffer(self, record: Record, now: float, now_us: int) -> list[Action]:
        try:
            self._add(record, now, now_us)
        except OffsetOrderError as exc:
            actions = self._recreated(exc, now)
            self._add(record, now, now_us)
            return actions
        return []

    def _add(self, r: Record, now: float, now_us: int) -> None:
        """Decode ``r`` into its partition's buffer; an undecodable one becomes a dead letter."""
        table = self._cfg.tables[r.topic]
        seg = self._batcher.segment(r.topic, r.partition, table, now)
        try:
            row, received = decode(table, r.value)
        except DecodeError as exc:
            log.warning("%s[%d]@%d undecodable: %s", r.topic, r.partition, r.offset, exc.reason)
            self._batcher.add_dead(seg, DeadLetter(r.topic, r.partition, r.offset, r.key, r.value,
                                                   exc.reason, now_us))
            return
        self._batcher.add(seg, r.offset, r.key, r.value, row, received)  # type: ignore[arg-type]

    def _recreated(self, exc: OffsetOrderError, now: float) -> list[Action]:
        """A partition's offsets went back: its log was recreated; start it afresh (Rule 4)."""
        tp = (exc.topic, exc.partition)
        log.warning("%s; the partition was recreated (empty broker?): its buffer is written without "
                    "a commit, no offset of the old log will be committed", exc)
        flushes = self._flushes([tp], Why.RECREATED, now + self._cfg.revoke_timeout)
        return [Exclude((tp,)), *flushes, Count("partition_resets")]

    def _create_topics(self, now: float) -> list[Action]:
        if self._creating or now < self._next_topics_check:
            return []
        self._creating = True
        return [CreateTopics()]

    def _refresh(self, now: float) -> list[Action]:
        if now < self._next_refresh:
            return []
        self._next_refresh = now + METADATA_REFRESH_S
        return [RefreshMetadata(METADATA_TIMEOUT_S)]

    def _flushes(self, tps: Iterable[TP], why: Why, deadline: float) -> list[Action]:
        return [Flush(b, deadline, why) for b in self._batcher.drain_partitions(tps)]

    def _forget(self, tps: Iterable[TP]) -> list[Action]:
        actions: list[Action] = []
        for tp in tps:
            self._assigned.discard(tp)
            actions.append(ForgetPartition(tp))
        return [*actions, Gauge("assigned", len(self._assigned))]


def _names(tps: Iterable[TP]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in tps) or "nothing"
