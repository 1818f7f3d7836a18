"""Topic specs and creating the missing ones: the one place the project calls ``create_topics``.

Rules:
  1. Every topic the project creates is described by a ``TopicSpec`` (name, partitions,
     replication, config), and every creation goes through ``TopicCreation``: the pipeline's four
     topics (``pipeline_specs``), the frontier and the history import's progress topic (compacted,
     their specs kept by their owners) alike. Nothing else calls ``AdminClient.create_topics``.
  2. Creation is idempotent (an existing topic counts as created, and is left as it is) and
     never raises; callers decide how to retry (ingestion and the worker each retry with their
     own backoff). Each failure reason names the bootstrap servers it asked, so a log line says
     which broker did not answer; an authentication or TLS failure is said plainly instead.
  3. ``TopicCreation`` never blocks its caller: the constructor sends the request and ``done()``
     is asked later, so a poll loop never waits on the broker. ``create_missing`` and
     ``ensure_topics`` are the blocking forms (run them in a thread), over the same request.
  4. The blocking forms return once the broker's metadata lists every topic with its partitions,
     within the same time-out: KRaft acknowledges a creation before the broker answering
     metadata has applied it, and a caller that lists, produces to or subscribes to a topic the
     moment it is "created" must find it there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from binance_pipeline.common.settings import KafkaTopicSettings, TopicSettings
from binance_pipeline.kafka.codes import Kind, kind_of
from binance_pipeline.kafka.config import client_config, explain
from binance_pipeline.kafka.errors import TopicsNotCreated

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    """How one topic is created (Rule 1); an existing topic is never altered to match."""

    name: str
    partitions: int
    replication: int
    config: Mapping[str, str] = field(default_factory=dict)

    def new_topic(self) -> NewTopic:
        return NewTopic(self.name, num_partitions=self.partitions, replication_factor=self.replication,
                        config=dict(self.config))


def pipeline_topics(settings: TopicSettings) -> list[str]:
    return [settings.topic_trades, settings.topic_book_ticker, settings.topic_gaps,
            settings.topic_dead_letter]


def pipeline_specs(settings: TopicSettings) -> list[TopicSpec]:
    """The four pipeline topics: TOPIC_PARTITIONS, TOPIC_REPLICATION_FACTOR, TOPIC_RETENTION_MS."""
    retention = {"retention.ms": str(settings.topic_retention_ms)}
    return [TopicSpec(name, settings.topic_partitions, settings.topic_replication_factor, retention)
            for name in pipeline_topics(settings)]


def compacted_spec(name: str, settings: TopicSettings, **config: str) -> TopicSpec:
    """A one-partition compacted topic (latest record per key), plus the owner's own ``config``."""
    return TopicSpec(name, 1, settings.topic_replication_factor, {"cleanup.policy": "compact", **config})


def create_missing(
    settings: KafkaTopicSettings, specs: Sequence[TopicSpec], timeout: float = 15.0
) -> dict[str, str]:
    """Create the topics of ``specs`` that do not exist and wait until the broker lists them
    (Rule 4); {topic: reason} for those that failed."""
    creation = TopicCreation(settings, timeout, specs)
    return creation.failures(wait=timeout + 5) or creation.unlisted(time.monotonic() + timeout)


def ensure_topics(settings: KafkaTopicSettings, specs: Sequence[TopicSpec], timeout: float = 15.0) -> None:
    """Create the topics of ``specs`` that do not exist; ``TopicsNotCreated`` when some could not be."""
    failed = create_missing(settings, specs, timeout)
    if failed:
        raise TopicsNotCreated(failed)


class TopicCreation:
    """One request creating the topics of ``specs`` that do not exist (Rules 1-3).

    ``specs`` defaults to the pipeline's four topics. The constructor sends the request;
    ``done()`` never blocks; ``failures(wait)`` waits up to ``wait`` seconds for the answer and
    returns {topic: reason} for the topics not created.
    """

    def __init__(self, settings: KafkaTopicSettings, timeout: float = 15.0,
                 specs: Sequence[TopicSpec] | None = None) -> None:
        self._servers = settings.kafka_bootstrap_servers
        self._security: list[str] = []  # authentication/TLS failures, said plainly instead of a time-out

        def on_error(err: KafkaError) -> None:
            why = explain(err, settings)
            if why:
                self._security.append(why)

        config: dict[str, Any] = {**client_config(settings), "error_cb": on_error}
        self._admin = AdminClient(config)
        self._specs = {s.name: s for s in (pipeline_specs(settings) if specs is None else specs)}
        new = [spec.new_topic() for spec in self._specs.values()]
        self._futures: dict[str, Future[Any]] = self._admin.create_topics(new, request_timeout=timeout)

    def done(self) -> bool:
        return all(f.done() for f in self._futures.values())

    def failures(self, wait: float = 0.0) -> dict[str, str]:
        failed = {name: why for name, future in self._futures.items()
                  if (why := self._outcome(name, future, wait)) is not None}
        self._admin.poll(0)  # serves error_cb: an authentication or TLS failure shows up only there
        return {name: self._security[-1] for name in failed} if self._security else failed

    def unlisted(self, deadline: float) -> dict[str, str]:
        """Wait (until ``deadline``, monotonic) for the broker's metadata to list every topic with
        its partitions (Rule 4); {topic: reason} for those it still does not list."""
        while True:
            missing = self._unlisted(max(0.1, min(1.0, deadline - time.monotonic())))
            if not missing or time.monotonic() >= deadline:
                return {name: f"broker {self._servers}: created, but not yet in its metadata"
                        for name in missing}
            time.sleep(0.05)

    def _unlisted(self, timeout: float) -> list[str]:
        try:
            listed = self._admin.list_topics(timeout=timeout).topics
        except KafkaException:  # no answer in time: asked again until the deadline
            return list(self._specs)
        return [name for name in self._specs
                if name not in listed or listed[name].error is not None or not listed[name].partitions]

    def _outcome(self, name: str, future: Future[Any], wait: float) -> str | None:
        try:
            future.result(timeout=wait)
        except KafkaException as exc:
            if kind_of(exc) is Kind.ALREADY_EXISTS:
                return None
            return f"broker {self._servers}: {exc}"
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who retries (Rule 2)
            return f"broker {self._servers}: {exc!r}"
        spec = self._specs[name]
        log.info("topic %s created (%d partition(s), %s)", name, spec.partitions, dict(spec.config))
        return None
