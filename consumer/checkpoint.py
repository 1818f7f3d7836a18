"""Flush first, commit after: how a batch becomes durable rows and then committed offsets.

A checkpoint of one batch, in order:
  1. (poll thread) The batcher drains a Batch: every buffered entry of one table, with per
     partition the offset to commit (last + 1). ``submit`` hands it to the writer thread.
  2. (writer thread) Its rows are written in ONE database transaction (``Sink.write``). A
     transient error is retried with jittered exponential backoff (readiness off meanwhile)
     until the transaction commits, or the batch is abandoned (revocation, shutdown timeout).
     Rows the database rejects are isolated there and come back in the outcome.
  3. (writer thread) Its dead letters (undecodable messages and rejected rows) are produced to
     the dead-letter topic and the producer is flushed; retried the same way.
  4. (poll thread) ``finish`` sees 2 and 3 done and commits the offsets synchronously.

Rules:
  1. Offsets are committed only in step 4, so an offset never moves past a row that is not in
     the database or a dead letter the broker has not acknowledged.
  2. At most one batch is in flight, so commits go out in offset order per partition, and the
     poll thread can consume and decode the next batch while this one is written.
  3. An abandoned batch commits nothing: its messages are delivered again (to us or to the
     partition's new owner) and the unique keys make the rewrite a no-op.
  4. A failed commit is logged and counted, not retried: the rows are durable, so the worst
     outcome is a replay that writes nothing new.
  5. The consumer is only used from the poll thread; the writer thread owns the Sink and the
     dead-letter producer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from common.backoff import Backoff
from common.clock import now_us
from common.events import (
    HDR_OFFSET,
    HDR_PARTITION,
    HDR_REASON,
    HDR_RECEIVED_AT,
    HDR_STAGE,
    HDR_TOPIC,
)
from consumer.batcher import Batch, DeadLetter
from consumer.decode import Row
from consumer.errors import DeadLetterError, TransientDatabaseError, WorkerError
from consumer.metrics import WorkerMetrics
from consumer.sink import Sink, WriteOutcome

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    """A batch after steps 2-3: durable (``write`` set) or abandoned (``write`` None)."""

    batch: Batch
    write: WriteOutcome | None



def dead_letter_headers(dead: DeadLetter) -> list[tuple[str, str | bytes | None]]:
    """The dead-letter headers of common/events.py, from the worker stage."""
    return [
        (HDR_REASON, dead.reason.encode()), (HDR_STAGE, b"worker"),
        (HDR_RECEIVED_AT, str(dead.received_at).encode()), (HDR_TOPIC, dead.topic.encode()),
        (HDR_PARTITION, str(dead.partition).encode()), (HDR_OFFSET, str(dead.offset).encode()),
    ]


class Checkpointer:
    """Runs steps 2-3 on a writer thread and step 4 on the caller's (poll) thread."""

    def __init__(self, sink: Sink, producer: Producer, consumer: Consumer, metrics: WorkerMetrics,
                 dead_letter_topic: str, backoff: Callable[[], Backoff]) -> None:
        self._sink, self._producer, self._consumer = sink, producer, consumer
        self._metrics, self._dlq_topic, self._backoff = metrics, dead_letter_topic, backoff
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="writer")
        self._inflight: Future[Outcome] | None = None
        self._abandon = threading.Event()
        self._deadline: float | None = None
        self.db_ok = False

    @property
    def busy(self) -> bool:
        return self._inflight is not None

    def submit(self, batch: Batch, deadline: float | None = None) -> None:
        """Step 1: hand ``batch`` to the writer (only when not ``busy``)."""
        if self._inflight is not None:
            raise RuntimeError("a batch is already in flight")
        self._abandon.clear()
        self._deadline = deadline
        self._inflight = self._executor.submit(self._write, batch)

    def finish(self, timeout: float | None = 0.0) -> Outcome | None:
        """Step 4, when the batch in flight is done (waiting up to ``timeout``; None = forever)."""
        future = self._inflight
        if future is None:
            return None
        try:
            outcome = future.result(timeout=timeout)
        except TimeoutError:
            return None
        finally:
            if future.done():
                self._inflight = None
        if outcome.write is not None:
            self._commit(outcome.batch)
        return outcome

    def settle(self, deadline: float) -> Outcome | None:
        """Finish the batch in flight, abandoning its retries at ``deadline``."""
        if self._inflight is None:
            return None
        outcome = self.finish(timeout=max(0.0, deadline - time.monotonic()))
        if self._inflight is not None:
            self.abandon()
            outcome = self.finish(timeout=None)
        return outcome

    def flush_now(self, batch: Batch, deadline: float) -> bool:
        """Steps 1-4 for ``batch`` synchronously, giving up at ``deadline``; True if committed."""
        self.settle(deadline)
        self.submit(batch, deadline)
        outcome = self.settle(deadline)
        return outcome is not None and outcome.write is not None

    def abandon(self) -> None:
        """Stop retrying the batch in flight; it will finish as abandoned (Rule 3)."""
        self._abandon.set()

    def ping(self) -> None:
        """Check the database from the writer thread when idle (keeps readiness honest)."""
        if self._inflight is None:
            self._executor.submit(self._ping)

    def close(self) -> None:
        self.abandon()
        self._executor.shutdown(wait=True)
        self._sink.close()
        self._producer.flush(5)

    # -- writer thread ------------------------------------------------------------------------
    def _write(self, batch: Batch) -> Outcome:
        rows = batch.rows()
        write = self._retry(lambda: self._timed_write(batch.table, rows), f"write {batch.table}")
        if write is None:
            log.warning("table %s: batch of %d abandoned uncommitted", batch.table, len(batch))
            return Outcome(batch, None)
        stamp = now_us()
        dead = [d for s in batch.segments for d in s.dead]
        dead += [batch.dead_letter_for(i, reason, stamp) for i, reason in write.rejected]
        if dead and self._retry(lambda: self._publish(dead), "dead-letter") is None:
            return Outcome(batch, None)
        self._metrics.dead_letters.labels("undecodable").inc(len(dead) - len(write.rejected))
        self._metrics.dead_letters.labels("rejected_by_database").inc(len(write.rejected))
        return Outcome(batch, write)

    def _timed_write(self, table: str, rows: list[Row]) -> WriteOutcome:
        started = time.monotonic()
        write = self._sink.write(table, rows)
        self.db_ok = True
        self._metrics.flush_seconds.labels(table).observe(time.monotonic() - started)
        self._metrics.flush_rows.labels(table).observe(len(rows))
        self._metrics.rows_written.labels(table).inc(write.inserted)
        self._metrics.rows_duplicate.labels(table).inc(write.skipped)
        return write

    def _retry(self, attempt: Callable[[], T], what: str) -> T | None:
        backoff = self._backoff()
        while True:
            try:
                return attempt()
            except (TransientDatabaseError, DeadLetterError) as exc:
                if isinstance(exc, TransientDatabaseError):
                    self.db_ok = False
                    self._metrics.db_retries.inc()
                delay = backoff.next_delay()
                log.warning("%s failed (%s); retrying in %.2f s", what, exc, delay)
                if self._deadline is not None and time.monotonic() + delay > self._deadline:
                    return None
                if self._abandon.wait(delay):
                    return None

    def _publish(self, dead: list[DeadLetter]) -> bool:
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        for d in dead:
            self._producer.produce(self._dlq_topic, value=d.value, key=d.key,
                                   headers=dead_letter_headers(d), on_delivery=delivered)
        remaining = self._producer.flush(10)
        if remaining or failures:
            raise DeadLetterError(f"{remaining} undelivered, {len(failures)} failed: {failures[:1]}")
        log.info("dead-lettered %d message(s) to %s", len(dead), self._dlq_topic)
        return True

    def _ping(self) -> None:
        try:
            self._sink.ping()
            self.db_ok = True
        except WorkerError as exc:
            self.db_ok = False
            log.warning("database check failed: %s", exc)

    # -- poll thread --------------------------------------------------------------------------
    def _commit(self, batch: Batch) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in batch.offsets().items()]
        try:
            results = self._consumer.commit(offsets=offsets, asynchronous=False) or []
        except KafkaException as exc:
            self._metrics.commit_failures.inc()
            log.warning("offset commit failed (rows are durable; a replay will skip them): %s", exc)
            return
        refused = [tp for tp in results if tp.error is not None]
        if refused:  # per-partition errors come back in the result, not as an exception
            self._metrics.commit_failures.inc(len(refused))
            log.warning("offset commit refused for %s (rows are durable; a replay will skip them)",
                        ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}: {tp.error}" for tp in refused))
        self._metrics.committed(batch.received(), now_us())
        log.debug("committed %s", ", ".join(f"{t}[{p}]@{o}" for (t, p), o in batch.offsets().items()))
