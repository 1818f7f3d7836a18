"""The pipeline's four Kafka topics, and creating the missing ones.

Rule: creation is idempotent (an existing topic counts as created) and never raises; callers
decide how to retry (ingestion and the worker each retry with their own backoff). Each failure
reason names the bootstrap servers it asked, so a log line says which broker did not answer.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from binance_pipeline.common.kafka_config import client_config, explain
from binance_pipeline.common.settings import Settings

log = logging.getLogger(__name__)


def pipeline_topics(settings: Settings) -> list[str]:
    return [settings.topic_trades, settings.topic_book_ticker, settings.topic_gaps,
            settings.topic_dead_letter]


def create_missing_topics(settings: Settings, timeout: float = 15.0) -> dict[str, str]:
    """Create the pipeline topics that do not exist; return {topic: reason} for those that failed."""
    security: list[str] = []  # authentication/TLS failures, said plainly instead of a time-out

    def on_error(err: KafkaError) -> None:
        why = explain(err, settings)
        if why:
            security.append(why)

    config: dict[str, Any] = {**client_config(settings), "error_cb": on_error}
    admin = AdminClient(config)
    config = {"retention.ms": str(settings.topic_retention_ms)}
    new = [NewTopic(name, num_partitions=settings.topic_partitions,
                    replication_factor=settings.topic_replication_factor, config=config)
           for name in pipeline_topics(settings)]
    failed: dict[str, str] = {}
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout + 5)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                failed[name] = f"broker {settings.kafka_bootstrap_servers}: {exc}"
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who retries
            failed[name] = f"broker {settings.kafka_bootstrap_servers}: {exc!r}"
        else:
            log.info("topic %s created (%d partitions)", name, settings.topic_partitions)
    admin.poll(0)  # serves error_cb: an authentication or TLS failure shows up only there
    return {name: security[-1] for name in failed} if security else failed
