"""Stage 2 entry point: ``python -m consumer.worker`` (Kafka -> TimescaleDB).

Owns the wiring and the order of the start: settings, the health server, the topics, the
migrations, then the poll loop (consumer/loop.py) next to the retention schedule
(consumer/retention.py). It holds no logic of its own; see those modules for their rules.

Rules:
  1. Settings are loaded once here (the worker's own, ``WorkerSettings``: a bad one exits 2 naming
     it) and passed into constructors; constructors make no network calls.
  2. SIGTERM/SIGINT go to ``Worker.stop`` (loop.py Rule 4), during the start too: a stop while
     waiting for the broker or the database exits 0, nothing having been consumed.
  3. The exit status is the loop's: 0 clean, 1 with messages left uncommitted or a fatal error.
  4. WORKER_NAME's ``{hostname}`` becomes this host's name here, once, before anything uses the name
     (``named``): each replica of a scaled compose service gets its container's name.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import threading

from confluent_kafka import Consumer

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.health import HealthServer
from binance_pipeline.common.logs import configure
from binance_pipeline.common.setting_types import expand_worker_name
from binance_pipeline.common.settings import WorkerSettings, load_stage, settings_epilog
from binance_pipeline.kafka.topic_ids import TopicIds
from consumer.checkpoint import Checkpointer
from consumer.errors import FatalDatabaseError
from consumer.kafka import (
    KafkaDeadLetters,
    KafkaOffsets,
    ensure_topics,
    make_consumer,
    make_producer,
)
from consumer.loop import Worker
from consumer.metrics import WorkerMetrics
from consumer.migrations import migrate_when_reachable
from consumer.retention import retention_schedule
from consumer.sink import TimescaleSink

log = logging.getLogger(__name__)


def build(settings: WorkerSettings, metrics: WorkerMetrics, stop: threading.Event) -> Worker:
    """The worker and its collaborators, wired from ``settings`` (no network call yet)."""
    offsets = KafkaOffsets(metrics)
    consumer = offsets.rebind(make_consumer(settings, offsets.on_commit))
    sink = TimescaleSink(settings.database_url.get_secret_value(), settings.db_connect_timeout_s,
                         settings.db_statement_timeout_s, rollups=settings.worker_rollups)
    dead_letters = KafkaDeadLetters(make_producer(settings), settings.topic_dead_letter)
    initial = settings.db_retry_initial_s
    checkpointer = Checkpointer(sink, dead_letters, offsets, metrics,
                                lambda: Backoff(initial, max(initial, settings.db_retry_max_s)))
    topics = [settings.topic_trades, settings.topic_book_ticker, settings.topic_gaps]

    def renew() -> Consumer:
        return offsets.rebind(make_consumer(settings, offsets.on_commit))

    return Worker(settings, consumer, checkpointer, metrics, stop, renew=renew,
                  topic_ids=TopicIds(settings, topics))


async def serve(settings: WorkerSettings) -> int:
    """Run the worker with its health server and signal handlers; return the exit status."""
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


async def _prepare(settings: WorkerSettings, stop: threading.Event) -> bool:
    """Topics, then migrations; False if stopped meanwhile (Rule 2)."""
    if not await asyncio.to_thread(ensure_topics, settings, stop):
        return False
    if not settings.apply_migrations:
        return True
    return await asyncio.to_thread(migrate_when_reachable, settings.database_url.get_secret_value(), stop)


async def _run(settings: WorkerSettings, worker: Worker, stop: threading.Event) -> int:
    try:
        if not await _prepare(settings, stop):
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


def named(settings: WorkerSettings, hostname: str) -> WorkerSettings:
    """Rule 4: the settings with WORKER_NAME's ``{hostname}`` replaced by ``hostname``."""
    return settings.model_copy(update={"worker_name": expand_worker_name(settings.worker_name, hostname)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m consumer.worker",
        description="Consume the pipeline topics and write every event exactly once into TimescaleDB "
        "(at-least-once delivery, idempotent writes, offsets committed after the rows are durable).",
        epilog=settings_epilog(stage=WorkerSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    settings = named(load_stage("consumer.worker", WorkerSettings), socket.gethostname())
    configure(settings.log_level)
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    raise SystemExit(main())
