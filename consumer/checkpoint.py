"""Flush first, commit after: how a batch becomes durable rows and then committed offsets.

A checkpoint of one batch, in order:
  1. (poll thread) The batcher drains a Batch: every buffered entry of one table, with per
     partition the offset to commit (last + 1). ``submit`` hands it to the writer thread.
  2. (writer thread) Its rows are written in ONE transaction (``Sink.write``). A refusal
     (``SinkBackpressureError``) is retried with jittered exponential backoff, at least the
     sink's ``retry_after``, until the write is durable or the batch is abandoned (revocation,
     shutdown timeout). Rows the sink rejects are isolated there and come back in the outcome.
  3. (writer thread) Its dead letters (undecodable messages and rejected rows) are published
     (``DeadLetterOut.publish``, acknowledged by the broker); retried the same way.
  4. (poll thread) ``finish`` sees 2 and 3 done and commits the offsets (``OffsetStore``).

Rules:
  1. Offsets are committed only in step 4, so an offset never moves past a row that is not
     durable or a dead letter the broker has not acknowledged.
  2. At most one batch is in flight, so commits go out in offset order per partition, and the
     poll thread can consume and decode the next batch while this one is written.
  3. An abandoned batch commits nothing: its messages are delivered again (to us or to the
     partition's new owner) and the unique keys make the rewrite a no-op.
  4. A failed commit is logged and counted, not retried: the rows are durable, so the worst
     outcome is a replay that writes nothing new.
  5. The OffsetStore is only used from the poll thread; the writer thread owns the Sink and the
     DeadLetterOut. ``pressure`` (consumer/backpressure.py) is the one state both threads
     update; nothing else is shared.
  6. The Checkpointer knows its collaborators only by the protocols of consumer/ports.py.
  7. A dead letter always fits the dead-letter topic: a value over DEAD_LETTER_MAX_VALUE bytes is
     cut to that (said in its reason). Whole, a message near the broker's limit plus the dead-letter
     headers is refused by the producer (MSG_SIZE_TOO_LARGE), and that stopped the worker on it
     at every restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.clock import now_us
from consumer.backpressure import Backpressure, Event
from consumer.batcher import Batch
from consumer.decode import Row
from consumer.errors import CommitError, DeadLetterError, SinkBackpressureError, WorkerError
from consumer.metrics import WorkerMetrics
from consumer.ports import DeadLetterOut, OffsetStore, Sink, WriteOutcome

log = logging.getLogger(__name__)
T = TypeVar("T")
DEAD_LETTER_MAX_VALUE = 900_000  # bytes: under librdkafka's message.max.bytes (1,000,000) with headers


class _Abandoned(Exception):  # a signal inside the writer thread, never raised out of it
    """The batch in flight stops retrying (Rule 3)."""


@dataclass(frozen=True)
class Outcome:
    """A batch after steps 2-3: durable (``write`` set) or abandoned (``write`` None)."""

    batch: Batch
    write: WriteOutcome | None


class Checkpointer:
    """Runs steps 2-3 on a writer thread and step 4 on the caller's (poll) thread."""

    def __init__(self, sink: Sink, dead_letters: DeadLetterOut, offsets: OffsetStore,
                 metrics: WorkerMetrics, backoff: Callable[[], Backoff]) -> None:
        self._sink, self._dead_letters, self._offsets = sink, dead_letters, offsets
        self._metrics, self._backoff = metrics, backoff
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="writer")
        self._inflight: Future[Outcome] | None = None
        self._abandon = threading.Event()
        self._deadline: float | None = None
        self._excluded: set[tuple[str, int]] = set()  # poll thread: partitions not to commit
        self.pressure = Backpressure()

    def submit(self, batch: Batch, deadline: float | None = None) -> None:
        """Step 1: hand ``batch`` to the writer (only when nothing is in flight)."""
        self.pressure.on(Event.SUBMIT)  # raises TransitionError if a batch is in flight
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
                self.pressure.on(Event.FINISHED)
        if outcome.write is not None:
            self._commit(outcome.batch)
        self._excluded.clear()
        return outcome

    def exclude(self, partitions: list[tuple[str, int]]) -> None:
        """The batch in flight must not commit these partitions (their log was recreated)."""
        if self._inflight is not None:
            self._excluded.update(partitions)

    def settle(self, deadline: float) -> Outcome | None:
        """Finish the batch in flight, abandoning its retries at ``deadline``."""
        if self._inflight is None:
            return None
        outcome = self.finish(timeout=max(0.0, deadline - time.monotonic()))
        if self._inflight is not None:
            self.abandon()
            outcome = self.finish(timeout=None)
        return outcome

    def flush_now(self, batch: Batch, deadline: float, commit: bool = True) -> bool:
        """Steps 1-4 for ``batch`` synchronously, giving up at ``deadline``; True if written.

        ``commit=False`` writes the rows and commits nothing: for messages whose partition the
        worker no longer owns, or whose log the broker lost (their offsets mean nothing now).
        """
        self.settle(deadline)
        self.submit(batch, deadline)
        if not commit:
            self._excluded.update(batch.offsets())
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
        self._dead_letters.close()

    # -- writer thread ------------------------------------------------------------------------
    def _write(self, batch: Batch) -> Outcome:
        try:
            write = self._retry(lambda: self._timed_write(batch.table, batch.rows()), f"write {batch.table}")
            stamp = now_us()
            dead = [d for s in batch.segments for d in s.dead]
            dead += [batch.dead_letter_for(i, reason, stamp) for i, reason in write.rejected]
            dead = [d.fitted(DEAD_LETTER_MAX_VALUE) for d in dead]  # Rule 7
            if dead:
                self._retry(lambda: self._dead_letters.publish(dead), "dead-letter")
        except _Abandoned:
            log.warning("table %s: batch of %d abandoned uncommitted", batch.table, len(batch))
            return Outcome(batch, None)
        self._metrics.dead_letters.labels("undecodable").inc(len(dead) - len(write.rejected))
        self._metrics.dead_letters.labels("rejected_by_database").inc(len(write.rejected))
        return Outcome(batch, write)

    def _timed_write(self, table: str, rows: list[Row]) -> WriteOutcome:
        started = time.monotonic()
        write = self._sink.write(table, rows)
        self.pressure.on(Event.WRITTEN)
        self._metrics.flush_seconds.labels(table).observe(time.monotonic() - started)
        self._metrics.flush_rows.labels(table).observe(len(rows))
        self._metrics.rows_written.labels(table).inc(write.inserted)
        self._metrics.rows_duplicate.labels(table).inc(write.skipped)
        return write

    def _retry(self, attempt: Callable[[], T], what: str) -> T:
        """``attempt()`` until it succeeds; raise _Abandoned once abandoned or past the deadline."""
        backoff = self._backoff()
        while True:
            try:
                return attempt()
            except (SinkBackpressureError, DeadLetterError) as exc:
                delay = backoff.next_delay()
                if isinstance(exc, SinkBackpressureError):
                    self.pressure.on(Event.REFUSED, exc.retry_after)
                    self._metrics.db_retries.inc()
                    delay = max(delay, exc.retry_after or 0.0)
                log.warning("%s failed (%s); retrying in %.2f s", what, exc, delay)
                if self._deadline is not None and time.monotonic() + delay > self._deadline:
                    raise _Abandoned from exc
                if self._abandon.wait(delay):
                    raise _Abandoned from exc

    def _ping(self) -> None:
        try:
            self._sink.ping()
        except WorkerError as exc:
            self.pressure.on(Event.PING_FAILED)
            log.warning("database check failed: %s", exc)
        else:
            self.pressure.on(Event.PING_OK)

    # -- poll thread --------------------------------------------------------------------------
    def _commit(self, batch: Batch) -> None:
        offsets = {tp: o for tp, o in batch.offsets().items() if tp not in self._excluded}
        if not offsets:
            return
        try:
            refused = self._offsets.commit(offsets)
        except CommitError as exc:
            self._metrics.commit_failures.inc()
            log.warning("offset commit failed (rows are durable; a replay will skip them): %s", exc)
            return
        if refused:
            self._metrics.commit_failures.inc(len(refused))
            log.warning("offset commit refused for %s (rows are durable; a replay will skip them)",
                        ", ".join(refused))
        self._metrics.committed(batch.received(), now_us())
        log.debug("committed %s", ", ".join(f"{t}[{p}]@{o}" for (t, p), o in offsets.items()))
