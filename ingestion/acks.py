"""Kafka's answers to ingestion, handed to the delivery core: the producer's callbacks.

Rules:
  1. Acknowledgement accounting is cheap per success and complete per failure: each event carries
     the callback of its (type, symbol), which counts it, keeps it as that key's last
     acknowledged event (``acked_events``, folded into the frontier by its writer) and observes
     the latency of 1 in ``LATENCY_SAMPLE_EVERY`` acknowledgements. Gap records and dead letters
     take the producer's default callback.
  2. Every failed delivery, of any message, goes to ``DeliveryCore.failed`` with its error's kind
     (``kafka.codes``); every client error to ``DeliveryCore.broker_error``. The core decides;
     this module counts and logs what it decided.
  3. The callbacks run inside the producer's ``poll``/``flush``, on the event loop's thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message

from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.codes import kind_of
from binance_pipeline.kafka.config import explain
from ingestion.actions import OnAck
from ingestion.delivery import DeliveryCore, Verdict
from ingestion.metrics import IngestionMetrics
from ingestion.producer_slot import pending_of

log = logging.getLogger(__name__)

LATENCY_SAMPLE_EVERY = 16  # a power of two (Rule 1)
LOG_EVERY_S = 5.0
DeliveryCallback = Callable[[KafkaError | None, Message], None]


class DeliveryReports:
    def __init__(self, settings: Settings, core: DeliveryCore, metrics: IngestionMetrics) -> None:
        self._s, self._core, self._metrics = settings, core, metrics
        self.acked_events: dict[tuple[str, str], Message] = {}  # (type, symbol) -> last acked (Rule 1)

    def config(self) -> dict[str, Any]:
        """The producer's default delivery callback and its error callback."""
        return {"on_delivery": self._on_delivery, "error_cb": self._on_error}

    def event_callback(self, key: tuple[str, str]) -> DeliveryCallback:
        """Rule 1: the acknowledgement callback of one (type, symbol)."""
        published, acks, failed = self._metrics.published, self._core.acks, self._failed
        observe, mask = self._metrics.delivery_latency.observe, LATENCY_SAMPLE_EVERY - 1
        last_acked = self.acked_events

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failed(err, msg)
                return
            published[key] += 1
            acks[0] += 1
            last_acked[key] = msg
            if not acks[0] & mask:
                observe(max(0.0, time.time() - msg.timestamp()[1] / 1000))

        return on_delivery

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """Gap records and dead letters."""
        if err is not None:
            self._failed(err, msg)
            return
        self._core.acks[0] += 1
        if msg.topic() == self._s.topic_gaps:
            self._core.gap_acked(msg.value() or b"")

    def _failed(self, err: KafkaError, msg: Message) -> None:
        """Rule 2."""
        topic, now = msg.topic() or "", time.monotonic()
        why = f"delivery to {topic} failed: {err.str()}"
        fate = self._core.failed(kind_of(err), pending_of(msg), why, now)
        if fate is Verdict.AGAIN:
            return
        self._metrics.delivery_failures.labels(topic).inc()
        if self._core.log_due(now, LOG_EVERY_S):
            log.error("kafka delivery failure #%d to %s: %s (%s)", self._core.failures, topic, err.str(),
                      fate.value)  # fmt: skip

    def _on_error(self, err: KafkaError) -> None:
        why = explain(err, self._s)  # authentication or TLS: said plainly, in the log and /readyz
        self._core.broker_error(time.monotonic(), err.code() == KafkaError._ALL_BROKERS_DOWN,
                                err.str() if err.fatal() else None, why)  # fmt: skip
        if why:
            log.error("kafka: %s", why)
        else:
            log.warning("kafka client error: %s", err.str())


def chain(first: DeliveryCallback, then: OnAck) -> DeliveryCallback:
    """``first``, then tell ``then`` whether Kafka acknowledged the message (backfill rows)."""

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        first(err, msg)
        then(err is None)

    return on_delivery
