"""The pipeline's four Kafka topics, creating the missing ones, and watching their identity.

Rules:
  1. Creation is idempotent (an existing topic counts as created) and never raises; callers
     decide how to retry (ingestion and the worker each retry with their own backoff). Each failure
     reason names the bootstrap servers it asked, so a log line says which broker did not answer.
  2. A topic's id (KIP-516) names its log: a topic deleted and created again under the same name,
     or created again on a broker that restarted empty, has a new id. ``TopicIds`` asks for them
     without blocking its caller (the worker's poll thread, ingestion's event loop); a topic the
     broker does not know, or a request that failed, has no id in the answer (never a change);
     ``unknown`` then names the topics the broker answered it does not know, apart from a
     request that failed (an unreachable broker says nothing about a topic).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
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


class TopicIds:
    """The broker's id of each of ``topics`` (Rule 2); ``poll`` never blocks.

    ``poll(now)`` returns the answer of the last request once it has come ({topic: id}, without
    the topics that have none), and sends the next request no sooner than ``every_s`` after the
    previous one; it returns None while nothing new is known.
    """

    def __init__(self, settings: Settings, topics: list[str], every_s: float = 2.0) -> None:
        self._admin = AdminClient({**client_config(settings), "client.id": "binance-pipeline.topic-ids"})
        self._topics, self._every = sorted(topics), every_s
        self._pending: dict[str, Future[Any]] | None = None
        self._next = 0.0
        self.unknown: frozenset[str] = frozenset()  # Rule 2: as of the last answer

    def poll(self, now: float) -> dict[str, str] | None:
        pending = self._pending
        if pending is not None:
            if not all(f.done() for f in pending.values()):
                return None
            self._pending = None
            ids = {topic: _topic_id(f) for topic, f in pending.items()}
            self.unknown = frozenset(topic for topic, f in pending.items() if _unknown(f))
            return {topic: i for topic, i in ids.items() if i}
        if now >= self._next:
            self._next = now + self._every
            self._pending = self._admin.describe_topics(TopicCollection(self._topics), request_timeout=5.0)
        return None


def changed_ids(known: dict[str, str], seen: dict[str, str]) -> list[str]:
    """The topics whose id in ``seen`` differs from the one in ``known`` (updates ``known``)."""
    changed = sorted(t for t, i in seen.items() if known.get(t, i) != i)
    known.update(seen)
    return changed


def _unknown(future: Future[Any]) -> bool:
    """True when a finished describe request says the broker does not know the topic."""
    try:
        future.result()
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        return isinstance(err, KafkaError) and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    return False


def _topic_id(future: Future[Any]) -> str:
    """The id a finished describe request returned ('' when the topic is unknown or it failed)."""
    try:
        return str(future.result().topic_id)
    except KafkaException:
        return ""
