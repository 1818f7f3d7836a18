"""Watching topic ids (KIP-516): which topics have a new log, without blocking the caller.

Rules:
  1. A topic's id names its log: a topic deleted and created again under the same name, or
     created again on a broker that restarted empty, has a new id. ``TopicIds`` asks for them
     without blocking its caller (the worker's poll thread, ingestion's event loop); a topic the
     broker does not know, or a request that failed, has no id in the answer (never a change);
     ``unknown`` then names the topics the broker answered it does not know, apart from a
     request that failed (an unreachable broker says nothing about a topic).
  2. ``poll`` sends a request and is asked later whether it is done, so a poll loop never waits
     on the broker. ``TopicIds`` also says when the broker last answered, which is what the
     worker's readiness reports.
  3. ``changed_ids`` is pure: the decision "which topics are new logs" from two answers.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient

from binance_pipeline.common.settings import KafkaSettings
from binance_pipeline.kafka.codes import TABLE, Kind, error_of, kind_of
from binance_pipeline.kafka.config import client_config


class TopicIds:
    """The broker's id of each of ``topics`` (Rule 1); ``poll`` never blocks.

    ``poll(now)`` returns the answer of the last request once it has come ({topic: id}, without
    the topics that have none), and sends the next request no sooner than ``every_s`` after the
    previous one; it returns None while nothing new is known.
    """

    def __init__(self, settings: KafkaSettings, topics: list[str], every_s: float = 2.0,
                 timeout_s: float = 5.0) -> None:
        self._admin = AdminClient({**client_config(settings), "client.id": "binance-pipeline.topic-ids"})
        self._topics, self._every, self._timeout = sorted(topics), every_s, timeout_s
        self._pending: dict[str, Future[Any]] | None = None
        self._next = 0.0
        self.unknown: frozenset[str] = frozenset()  # Rule 1: as of the last answer
        self.answered_at = time.monotonic()  # when the broker last answered (monotonic; Rule 2)
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
        return kind_of(exc) is Kind.TOPIC_MISSING
    return False


def _transport_error(future: Future[Any]) -> str:
    """Why a finished request got no answer from the broker ('' when it did answer)."""
    exc = future.exception()
    if exc is None:
        return ""
    err = error_of(exc)
    if err is None:
        return str(exc)
    return str(err.str()) if TABLE.get(err.code()) is Kind.NO_ANSWER else ""


def _topic_id(future: Future[Any]) -> str:
    """The id a finished describe request returned ('' when the topic is unknown or it failed)."""
    try:
        return str(future.result().topic_id)
    except KafkaException:
        return ""
