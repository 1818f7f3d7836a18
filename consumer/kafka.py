"""Kafka clients of the worker, configured from Settings, and topic creation at start.

Rules:
  1. The consumer never commits on its own: enable.auto.commit=false and
     enable.auto.offset.store=false; offsets move only through checkpoint.Checkpointer.
  2. auto.offset.reset=earliest: a new group starts from the oldest retained message, so a
     group that has never committed loses nothing.
  3. Topics are created at start if missing (whichever stage starts first creates them), with
     TOPIC_PARTITIONS partitions and TOPIC_RETENTION_MS; an existing topic is left as it is.
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import Consumer, Producer

from common.backoff import Backoff
from common.settings import Settings
from common.topics import create_missing_topics

log = logging.getLogger(__name__)


def consumer_config(settings: Settings) -> dict[str, object]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
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
    }


def producer_config(settings: Settings) -> dict[str, object]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": "consumer.worker.dead-letter",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
    }


def make_consumer(settings: Settings) -> Consumer:
    return Consumer(consumer_config(settings))


def make_producer(settings: Settings) -> Producer:
    return Producer(producer_config(settings))


def ensure_topics(settings: Settings, stop: threading.Event) -> bool:
    """Create the pipeline's missing topics, retrying until done or ``stop``; True when done."""
    backoff = Backoff(0.5, 10.0)
    while not stop.is_set():
        failed = create_missing_topics(settings)
        if not failed:
            return True
        delay = backoff.next_delay()
        log.warning("topics not created yet (%s); retrying in %.1f s", failed, delay)
        stop.wait(delay)
    return False
