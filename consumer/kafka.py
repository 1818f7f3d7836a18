"""Kafka clients of the worker, configured from the worker's settings, topic creation at start, and the
Kafka side of the checkpoint's seams (``consumer.ports.DeadLetterOut`` and ``OffsetStore``).

Rules:
  1. The consumer never commits on its own: enable.auto.commit=false and
     enable.auto.offset.store=false; offsets move only through checkpoint.Checkpointer.
  2. auto.offset.reset=earliest: a new group starts from the oldest retained message, so a
     group that has never committed loses nothing.
  3. Topics are created at start if missing (whichever stage starts first creates them), with
     TOPIC_PARTITIONS partitions and TOPIC_RETENTION_MS; an existing topic is left as it is.
     The poll loop creates them again when the broker says they are gone (loop.py Rule 6).
  4. WORKER_NAME, when set, is the consumer's group.instance.id (static membership): a worker
     restarted under the same name within the session timeout gets its partitions back at once,
     without a rebalance. A second live worker with the same name fences the first one.
  5. The poll loop watches the subscribed topics' ids (kafka/topic_ids.py ``TopicIds``): a topic
     deleted and created again, or a broker that restarted empty, gets a new id (loop.py Rule 8).
  6. Offsets are committed asynchronously, so the poll loop never waits on the broker for a
     commit (a paused broker held a synchronous commit, and the loop, until it came back). The
     rows are durable before the commit is sent, so only the commit's outcome is late: it arrives
     in ``on_commit`` during the next ``consume``, where a failure is logged and counted
     (checkpoint Rule 4). librdkafka finishes outstanding commits before a rebalance completes and
     before ``close`` returns, so a revocation or a shutdown still commits what was flushed.
"""


from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.events import (
    HDR_OFFSET,
    HDR_PARTITION,
    HDR_REASON,
    HDR_RECEIVED_AT,
    HDR_STAGE,
    HDR_TOPIC,
)
from binance_pipeline.common.settings import WorkerSettings
from binance_pipeline.kafka.config import client_config, durable_producer_config, explain
from binance_pipeline.kafka.topics import create_missing, pipeline_specs
from consumer.batcher import DeadLetter
from consumer.errors import CommitError, DeadLetterError
from consumer.metrics import WorkerMetrics

log = logging.getLogger(__name__)


SOCKET_TIMEOUT_MS = 10_000


def consumer_config(settings: WorkerSettings) -> dict[str, object]:
    return {
        **client_config(settings),
        "group.id": settings.consumer_group,
        "client.id": "consumer.worker",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.kafka_session_timeout_ms,
        "heartbeat.interval.ms": max(100, min(3000, settings.kafka_session_timeout_ms // 3)),
        "max.poll.interval.ms": max(settings.kafka_max_poll_interval_ms, settings.kafka_session_timeout_ms),
        # Pre-fetch memory bounds. Past queued.max.messages.kbytes librdkafka postpones the next
        # fetch by fetch.queue.backoff.ms (1000 ms by default), which starves the worker: refetch
        # soon instead. A fetch answers with up to max.partition.fetch.bytes per partition, so that
        # bound (not the queue's) decides the peak memory; it must be >= the producers' batches.
        "queued.max.messages.kbytes": settings.kafka_queued_max_kbytes,
        "queued.min.messages": 10_000,
        "fetch.queue.backoff.ms": 10,
        "fetch.wait.max.ms": settings.kafka_fetch_wait_max_ms,
        "max.partition.fetch.bytes": settings.kafka_max_partition_fetch_bytes,
        "fetch.max.bytes": max(4 << 20, settings.kafka_max_partition_fetch_bytes),
        "topic.metadata.refresh.interval.ms": 30_000,
        # A request a frozen broker never answers (SIGSTOP, a long pause) must not hold the group
        # coordinator's connection for librdkafka's default 60 s: an offset commit in flight there
        # holds back the heartbeats and the rejoin, so the worker stayed out of its group for over
        # a minute after the broker came back. Every request here answers in milliseconds.
        "socket.timeout.ms": SOCKET_TIMEOUT_MS,
        **({"group.instance.id": settings.worker_name} if settings.worker_name else {}),
    }


def producer_config(settings: WorkerSettings) -> dict[str, object]:
    return {
        **durable_producer_config(settings),
        "client.id": "consumer.worker.dead-letter",
        "linger.ms": 5,
    }


OnCommit = Callable[[KafkaError | None, list[TopicPartition]], None]


def make_consumer(settings: WorkerSettings, on_commit: OnCommit) -> Consumer:
    return Consumer({**consumer_config(settings), "error_cb": _error_logger(settings, "consumer"),
                     "on_commit": on_commit})


def make_producer(settings: WorkerSettings) -> Producer:
    on_error = _error_logger(settings, "dead-letter producer")
    return Producer({**producer_config(settings), "error_cb": on_error})


def _error_logger(settings: WorkerSettings, client: str) -> Callable[[KafkaError], None]:
    """librdkafka's client-level errors, with security failures said plainly (never a secret)."""
    def on_error(err: KafkaError) -> None:
        why = explain(err, settings)
        if why:
            log.error("kafka %s: %s", client, why)
        else:
            log.warning("kafka %s error: %s", client, err.str())
    return on_error


def ensure_topics(settings: WorkerSettings, stop: threading.Event) -> bool:
    """Create the pipeline's missing topics, retrying until done or ``stop``; True when done."""
    backoff = Backoff(0.5, 10.0)
    while not stop.is_set():
        failed = create_missing(settings, pipeline_specs(settings))
        if not failed:
            return True
        delay = backoff.next_delay()
        log.warning("topics not created yet (%s); retrying in %.1f s", failed, delay)
        stop.wait(delay)
    return False


def dead_letter_headers(dead: DeadLetter) -> list[tuple[str, str | bytes | None]]:
    """The dead-letter headers of binance_pipeline/common/events.py, from the worker stage."""
    return [
        (HDR_REASON, dead.reason.encode()), (HDR_STAGE, b"worker"),
        (HDR_RECEIVED_AT, str(dead.received_at).encode()), (HDR_TOPIC, dead.topic.encode()),
        (HDR_PARTITION, str(dead.partition).encode()), (HDR_OFFSET, str(dead.offset).encode()),
    ]


class KafkaDeadLetters:
    """``ports.DeadLetterOut`` on the dead-letter topic: returns once the broker acknowledged all."""

    def __init__(self, producer: Producer, topic: str, flush_timeout_s: float = 10.0) -> None:
        self._producer, self._topic, self._flush_timeout = producer, topic, flush_timeout_s

    def publish(self, dead: list[DeadLetter]) -> None:
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        for d in dead:
            self._produce(d, delivered)
        remaining = self._producer.flush(self._flush_timeout)
        if remaining or failures:
            raise DeadLetterError(f"{remaining} undelivered, {len(failures)} failed: {failures[:1]}")
        log.info("dead-lettered %d message(s) to %s", len(dead), self._topic)

    def _produce(self, d: DeadLetter, delivered: Callable[[KafkaError | None, Message], None]) -> None:
        """One dead letter; a full queue is waited out (bounded), any refusal is a ``DeadLetterError``
        (retried by the checkpoint), never an exception that would stop the writer thread."""
        deadline = time.monotonic() + self._flush_timeout
        while True:
            try:
                self._producer.produce(self._topic, value=d.value, key=d.key,
                                       headers=dead_letter_headers(d), on_delivery=delivered)
            except BufferError as exc:
                if time.monotonic() >= deadline:
                    raise DeadLetterError(f"producer queue full for {self._flush_timeout:.0f} s") from exc
                self._producer.poll(0.1)
            except KafkaException as exc:
                raise DeadLetterError(f"the producer refused a dead letter: {exc}") from exc
            else:
                return

    def close(self) -> None:
        self._producer.flush(5)


class KafkaOffsets:
    """``ports.OffsetStore`` on the consumer: asynchronous commits of explicit offsets (Rule 6).

    ``consumer`` is set by ``rebind`` once the consumer exists (it takes ``on_commit`` at birth).
    """

    def __init__(self, metrics: WorkerMetrics) -> None:
        self._consumer: Consumer | None = None
        self._metrics = metrics

    def rebind(self, consumer: Consumer) -> Consumer:
        """Commit through ``consumer`` from now on (the loop replaced its consumer); returns it."""
        self._consumer = consumer
        return consumer

    def commit(self, offsets: dict[tuple[str, int], int]) -> list[str]:
        """Send the commit; its failures are reported by ``on_commit`` later, so none come back here."""
        if self._consumer is None:
            raise CommitError("no consumer bound")
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self._consumer.commit(offsets=tps, asynchronous=True)
        except KafkaException as exc:
            raise CommitError(str(exc)) from exc
        return []

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's report of one commit (poll thread): failures are logged and counted."""
        failed = [f"{tp.topic}[{tp.partition}]@{tp.offset}: {tp.error}" for tp in partitions if tp.error]
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            failed = failed or [err.str()]
        if failed:
            self._metrics.commit_failures.inc(len(failed))
            log.warning("offset commit failed (the rows are durable; a replay writes nothing new): %s",
                        "; ".join(failed[:3]))

