"""The producer ingestion publishes with, replaced whole when it must be (delivery Rules 5-7).

Rules:
  1. ``producer`` is the current instance; a replacement starts clean (a new idempotence id, no
     metadata of a lost broker).
  2. Retiring: the old instance's messages are purged, and its reports (served here, within
     RETIRE_TIMEOUT_S) hand each back to the delivery core, which queues it again once.
  3. A fatal error renews the producer as long as the core allows (delivery Rule 7).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from typing import Any

from confluent_kafka import KafkaException, Message, Producer

from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.config import durable_producer_config
from ingestion.delivery import DeliveryCore
from ingestion.replay import Headers, Pending

log = logging.getLogger(__name__)

RETIRE_TIMEOUT_S = 10.0  # Rule 2


def producer_config(s: Settings) -> dict[str, Any]:
    """librdkafka settings: durable (acks=all, idempotent), lz4, bounded buffer."""
    return {
        **durable_producer_config(s),
        "client.id": "binance-pipeline-ingestion",
        "linger.ms": s.producer_linger_ms,
        "batch.size": s.producer_batch_bytes,
        "queue.buffering.max.messages": s.producer_buffer_max_messages,
        "queue.buffering.max.kbytes": 2_097_151,  # the message count is the binding bound
        "message.max.bytes": s.ws_max_frame_bytes + 65_536,
        "allow.auto.create.topics": False,  # topics are created by us, with our settings
    }


def pending_of(msg: Message) -> Pending:
    """A reported message as it is queued again (the wall clock when it carries no timestamp)."""
    got, key, stamp = msg.headers() or [], msg.key(), msg.timestamp()[1]
    headers: Headers = list(got.items()) if isinstance(got, dict) else list(got)
    return (msg.topic() or "", key.decode() if key else None, msg.value() or b"",
            stamp if stamp > 0 else time.time_ns() // 1_000_000, headers or None)  # fmt: skip


class ProducerSlot:
    def __init__(self, config: dict[str, Any], core: DeliveryCore) -> None:
        self._config, self._core = config, core
        self.started = False

    def open(self) -> None:
        """The first producer (the constructor makes no network call)."""
        self.producer = Producer(self._config)
        self.started = True

    def renew(self, why: str) -> bool:
        """Rule 3: True when the producer was replaced; False when the error is final."""
        if not self._core.renew(why, time.monotonic()):
            return False
        log.error("kafka: fatal producer error (%s); replacing the producer", why)
        self.retire()
        return True

    def retire(self, resending: Counter[bytes] | None = None) -> None:
        """Rule 2; ``resending``: values the replay sends again already."""
        self._core.retiring(resending)
        try:
            old, self.producer = self.producer, Producer(self._config)
            old.purge(in_queue=True, in_flight=True)
            deadline = time.monotonic() + RETIRE_TIMEOUT_S
            while len(old) and time.monotonic() < deadline:
                with contextlib.suppress(KafkaException):  # a fatal producer raises its error here too
                    old.poll(0.05)
            if len(old):
                log.error(
                    "kafka: %d message(s) of the replaced producer were not handed back in %.0f s; "
                    "those in the replay window are sent again",
                    len(old),
                    RETIRE_TIMEOUT_S,
                )
            log.warning("kafka: producer replaced; %d message(s) queued again", len(self._core.pending))
        finally:
            self._core.retired()
