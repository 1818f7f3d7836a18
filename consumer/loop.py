"""The poll loop of the worker: a thin executor of consumer/core.py's decisions.

``WorkerCore`` (consumer/core.py) owns the state and decides: what to poll, wait for, pause,
submit, flush (with or without a commit), exclude, create, refresh or renew, and what readiness
says. This module translates confluent-kafka's objects into plain values, feeds them to the core
and executes the actions it returns, rebalance callbacks included (they run inside ``consume``).

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

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from binance_pipeline.common.clock import now_us
from binance_pipeline.common.health import ReadinessCheck
from binance_pipeline.common.settings import WorkerSettings
from binance_pipeline.kafka.codes import FATAL as FATAL_KAFKA
from binance_pipeline.kafka.codes import MISSING_TOPIC
from binance_pipeline.kafka.topic_ids import TopicIds
from binance_pipeline.kafka.topics import TopicCreation
from consumer import actions as act
from consumer.actions import Action, ErrorKind, Fault, Record
from consumer.checkpoint import Checkpointer
from consumer.core import Config, WorkerCore
from consumer.errors import FatalDatabaseError, FatalKafkaError
from consumer.metrics import WorkerMetrics

log = logging.getLogger(__name__)
# librdkafka's error codes, as the core sees them (core Rule 1); fencing comes as _FATAL too
KAFKA_ERRORS = {**dict.fromkeys(MISSING_TOPIC, ErrorKind.MISSING_TOPIC),
                **dict.fromkeys(FATAL_KAFKA, ErrorKind.FATAL)}


class Worker:
    """The poll loop (Rules 1-11); ``run`` blocks until stopped and returns the exit status."""

    def __init__(self, settings: WorkerSettings, consumer: Consumer, checkpointer: Checkpointer,
                 metrics: WorkerMetrics, stop: threading.Event,
                 renew: Callable[[], Consumer] | None = None, topic_ids: TopicIds | None = None) -> None:
        self._consumer, self._cp, self._metrics, self.stop_event = consumer, checkpointer, metrics, stop
        self._renew, self._topic_ids = renew, topic_ids  # Rule 8
        self._creation: TopicCreation | None = None  # Rules 6, 9: a creation request in flight
        self._settings = settings
        self._core = WorkerCore(Config.from_settings(settings, KAFKA_ERRORS, can_renew=renew is not None))

    def readiness(self) -> list[ReadinessCheck]:
        """Rule 11; read on the health server's thread, never blocking."""
        c = self._core
        return [lambda: c.database_reason(self._cp.pressure.state), c.assignment_reason,
                self._broker_reason, lambda: c.loop_reason(time.monotonic())]

    def _broker_reason(self) -> str | None:
        ids = self._topic_ids
        return None if ids is None else self._core.broker_reason(ids.answered_at, ids.last_error,
                                                                time.monotonic())

    def stop(self) -> None:
        """First call: finish cleanly. Second call: stop waiting for the database."""
        self._execute(self._core.stop())
        self.stop_event.set()

    def run(self) -> int:
        self._subscribe()
        try:
            while not self.stop_event.is_set():
                self._step()
        except (FatalDatabaseError, FatalKafkaError):
            log.exception("fatal error, stopping without committing further")
            self._execute(self._core.failed())
            return 1
        self._execute(self._core.shutdown(time.monotonic()))
        return self._core.exit_status()

    def _subscribe(self) -> None:
        self._consumer.subscribe(self._core.topics(), on_assign=self._on_assign,
                                 on_revoke=self._on_revoke, on_lost=self._on_lost)

    # -- the loop -----------------------------------------------------------------------------
    def _step(self) -> None:
        """One turn: poll (or wait for the writer), then what the core decides after it."""
        self._execute(self._core.before_poll(time.monotonic(), self._cp.pressure.state))
        now = time.monotonic()
        self._execute(self._core.tick(now, self._cp.pressure.state))
        creation = self._creation
        if creation is not None and creation.done():
            self._creation = None
            self._execute(self._core.topics_created(creation.failures(), now))
        ids = self._topic_ids.poll(now) if self._topic_ids is not None else None
        if ids:
            self._execute(self._core.ids_seen(ids, now))

    # -- the executor -------------------------------------------------------------------------
    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            self._do(action)

    def _do(self, a: Action) -> None:
        match a:
            case act.Poll():
                self._poll(a)
            case act.WaitForWriter():
                self._cp.finish(timeout=a.timeout)
            case act.Collect():
                self._cp.finish()
            case act.Pause():
                self._consumer.pause(self._consumer.assignment())
            case act.Resume():
                self._consumer.resume(self._consumer.assignment())
            case act.Submit():
                self._cp.submit(a.batch)
            case act.Flush():
                ok = self._core.may_write(a, self._cp.pressure.state) and self._cp.flush_now(
                    a.batch, a.deadline, commit=a.commit)
                self._core.flushed(a, ok)
            case act.Settle():
                self._cp.settle(a.deadline)
            case act.Exclude():
                self._cp.exclude(list(a.partitions))
            case act.Abandon():
                self._cp.abandon()
            case act.CreateTopics():
                self._creation = TopicCreation(self._settings, timeout=5.0)
            case act.RefreshMetadata():
                self._refresh_metadata(a.timeout)
            case act.RenewConsumer():
                self._renew_consumer()
            case act.Housekeeping():
                self._housekeeping(a.partitions)
            case act.Count():
                getattr(self._metrics, a.metric).inc(a.n)
            case act.Gauge():
                getattr(self._metrics, a.metric).set(a.value)
            case act.ForgetPartition():
                self._metrics.forget_partition(*a.tp)
            case act.Fatal():
                raise FatalKafkaError(a.reason)
            case act.CloseConsumer():
                self._consumer.close()
            case act.CloseWriter():
                self._cp.close()

    def _poll(self, a: act.Poll) -> None:
        messages = self._consumer.consume(a.max_messages, a.timeout)
        if messages:
            self._execute(self._core.received([_plain(m) for m in messages], time.monotonic(), now_us()))

    def _renew_consumer(self) -> None:
        """Rule 8: the old consumer's close revokes its partitions (flushed and committed, Rule 3)."""
        if self._renew is None:  # never: the core asks only when it can renew (Config.can_renew)
            return
        self._consumer.close()
        self._consumer = self._renew()
        self._subscribe()

    def _refresh_metadata(self, timeout: float) -> None:
        """Rule 10, bounded (Rule 9)."""
        try:
            self._consumer.list_topics(timeout=timeout)
        except KafkaException as exc:  # no answer now: readiness says so (Rule 11); asked again soon
            log.debug("metadata refresh while unassigned failed: %s", exc)

    def _housekeeping(self, partitions: tuple[tuple[str, int], ...]) -> None:
        self._cp.ping()
        tps = [TopicPartition(t, p) for t, p in partitions]
        for tp in self._consumer.position(tps) if tps else []:
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                self._metrics.set_lag(tp.topic, tp.partition, high, tp.offset)

    # -- rebalances (run inside consume(), on the poll thread) --------------------------------
    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._execute(self._core.assigned(_tps(partitions)))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._execute(self._core.revoked(_tps(partitions), time.monotonic()))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._execute(self._core.lost(_tps(partitions), time.monotonic()))


def _tps(partitions: list[TopicPartition]) -> list[tuple[str, int]]:
    return [(p.topic, p.partition) for p in partitions]


def _plain(m: Message) -> Record | Fault:
    """confluent-kafka's message as the core's plain value (core Rule 1)."""
    error = m.error()
    if error is not None:
        return Fault(error.code(), error.fatal(), str(error))
    # a message without error always has these (the stubs say Optional for error events)
    return Record(m.topic(), m.partition(), m.offset(), m.key(), m.value())  # type: ignore[arg-type]
