"""Stage 2 entry point: ``python -m consumer.worker`` (Kafka -> TimescaleDB).

Threads, and why: the asyncio main thread runs the health server, the signal handlers and
the retention schedule. The poll thread (``Worker.run``, under ``asyncio.to_thread``) owns the
Kafka consumer: consume, decode, batch, back-pressure, rebalance callbacks (librdkafka runs
them inside ``consume``) and offset commits. The writer thread (inside ``Checkpointer``) owns
the database connection and the dead-letter producer. confluent-kafka and psycopg2 are
blocking C libraries that release the GIL, so a plain loop keeps the consumer single-owner and
easy to reason about, while the writer thread lets the next batch be decoded during the
database's work on the previous one; an async wrapper would add a hop per call and no overlap.

Rules:
  1. Offsets move only through the Checkpointer: rows durable first, commit after.
  2. Memory is bounded: librdkafka's prefetch by KAFKA_QUEUED_MAX_KBYTES, the worker's buffers
     by WORKER_BUFFER_MAX_MESSAGES. Past that bound the poll thread waits for the writer while
     the database is healthy, and pauses every assigned partition while it is not (resuming
     below half the bound), still polling so the group membership stays alive.
  3. Revocation: the batch in flight is finished (retries abandoned when the database is down)
     and committed if durable; the revoked partitions' buffers are flushed and committed while
     the database answers, else dropped uncommitted. Lost partitions commit nothing new.
  4. SIGTERM/SIGINT: stop consuming, flush everything, commit, close: exit 0. If the database
     stays down for WORKER_SHUTDOWN_TIMEOUT_S (or a second signal comes) the rest is left
     uncommitted, to be consumed again: exit 1. A fatal database error: exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import threading
import time

import psycopg2
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

import db.migrate
from common.backoff import Backoff
from common.health import HealthServer, ReadinessCheck
from common.logs import configure
from common.settings import Settings, load_or_exit, settings_epilog
from consumer.batcher import Batcher, DeadLetter
from consumer.checkpoint import Checkpointer, now_us
from consumer.decode import BOOK_TICKER, GAPS, TRADES, decode
from consumer.errors import DecodeError, Disposition, FatalDatabaseError, classify, describe
from consumer.kafka import ensure_topics, make_consumer, make_producer
from consumer.metrics import WorkerMetrics
from consumer.sink import Sink
from db.maintenance import apply_retention

log = logging.getLogger(__name__)
HOUSEKEEPING_S = 5.0
TP = tuple[str, int]


class Worker:
    """The poll loop (Rules 1-4); ``run`` blocks until stopped and returns the exit status."""

    def __init__(self, settings: Settings, consumer: Consumer, checkpointer: Checkpointer,
                 metrics: WorkerMetrics, stop: threading.Event) -> None:
        self._consumer, self._cp, self._metrics, self.stop_event = consumer, checkpointer, metrics, stop
        self._tables = {settings.topic_trades: TRADES, settings.topic_book_ticker: BOOK_TICKER,
                        settings.topic_gaps: GAPS}
        self._batcher = Batcher(settings.batch_max_rows, settings.batch_max_seconds)
        self._buffer_max = max(settings.worker_buffer_max_messages, 2 * settings.batch_max_rows)
        self._poll_messages = settings.worker_poll_messages
        self._poll_timeout = min(0.25, settings.batch_max_seconds / 4)
        self._shutdown_timeout = settings.worker_shutdown_timeout_s
        self._revoke_timeout = max(1.0, settings.kafka_session_timeout_ms / 2000)
        self._assigned: set[TP] = set()
        self._paused = self._force = self._failed = False
        self._next_housekeeping = 0.0

    def readiness(self) -> list[ReadinessCheck]:
        return [lambda: None if self._cp.db_ok else "database unreachable",
                lambda: None if self._assigned else "no partitions assigned"]

    def stop(self) -> None:
        """First call: finish cleanly. Second call: stop waiting for the database."""
        if self.stop_event.is_set():
            self._force = True
            self._cp.abandon()
        self.stop_event.set()

    def run(self) -> int:
        self._consumer.subscribe(list(self._tables), on_assign=self._on_assign,
                                 on_revoke=self._on_revoke, on_lost=self._on_lost)
        try:
            while not self.stop_event.is_set():
                self._step()
        except FatalDatabaseError:
            log.exception("fatal database error, stopping without committing further")
            self._failed = True
            self._consumer.close()
            self._cp.close()
            return 1
        return self._shutdown()

    # -- the loop -----------------------------------------------------------------------------
    def _step(self) -> None:
        full = self._batcher.pending() >= self._buffer_max
        if full and self._cp.db_ok and self._cp.busy:
            self._cp.finish(timeout=self._poll_timeout)  # short back-pressure: writer catching up
        else:
            self._set_paused(full)
            messages = self._consumer.consume(self._poll_messages, self._wait_budget())
            if messages:
                self._route(messages, time.monotonic())
            self._cp.finish()
        now = time.monotonic()
        if not self._cp.busy:
            due = self._batcher.due(now)
            batch = self._batcher.drain(due[0]) if due else None
            if batch is not None:
                self._cp.submit(batch)
        if now >= self._next_housekeeping:
            self._housekeeping(now)

    def _wait_budget(self) -> float:
        """How long a poll may block: never past the moment the oldest buffer falls due."""
        deadline = self._batcher.next_deadline()
        if deadline is None or self._cp.busy:
            return self._poll_timeout
        return min(self._poll_timeout, max(0.001, deadline - time.monotonic()))

    def _route(self, messages: list[Message], now: float) -> None:
        """Decode each message into its partition's buffer; undecodable ones become dead letters."""
        self._metrics.consumed.inc(len(messages))
        batcher, tables = self._batcher, self._tables
        for m in messages:
            error = m.error()
            if error is not None:
                self._kafka_error(error)
                continue
            # a message without error always has these (the stubs say Optional for error events)
            topic: str = m.topic()  # type: ignore[assignment]
            partition: int = m.partition()  # type: ignore[assignment]
            offset: int = m.offset()  # type: ignore[assignment]
            value = m.value()
            table = tables[topic]
            seg = batcher.segment(topic, partition, table, now)
            try:
                row, received = decode(table, value)
            except DecodeError as exc:
                log.warning("%s[%d]@%d undecodable: %s", topic, partition, offset, exc.reason)
                batcher.add_dead(seg, DeadLetter(topic, partition, offset, m.key(), value, exc.reason,
                                                 now_us()))
                continue
            batcher.add(seg, offset, m.key(), value, row, received)  # type: ignore[arg-type]

    def _kafka_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise RuntimeError(f"fatal Kafka error: {error}")
        log.warning("kafka: %s", error)

    def _set_paused(self, full: bool) -> None:
        if full and not self._paused:
            self._consumer.pause(self._consumer.assignment())
            self._paused = True
            log.warning("paused %d partition(s): %d messages buffered, database %s",
                        len(self._assigned), self._batcher.pending(), "up" if self._cp.db_ok else "down")
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
                if not (self._cp.db_ok and self._cp.flush_now(batch, deadline)):
                    log.warning("revoked: %d message(s) of %s left uncommitted", len(batch), batch.table)
        self._forget(tps)
        log.info("revoked %s", _names(partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        self._cp.settle(time.monotonic())
        dropped = self._batcher.discard(tps)
        self._forget(tps)
        log.warning("lost %s; %d buffered message(s) dropped uncommitted", _names(partitions), dropped)

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


def migrate_when_reachable(dsn: str, stop: threading.Event) -> bool:
    """Apply migrations, waiting for the database while it is unreachable; False if stopped."""
    backoff = Backoff(0.5, 10.0)
    while not stop.is_set():
        try:
            db.migrate.apply(dsn)
        except psycopg2.Error as exc:
            if classify(exc) is not Disposition.TRANSIENT:
                raise FatalDatabaseError(f"migrations failed: {describe(exc)}") from exc
            delay = backoff.next_delay()
            log.warning("database unreachable for migrations (%s); retry in %.1f s", describe(exc), delay)
            stop.wait(delay)
        else:
            return True
    return False


async def retention_schedule(settings: Settings) -> None:
    """Apply RETENTION_DAYS at start, then every RETENTION_INTERVAL_S while it is > 0."""
    dsn = settings.database_url.get_secret_value()
    while True:
        try:
            await asyncio.to_thread(apply_retention, dsn, settings.retention_days)
        except psycopg2.Error as exc:
            log.warning("retention run failed (will retry): %s", describe(exc))
        if settings.retention_days == 0:
            return
        await asyncio.sleep(settings.retention_interval_s)


def build(settings: Settings, metrics: WorkerMetrics, stop: threading.Event) -> Worker:
    consumer = make_consumer(settings)
    sink = Sink(settings.database_url.get_secret_value(), settings.db_connect_timeout_s,
                settings.db_statement_timeout_s, rollups=settings.worker_rollups)
    initial = settings.db_retry_initial_s
    checkpointer = Checkpointer(sink, make_producer(settings), consumer, metrics, settings.topic_dead_letter,
                                lambda: Backoff(initial, max(initial, settings.db_retry_max_s)))
    return Worker(settings, consumer, checkpointer, metrics, stop)


async def serve(settings: Settings) -> int:
    stop, metrics = threading.Event(), WorkerMetrics()
    worker = build(settings, metrics, stop)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    server = HealthServer(settings.worker_health_host, settings.worker_health_port, metrics.registry,
                          worker.readiness())
    await server.start()
    log.info("health server on %s:%s", settings.worker_health_host, server.port)
    try:
        return await _run(settings, worker, stop)
    finally:
        await server.stop()


async def _run(settings: Settings, worker: Worker, stop: threading.Event) -> int:
    if not await asyncio.to_thread(ensure_topics, settings, stop):
        return 0
    dsn = settings.database_url.get_secret_value()
    try:
        if settings.apply_migrations and not await asyncio.to_thread(migrate_when_reachable, dsn, stop):
            return 0
    except FatalDatabaseError:
        log.exception("stopping")
        return 1
    async with asyncio.TaskGroup() as tasks:
        retention = tasks.create_task(retention_schedule(settings))
        try:
            return await asyncio.to_thread(worker.run)
        finally:
            retention.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m consumer.worker",
        description="Consume the pipeline topics and write every event exactly once into TimescaleDB "
        "(at-least-once delivery, idempotent writes, offsets committed after the rows are durable).",
        epilog=settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    settings = load_or_exit("consumer.worker")
    configure(settings.log_level)
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    raise SystemExit(main())
