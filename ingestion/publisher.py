"""Kafka side of ingestion: topics, the idempotent producer, delivery accounting, readiness.

Rules:
  1. Value = ``common.events.encode(message)``, key = symbol, Kafka timestamp = receipt time
     (ms); trade and aggTrade go to TOPIC_TRADES, bookTicker to TOPIC_BOOK_TICKER, gap
     records to TOPIC_GAPS, bad frames (raw bytes, reason headers) to TOPIC_DEAD_LETTER.
  2. Nothing is lost silently. An event ``produce`` refuses (buffer full) or whose delivery
     fails is counted, logged and handed to ``on_lost`` (which records and repairs it); a gap
     record is never dropped: refused or failed ones wait in ``_pending`` and are retried in
     order. Dead letters that cannot be queued are counted and logged.
  3. Readiness is off while the broker does not acknowledge queued messages, after a delivery
     failure or a refused produce (for ``PRODUCER_ACK_STALL_S``), and before the topics exist.
  4. Delivery callbacks run inside ``serve()`` (or ``flush()``) on the event loop's thread.
  5. Delivery accounting is cheap per success and complete per failure: each event carries
     the acknowledgement callback of its (type, symbol), which counts it and observes the
     latency of 1 in ``LATENCY_SAMPLE_EVERY`` acknowledgements; ``serve()`` turns "acks
     arrived" into readiness once per poll. Every failed delivery, of any message, goes
     through ``_delivery_failed`` on its own (Rule 2).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from common.events import (
    HDR_REASON,
    HDR_RECEIVED_AT,
    HDR_STAGE,
    BookTickerMessage,
    GapMessage,
    TradeMessage,
    encode,
)
from common.kafka_config import client_config, explain
from common.settings import Settings
from common.topics import create_missing_topics, pipeline_topics
from ingestion.errors import TopicSetupError
from ingestion.metrics import IngestionMetrics

log = logging.getLogger(__name__)

OnLost = Callable[[str, str, int | None, int, str], None]  # symbol, type, id, received_at, reason
SERVE_INTERVAL_S = 0.02
LATENCY_SAMPLE_EVERY = 16  # a power of two (Rule 5)
DeliveryCallback = Callable[[KafkaError | None, Message], None]
LOG_EVERY_S = 5.0


def producer_config(s: Settings) -> dict[str, Any]:
    """librdkafka settings: durable (acks=all, idempotent), lz4, bounded buffer."""
    return {
        **client_config(s),
        "client.id": "binance-pipeline-ingestion",
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": s.producer_linger_ms,
        "batch.size": s.producer_batch_bytes,
        "queue.buffering.max.messages": s.producer_buffer_max_messages,
        "queue.buffering.max.kbytes": 2_097_151,  # the message count is the binding bound
        "message.max.bytes": s.ws_max_frame_bytes + 65_536,
    }


class Publisher:
    """Owns the producer; ``start()`` creates it (the constructor makes no network call)."""

    def __init__(self, settings: Settings, metrics: IngestionMetrics, on_lost: OnLost) -> None:
        self._s, self._metrics, self.on_lost = settings, metrics, on_lost
        self._topic_of = {
            "trade": settings.topic_trades, "aggTrade": settings.topic_trades,
            "bookTicker": settings.topic_book_ticker,
        }  # fmt: skip
        self._routes: dict[tuple[str, str], tuple[str, DeliveryCallback]] = {}
        self._acks = [0]  # acknowledgements of any message, ever (read by ``serve``)
        self._acks_seen = 0
        self._producer: Producer | None = None
        self._pending: deque[tuple[str, str, bytes, int]] = deque()
        self.topics_ready = False
        self._topic_error: str | None = None
        self.fatal: str | None = None
        now = time.monotonic()
        self._last_ack = self._last_empty = now
        self._last_trouble: tuple[float, str] | None = None
        self._brokers_down = False
        self._failures = self._dropped = 0
        self._last_log = 0.0

    # ----------------------------------------------------------------- set-up
    def ensure_topics(self, timeout: float = 10.0) -> None:
        """Create the four topics if missing (blocking; run it in a thread)."""
        failed = create_missing_topics(self._s, timeout)
        self._topic_error = next(iter(failed.values()), None)
        if failed:
            raise TopicSetupError(f"cannot create topics {failed}")
        self.topics_ready = True
        log.info("topics ready: %s", ", ".join(pipeline_topics(self._s)))

    def start(self) -> None:
        cfg = producer_config(self._s)
        cfg["on_delivery"] = self._on_delivery
        cfg["error_cb"] = self._on_error
        self._producer = Producer(cfg)
        self._metrics.queue_depth = self.queue_depth

    @property
    def started(self) -> bool:
        return self._producer is not None

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("Publisher.start() was not called")
        return self._producer

    # ----------------------------------------------------------------- hot path
    def offer(self, msg: TradeMessage | BookTickerMessage) -> bool:
        """Queue one event; False (nothing queued, nothing recorded) when the buffer is full."""
        key = (msg["type"], msg["symbol"])
        route = self._routes.get(key) or self._route(key)
        try:
            self.producer.produce(
                route[0], encode(msg), key[1], timestamp=msg["received_at"] // 1000, on_delivery=route[1]
            )
        except BufferError:
            return False
        return True

    def _route(self, key: tuple[str, str]) -> tuple[str, DeliveryCallback]:
        """The topic and the acknowledgement callback of one (type, symbol) (Rule 5)."""
        published, acks, failed = self._metrics.published, self._acks, self._delivery_failed
        observe, mask = self._metrics.delivery_latency.observe, LATENCY_SAMPLE_EVERY - 1

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failed(err, msg)
                return
            published[key] += 1
            acks[0] += 1
            if not acks[0] & mask:
                observe(max(0.0, time.time() - msg.timestamp()[1] / 1000))

        route = self._routes[key] = (self._topic_of[key[0]], on_delivery)
        return route

    def publish_event(self, msg: TradeMessage | BookTickerMessage) -> None:
        """Queue one event; a refused one is counted, logged and reported lost (Rule 2)."""
        if self.offer(msg):
            return
        self._dropped += 1
        self._metrics.producer_dropped.labels(msg["type"]).inc()
        self._trouble(f"producer buffer full ({self._dropped} events refused so far)")
        ident = msg["id"] if msg["type"] != "bookTicker" else None
        self.on_lost(msg["symbol"], msg["type"], ident, msg["received_at"], "producer_overflow")

    def publish_gap(self, record: GapMessage) -> None:
        """Queue a gap record; it is never dropped (Rule 2)."""
        item = (self._s.topic_gaps, record["symbol"], encode(record), record["detected_at"] // 1000)
        self._pending.append(item)
        self._drain_pending()

    def dead_letter(self, raw: bytes, reason: str, received_at: int) -> None:
        """Send a rejected frame, unchanged, with its reason in the headers."""
        headers: list[tuple[str, str | bytes | None]] = [
            (HDR_REASON, reason.encode()), (HDR_STAGE, b"ingestion"),
            (HDR_RECEIVED_AT, str(received_at).encode()),
        ]  # fmt: skip
        try:
            self.producer.produce(
                self._s.topic_dead_letter, raw, None, timestamp=received_at // 1000, headers=headers
            )
        except BufferError:
            self._metrics.producer_dropped.labels("dead_letter").inc()
            self._trouble("producer buffer full: a dead letter was dropped")
            log.error("dead letter dropped (producer buffer full): %s", reason)  # noqa: TRY400

    def _drain_pending(self) -> None:
        while self._pending:
            topic, key, value, ts = self._pending[0]
            try:
                self.producer.produce(topic, value, key, timestamp=ts)
            except BufferError:
                return
            self._pending.popleft()

    # ----------------------------------------------------------------- callbacks
    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """Gap records and dead letters (events carry their own callback, see ``_route``)."""
        if err is not None:
            self._delivery_failed(err, msg)
            return
        self._acks[0] += 1

    def _delivery_failed(self, err: KafkaError, msg: Message) -> None:
        topic, value = msg.topic(), msg.value() or b""
        self._failures += 1
        self._metrics.delivery_failures.labels(topic).inc()
        self._trouble(f"delivery to {topic} failed: {err.str()}")
        if topic == self._s.topic_gaps:
            self._pending.append((topic, (msg.key() or b"").decode(), value, msg.timestamp()[1]))
        elif topic in (self._s.topic_trades, self._s.topic_book_ticker):
            event = orjson.loads(value)
            ident = event.get("id") if event["type"] != "bookTicker" else None
            self.on_lost(event["symbol"], event["type"], ident, event["received_at"], "delivery_failed")
        if time.monotonic() - self._last_log >= LOG_EVERY_S or self._failures == 1:
            self._last_log = time.monotonic()
            log.error("kafka delivery failure #%d to %s: %s", self._failures, topic, err.str())

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._brokers_down = True
            self._acks_seen = self._acks[0]  # acks served before this error do not undo it
        if err.fatal():
            self.fatal = err.str()
        why = explain(err, self._s)  # authentication or TLS: said plainly, in the log and /readyz
        if why:
            self._trouble(why)
            log.error("kafka: %s", why)
        else:
            log.warning("kafka client error: %s", err.str())

    def _trouble(self, what: str) -> None:
        self._last_trouble = (time.monotonic(), what)

    # ----------------------------------------------------------------- upkeep
    def serve(self) -> None:
        """Run delivery callbacks, retry pending gap records, note an empty queue."""
        producer = self.producer
        producer.poll(0)
        self._note_acks()
        if self._pending:
            self._drain_pending()
        if len(producer) == 0:
            self._last_empty = time.monotonic()

    def _note_acks(self) -> None:
        """The broker acknowledged something since the last poll: it is up (Rules 3, 5)."""
        if self._acks[0] != self._acks_seen:
            self._acks_seen = self._acks[0]
            self._last_ack = time.monotonic()
            self._brokers_down = False

    async def run(self) -> None:
        """Serve the producer until cancelled."""
        while True:
            self.serve()
            await asyncio.sleep(SERVE_INTERVAL_S)

    def queue_depth(self) -> int:
        return len(self._producer) if self._producer is not None else 0

    def room(self) -> int:
        """How many more messages the producer buffer takes now."""
        return self._s.producer_buffer_max_messages - self.queue_depth()

    def flush(self, timeout: float) -> int:
        """Deliver what is queued (pending gap records included); returns what is left."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            self._drain_pending()
            self.producer.poll(0.05)
        left = self.producer.flush(max(0.0, deadline - time.monotonic()))
        self._note_acks()
        return int(left) + len(self._pending)

    def readiness(self) -> str | None:
        """None when publishing works, else why not (Rule 3)."""
        now, hold = time.monotonic(), self._s.producer_ack_stall_s
        if self.fatal:
            return f"kafka: fatal producer error: {self.fatal}"
        if not self.topics_ready:
            return f"kafka: topics not created yet: {self._topic_error}" if self._topic_error \
                else "kafka: topics not created yet"
        depth = self.queue_depth()
        waited = now - max(self._last_ack, self._last_empty)
        if depth and waited > hold:
            return f"kafka: {depth} messages unacknowledged for {waited:.1f} s"
        if self._brokers_down:
            return "kafka: all brokers down"
        if self._last_trouble and now - self._last_trouble[0] < hold:
            return f"kafka: {self._last_trouble[1]} ({now - self._last_trouble[0]:.1f} s ago)"
        return None
