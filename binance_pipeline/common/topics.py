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
  3. Neither ``TopicCreation`` nor ``TopicIds`` blocks its caller: each sends a request and is
     asked later whether it is done, so a poll loop never waits on the broker. ``TopicIds`` also
     says when the broker last answered, which is what the worker's readiness reports.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from binance_pipeline.common.kafka_config import client_config, explain
from binance_pipeline.common.settings import Settings

log = logging.getLogger(__name__)
NO_ANSWER = frozenset({KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
                       KafkaError._RESOLVE, KafkaError._DESTROY})


def pipeline_topics(settings: Settings) -> list[str]:
    return [settings.topic_trades, settings.topic_book_ticker, settings.topic_gaps,
            settings.topic_dead_letter]


def create_missing_topics(settings: Settings, timeout: float = 15.0) -> dict[str, str]:
    """Create the pipeline topics that do not exist; return {topic: reason} for those that failed."""
    return TopicCreation(settings, timeout).failures(wait=timeout + 5)


class TopicCreation:
    """One request creating the pipeline topics that do not exist (Rules 1, 3).

    The constructor sends it; ``done()`` never blocks; ``failures(wait)`` waits up to ``wait``
    seconds for the answer and returns {topic: reason} for the topics not created.
    """

    def __init__(self, settings: Settings, timeout: float = 15.0) -> None:
        self._servers = settings.kafka_bootstrap_servers
        self._security: list[str] = []  # authentication/TLS failures, said plainly instead of a time-out

        def on_error(err: KafkaError) -> None:
            why = explain(err, settings)
            if why:
                self._security.append(why)

        config: dict[str, Any] = {**client_config(settings), "error_cb": on_error}
        self._admin = AdminClient(config)
        retention = {"retention.ms": str(settings.topic_retention_ms)}
        new = [NewTopic(name, num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication_factor, config=retention)
               for name in pipeline_topics(settings)]
        self._futures: dict[str, Future[Any]] = self._admin.create_topics(new, request_timeout=timeout)
        self._partitions = settings.topic_partitions

    def done(self) -> bool:
        return all(f.done() for f in self._futures.values())

    def failures(self, wait: float = 0.0) -> dict[str, str]:
        failed = {name: why for name, future in self._futures.items()
                  if (why := self._outcome(name, future, wait)) is not None}
        self._admin.poll(0)  # serves error_cb: an authentication or TLS failure shows up only there
        return {name: self._security[-1] for name in failed} if self._security else failed

    def _outcome(self, name: str, future: Future[Any], wait: float) -> str | None:
        try:
            future.result(timeout=wait)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return None
            return f"broker {self._servers}: {exc}"
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who retries
            return f"broker {self._servers}: {exc!r}"
        log.info("topic %s created (%d partitions)", name, self._partitions)
        return None


class TopicIds:
    """The broker's id of each of ``topics`` (Rule 2); ``poll`` never blocks.

    ``poll(now)`` returns the answer of the last request once it has come ({topic: id}, without
    the topics that have none), and sends the next request no sooner than ``every_s`` after the
    previous one; it returns None while nothing new is known.
    """

    def __init__(self, settings: Settings, topics: list[str], every_s: float = 2.0,
                 timeout_s: float = 5.0) -> None:
        self._admin = AdminClient({**client_config(settings), "client.id": "binance-pipeline.topic-ids"})
        self._topics, self._every, self._timeout = sorted(topics), every_s, timeout_s
        self._pending: dict[str, Future[Any]] | None = None
        self._next = 0.0
        self.unknown: frozenset[str] = frozenset()  # Rule 2: as of the last answer
        self.answered_at = time.monotonic()  # when the broker last answered (monotonic; Rule 3)
        self.last_error = ""  # why the last request got no answer ('' once one did)

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
            self._pending = self._admin.describe_topics(TopicCollection(self._topics),
                                                        request_timeout=self._timeout)
            for future in self._pending.values():
                future.add_done_callback(self._answered)
        return None

    def _answered(self, future: Future[Any]) -> None:
        """Runs on librdkafka's thread: any answer of the broker, "unknown topic" included."""
        error = _transport_error(future)
        if error:
            self.last_error = error
        else:
            self.answered_at, self.last_error = time.monotonic(), ""


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


def _transport_error(future: Future[Any]) -> str:
    """Why a finished request got no answer from the broker ('' when it did answer)."""
    exc = future.exception()
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if exc is None or (isinstance(err, KafkaError) and err.code() not in NO_ANSWER):
        return ""
    return str(err.str() if isinstance(err, KafkaError) else exc)


def _topic_id(future: Future[Any]) -> str:
    """The id a finished describe request returned ('' when the topic is unknown or it failed)."""
    try:
        return str(future.result().topic_id)
    except KafkaException:
        return ""
