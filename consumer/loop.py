"""The poll loop of the worker: consume, decode, batch, back-pressure, rebalances, shutdown.

Threads, and why: the asyncio main thread (consumer/worker.py) runs the health server, the
signal handlers and the retention schedule. The poll thread (``Worker.run``, under
``asyncio.to_thread``) owns the Kafka consumer: consume, decode, batch, back-pressure, rebalance
callbacks (librdkafka runs them inside ``consume``) and offset commits. The writer thread (inside
``Checkpointer``) owns the sink and the dead-letter producer. confluent-kafka and psycopg2 are
blocking C libraries that release the GIL, so a plain loop keeps the consumer single-owner and
easy to reason about, while the writer thread lets the next batch be decoded during the
database's work on the previous one; an async wrapper would add a hop per call and no overlap.

Rules:
  1. Offsets move only through the Checkpointer: rows durable first, commit after.
  2. Memory is bounded: librdkafka's prefetch by KAFKA_QUEUED_MAX_KBYTES, the worker's buffers
     by WORKER_BUFFER_MAX_MESSAGES. Past that bound the loop does what the back-pressure state
     says (consumer/backpressure.py): wait for the writer while it is writing to a healthy
     sink, else pause every assigned partition (resuming below half the bound), still polling
     so the group membership stays alive.
  3. Revocation: the batch in flight is finished (retries abandoned when the database is down)
     and committed if durable; the revoked partitions' buffers are flushed and committed while
     the database answers, else dropped uncommitted. Lost partitions commit nothing new.
  4. SIGTERM/SIGINT: stop consuming, flush everything, commit, close: exit 0. If the database
     stays down for WORKER_SHUTDOWN_TIMEOUT_S (or a second signal comes) the rest is left
     uncommitted, to be consumed again: exit 1. A fatal database or Kafka error: exit 1.
  5. A partition whose offsets go back was recreated (a broker that lost its data, a new
     cluster): its buffer is dropped and no offset of its old log is committed (committing one
     would skip messages of the new log); consumption goes on from the new log.
  6. Topics the broker reports unknown while subscribed (the same causes) are created again,
     retried every TOPICS_RETRY_S; with no committed offsets the group starts from the earliest
     offset (kafka.py Rule 2). No restart is needed.
  7. A fatal Kafka error (among them FENCED_INSTANCE_ID: a second worker joined with this
     WORKER_NAME) stops the worker without committing further: exit 1.
  8. A topic whose id changes (the broker came back empty and the topic was created again, by
     this worker or by ingestion) is a new log. librdkafka does not notice a topic recreated
     under the same name (it may keep fetching the old log's positions and receive nothing), so
     the worker replaces its consumer: the buffers of that topic's partitions are written
     without a commit (their offsets belong to the lost log), the in-flight batch commits
     nothing for them, the old consumer is closed and a new one joins the group, which starts
     from the earliest offset of the new log (no offset of it is committed yet). Lost partitions
     (Rule 3) and recreated partitions (Rule 5) likewise write their buffers without a commit
     while the database answers, so a message consumed before its log vanished is not dropped.
  9. The loop never waits on the broker for more than METADATA_TIMEOUT_S: offsets are committed
     asynchronously (kafka.py Rule 6), topics are recreated by a request it polls
     (kafka/topics.py ``TopicCreation``), topic ids likewise (``TopicIds``); ``consume`` is bounded.
     Only ``close`` (at a renewal, Rule 8, which follows an answer of the broker, and at shutdown)
     waits on librdkafka's own bounds.
 10. While nothing is assigned the loop asks for the whole cluster's metadata every
     METADATA_REFRESH_S. A topic created a moment ago may still be unknown to the broker's
     metadata (KRaft applies the creation after acknowledging it); librdkafka's subscription then
     joins with no topic and looks again only after topic.metadata.refresh.interval.ms (30 s).
     A full metadata answer makes it look at once (a partial one does not).
 11. Readiness (consumer/readiness.py): the database answers, partitions are assigned, the broker
     answered within BROKER_SILENCE_S (naming it when not) and the loop turned within LOOP_STALL_S.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from binance_pipeline.common.clock import now_us
from binance_pipeline.common.health import ReadinessCheck
from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.codes import FATAL as FATAL_KAFKA
from binance_pipeline.kafka.codes import MISSING_TOPIC
from binance_pipeline.kafka.topic_ids import TopicIds, changed_ids
from binance_pipeline.kafka.topics import TopicCreation
from consumer.backpressure import WhenFull
from consumer.batcher import Batcher, DeadLetter
from consumer.checkpoint import Checkpointer
from consumer.decode import BOOK_TICKER, GAPS, TRADES, decode
from consumer.errors import DecodeError, FatalDatabaseError, FatalKafkaError, OffsetOrderError
from consumer.metrics import WorkerMetrics
from consumer.readiness import broker_reason, loop_reason

log = logging.getLogger(__name__)
HOUSEKEEPING_S = 5.0
TOPICS_RETRY_S = 2.0
METADATA_REFRESH_S = 1.0
METADATA_TIMEOUT_S = 1.0
TP = tuple[str, int]


class Worker:
    """The poll loop (Rules 1-7); ``run`` blocks until stopped and returns the exit status."""

    def __init__(self, settings: Settings, consumer: Consumer, checkpointer: Checkpointer,
                 metrics: WorkerMetrics, stop: threading.Event,
                 renew: Callable[[], Consumer] | None = None, topic_ids: TopicIds | None = None) -> None:
        self._consumer, self._cp, self._metrics, self.stop_event = consumer, checkpointer, metrics, stop
        self._renew, self._topic_ids = renew, topic_ids  # Rule 8
        self._log_ids: dict[str, str] = {}
        self._tables = {settings.topic_trades: TRADES, settings.topic_book_ticker: BOOK_TICKER,
                        settings.topic_gaps: GAPS}
        self._batcher = Batcher(settings.batch_max_rows, settings.batch_max_seconds)
        self._buffer_max = max(settings.worker_buffer_max_messages, 2 * settings.batch_max_rows)
        self._poll_messages = settings.worker_poll_messages
        self._poll_timeout = min(0.25, settings.batch_max_seconds / 4)
        self._shutdown_timeout = settings.worker_shutdown_timeout_s
        self._revoke_timeout = max(1.0, settings.kafka_session_timeout_ms / 2000)
        self._assigned: set[TP] = set()
        self._paused = self._force = self._failed = self._topics_missing = False
        self._next_housekeeping = self._next_topics_check = self._next_refresh = 0.0
        self._creation: TopicCreation | None = None  # Rules 6, 9: a creation request in flight
        self._turned_at: float | None = None  # Rule 11: when the loop last turned
        self._settings, self._name = settings, settings.worker_name

    def readiness(self) -> list[ReadinessCheck]:
        """Rule 11; read on the health server's thread, never blocking."""
        return [lambda: None if self._cp.pressure.sink_up else "database unreachable",
                lambda: None if self._assigned else "no partitions assigned",
                self._broker_reason,
                lambda: loop_reason(self._turned_at, time.monotonic())]

    def _broker_reason(self) -> str | None:
        ids = self._topic_ids
        if ids is None:
            return None
        return broker_reason(self._settings.kafka_bootstrap_servers, ids.answered_at, ids.last_error,
                             time.monotonic())

    def stop(self) -> None:
        """First call: finish cleanly. Second call: stop waiting for the database."""
        if self.stop_event.is_set():
            self._force = True
            self._cp.abandon()
        self.stop_event.set()

    def run(self) -> int:
        self._subscribe()
        try:
            while not self.stop_event.is_set():
                self._step()
        except (FatalDatabaseError, FatalKafkaError):
            log.exception("fatal error, stopping without committing further")
            self._failed = True
            self._consumer.close()
            self._cp.close()
            return 1
        return self._shutdown()

    def _subscribe(self) -> None:
        self._consumer.subscribe(list(self._tables), on_assign=self._on_assign,
                                 on_revoke=self._on_revoke, on_lost=self._on_lost)

    # -- the loop -----------------------------------------------------------------------------
    def _step(self) -> None:
        """One turn: poll (or wait for the writer), submit what is due, housekeeping."""
        if not self._wait_for_writer():
            self._poll()
        now = self._turned_at = time.monotonic()
        self._submit_due(now)
        if self._topics_missing:
            self._recreate_topics(now)
        if not self._assigned:
            self._refresh_metadata(now)
        self._watch_logs(now)
        if now >= self._next_housekeeping:
            self._housekeeping(now)

    def _wait_for_writer(self) -> bool:
        """Buffers full while the writer catches up: wait on it instead of polling (Rule 2)."""
        full = self._batcher.pending() >= self._buffer_max
        if full and self._cp.pressure.when_full is WhenFull.WAIT:
            self._cp.finish(timeout=self._poll_timeout)
            return True
        self._set_paused(full)
        return False

    def _poll(self) -> None:
        messages = self._consumer.consume(self._poll_messages, self._wait_budget())
        if messages:
            self._route(messages, time.monotonic())
        self._cp.finish()

    def _submit_due(self, now: float) -> None:
        if self._cp.pressure.in_flight:
            return
        due = self._batcher.due(now)
        batch = self._batcher.drain(due[0]) if due else None
        if batch is not None:
            self._cp.submit(batch)

    def _wait_budget(self) -> float:
        """How long a poll may block: never past the moment the oldest buffer falls due."""
        deadline = self._batcher.next_deadline()
        if deadline is None or self._cp.pressure.in_flight:
            return self._poll_timeout
        return min(self._poll_timeout, max(0.001, deadline - time.monotonic()))

    def _route(self, messages: list[Message], now: float) -> None:
        """Buffer each message in its partition's segment (Kafka errors are reported, not buffered)."""
        self._metrics.consumed.inc(len(messages))
        for m in messages:
            error = m.error()
            if error is not None:
                self._kafka_error(error)
                continue
            try:
                self._buffer(m, now)
            except OffsetOrderError as exc:
                self._recreated(exc)
                self._buffer(m, now)

    def _buffer(self, m: Message, now: float) -> None:
        """Decode ``m`` into its partition's buffer; an undecodable one becomes a dead letter."""
        # a message without error always has these (the stubs say Optional for error events)
        topic: str = m.topic()  # type: ignore[assignment]
        partition: int = m.partition()  # type: ignore[assignment]
        offset: int = m.offset()  # type: ignore[assignment]
        value = m.value()
        table = self._tables[topic]
        seg = self._batcher.segment(topic, partition, table, now)
        try:
            row, received = decode(table, value)
        except DecodeError as exc:
            log.warning("%s[%d]@%d undecodable: %s", topic, partition, offset, exc.reason)
            self._batcher.add_dead(seg, DeadLetter(topic, partition, offset, m.key(), value, exc.reason,
                                                   now_us()))
            return
        self._batcher.add(seg, offset, m.key(), value, row, received)  # type: ignore[arg-type]

    def _recreated(self, exc: OffsetOrderError) -> None:
        """A partition's offsets went back: its log was recreated (Rule 5); start it afresh."""
        tp = (exc.topic, exc.partition)
        self._cp.exclude([tp])
        written = self._write_uncommitted([tp], time.monotonic() + self._revoke_timeout)
        self._metrics.partition_resets.inc()
        log.warning("%s; the partition was recreated (empty broker?): %s; no offset of the old log "
                    "will be committed", exc, written)

    def _write_uncommitted(self, tps: list[TP], deadline: float) -> str:
        """Write what is buffered for ``tps`` and commit none of it (Rules 3, 5, 8); says what."""
        written = dropped = 0
        for batch in self._batcher.drain_partitions(tps):
            if self._cp.pressure.sink_up and self._cp.flush_now(batch, deadline, commit=False):
                written += len(batch)
            else:
                dropped += len(batch)
        return f"{written} buffered message(s) written uncommitted, {dropped} dropped uncommitted"

    def _watch_logs(self, now: float) -> None:
        """Rule 8: a subscribed topic with a new id is a new log; replace the consumer."""
        ids = self._topic_ids.poll(now) if self._topic_ids is not None else None
        if not ids:
            return
        changed = changed_ids(self._log_ids, ids)
        if changed and self._renew is not None:
            self._renew_consumer(changed, self._renew)

    def _renew_consumer(self, changed: list[str], renew: Callable[[], Consumer]) -> None:
        stale = sorted(tp for tp in self._assigned if tp[0] in changed)
        if changed:
            log.warning("topic(s) %s have a new id: the broker lost their log (restarted empty?); "
                        "replacing the consumer to read the new log from its start (Rule 8)",
                        ", ".join(changed))
        deadline = time.monotonic() + self._revoke_timeout
        self._cp.exclude(stale)
        self._cp.settle(deadline)
        if stale:
            log.warning("%s: %s", ", ".join(changed), self._write_uncommitted(stale, deadline))
        self._consumer.close()  # revokes the other partitions: flushed and committed (Rule 3)
        self._forget(sorted(self._assigned))
        self._consumer = renew()
        self._paused = False
        self._subscribe()
        self._metrics.consumer_renewals.inc()

    def _kafka_error(self, error: KafkaError) -> None:
        if error.fatal() or error.code() in FATAL_KAFKA:  # librdkafka reports fencing as _FATAL
            raise FatalKafkaError(f"fatal Kafka error (WORKER_NAME={self._name or 'unset'}): {error}")
        if error.code() in MISSING_TOPIC and not self._topics_missing:
            self._topics_missing = True
            log.warning("kafka: %s; creating the missing topics (Rule 6)", error)
            return
        log.warning("kafka: %s", error)

    def _recreate_topics(self, now: float) -> None:
        """The broker lost our topics (an empty broker, a new cluster): create them again (Rules 6, 9)."""
        creation = self._creation
        if creation is None:
            if now >= self._next_topics_check:
                self._creation = TopicCreation(self._settings, timeout=5.0)
            return
        if not creation.done():
            return
        self._creation, self._next_topics_check = None, now + TOPICS_RETRY_S
        failed = creation.failures()
        if failed:
            log.warning("missing topics not created yet (%s); retrying in %.0f s", failed, TOPICS_RETRY_S)
            return
        self._topics_missing = False
        self._metrics.topics_recreated.inc()
        self._next_refresh = now  # the subscription looks at the topics again (Rule 10)

    def _refresh_metadata(self, now: float) -> None:
        """Rule 10: unassigned, ask for the cluster's metadata (bounded: Rule 9)."""
        if now < self._next_refresh:
            return
        self._next_refresh = now + METADATA_REFRESH_S
        try:
            self._consumer.list_topics(timeout=METADATA_TIMEOUT_S)
        except KafkaException as exc:  # no answer now: readiness says so (Rule 11); asked again soon
            log.debug("metadata refresh while unassigned failed: %s", exc)

    def _set_paused(self, full: bool) -> None:
        if full and not self._paused:
            self._consumer.pause(self._consumer.assignment())
            self._paused = True
            log.warning("paused %d partition(s): %d messages buffered, database %s",
                        len(self._assigned), self._batcher.pending(), self._cp.pressure.state.value)
        elif self._paused and self._batcher.pending() < self._buffer_max // 2:
            self._consumer.resume(self._consumer.assignment())
            self._paused = False
            log.info("resumed %d partition(s)", len(self._assigned))
        self._metrics.paused.set(int(self._paused))

    def _housekeeping(self, now: float) -> None:
        self._next_housekeeping = now + HOUSEKEEPING_S
        self._metrics.buffered.set(self._batcher.pending())
        self._cp.ping()
        tps = [TopicPartition(t, p) for t, p in sorted(self._assigned)]
        for tp in self._consumer.position(tps) if tps else []:
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                self._metrics.set_lag(tp.topic, tp.partition, high, tp.offset)

    # -- rebalances (run inside consume(), on the poll thread) --------------------------------
    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(p.topic, p.partition) for p in partitions}
        self._paused = False
        self._metrics.assigned.set(len(self._assigned))
        log.info("assigned %s", _names(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        if self._failed:
            self._batcher.discard(tps)
        else:
            deadline = time.monotonic() + self._revoke_timeout
            self._cp.settle(deadline)
            for batch in self._batcher.drain_partitions(tps):
                if not (self._cp.pressure.sink_up and self._cp.flush_now(batch, deadline)):
                    log.warning("revoked: %d message(s) of %s left uncommitted", len(batch), batch.table)
        self._forget(tps)
        log.info("revoked %s", _names(partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        self._cp.exclude(tps)
        self._cp.settle(time.monotonic())
        written = self._write_uncommitted(tps, time.monotonic() + self._revoke_timeout)
        self._forget(tps)
        log.warning("lost %s; %s", _names(partitions), written)

    def _forget(self, tps: list[TP]) -> None:
        for t, p in tps:
            self._assigned.discard((t, p))
            self._metrics.forget_partition(t, p)
        self._metrics.assigned.set(len(self._assigned))

    # -- shutdown -----------------------------------------------------------------------------
    def _shutdown(self) -> int:
        deadline = time.monotonic() + self._shutdown_timeout
        self._cp.settle(deadline)
        clean = True
        for table in (TRADES, BOOK_TICKER, GAPS):
            batch = self._batcher.drain(table)
            if batch is not None and (self._force or not self._cp.flush_now(batch, deadline)):
                log.warning("shutdown: %d message(s) of %s left uncommitted", len(batch), table)
                clean = False
        self._consumer.close()
        self._cp.close()
        log.info("worker stopped %s", "cleanly" if clean else "with uncommitted messages")
        return 0 if clean else 1


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing"
