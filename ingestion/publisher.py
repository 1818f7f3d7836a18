"""Kafka side of ingestion, the executor: the idempotent producer and the topics' upkeep.

The decisions (what a failed delivery means, what to hold, replay or report lost, readiness) are
``ingestion.delivery``'s; this module carries them out with confluent-kafka and hands the core's
reports (an event lost, a gap record queued or acknowledged) to whoever asks (``take_reports``).

Rules:
  1. Value = ``events.encode(message)``, key = symbol, Kafka timestamp = receipt time (ms); trade
     and aggTrade go to TOPIC_TRADES, bookTicker to TOPIC_BOOK_TICKER, gap records to TOPIC_GAPS,
     bad frames (raw bytes, reason headers) to TOPIC_DEAD_LETTER; backfill rows come by ``feed``.
  2. The hot path is one produce per event, with the acknowledgement callback of its (type,
     symbol) (``ingestion.acks``); Kafka's answers go to the core from there.
  3. Delivery callbacks run inside ``serve()`` (or ``flush()``) on the event loop's thread.
  4. Topics are created, and created again when lost, by ``ingestion.topic_keeper``; the
     producer is replaced by ``ingestion.producer_slot`` when the core says so.
"""

from __future__ import annotations

import asyncio
import logging
import time

from confluent_kafka import KafkaException, Producer

from binance_pipeline.common import events as ev
from binance_pipeline.common.events import encode
from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.codes import is_fatal, kind_of
from ingestion.acks import DeliveryCallback, DeliveryReports, chain
from ingestion.actions import OnAck, Row
from ingestion.delivery import DeliveryCore, Limits, Lost, Report, Role
from ingestion.metrics import IngestionMetrics
from ingestion.producer_slot import ProducerSlot, producer_config
from ingestion.replay import Headers, Pending
from ingestion.topic_keeper import TopicKeeper

log = logging.getLogger(__name__)

SERVE_INTERVAL_S = 0.02
FEED_WAIT_S = 0.1  # how long a backfill row waits before it is offered again


class Publisher:
    """Owns the producer; ``start()`` creates it (the constructor makes no network call)."""

    def __init__(self, settings: Settings, metrics: IngestionMetrics) -> None:
        self._s, self._metrics = settings, metrics
        self._topic_of = {
            "trade": settings.topic_trades, "aggTrade": settings.topic_trades,
            "bookTicker": settings.topic_book_ticker,
        }  # fmt: skip
        s = settings
        roles: dict[str, Role] = {
            s.topic_trades: "event", s.topic_book_ticker: "event", s.topic_gaps: "gap",
            s.topic_dead_letter: "dead_letter",
        }  # fmt: skip
        limits = Limits(s.producer_buffer_max_messages, s.producer_ack_stall_s, s.ingestion_replay_window_s,
                        s.ingestion_replay_max_messages)  # fmt: skip
        self.core = DeliveryCore(roles, limits, time.monotonic())
        self._routes: dict[tuple[str, str], tuple[str, DeliveryCallback, int]] = {}
        self._reports = DeliveryReports(settings, self.core, metrics)
        self.acked_events = self._reports.acked_events  # (type, symbol) -> last acked (Rule 2)
        config = {**producer_config(settings), **self._reports.config()}
        self._slot = ProducerSlot(config, self.core)
        self._keeper = TopicKeeper(settings, self.core, self._slot, metrics)
        self._dropped = 0

    def ensure_topics(self, timeout: float = 10.0) -> None:
        """Create the four topics if missing (blocking; run it in a thread)."""
        self._keeper.ensure(timeout)

    def start(self) -> None:
        self._slot.open()
        self._keeper.start()

    @property
    def started(self) -> bool:
        return self._slot.started

    @property
    def fatal(self) -> str | None:
        return self.core.fatal

    @property
    def producer(self) -> Producer:
        return self._slot.producer

    @property
    def slot(self) -> ProducerSlot:
        """The producer holder, shared with the frontier writer (it writes with the same producer)."""
        return self._slot

    def take_reports(self) -> list[Report]:
        """What the core reported since the last call, in order (delivery Rule 1)."""
        return self.core.take_reports()

    def offer(self, msg: ev.TradeMessage | ev.BookTickerMessage, then: OnAck | None = None) -> bool:
        """Queue one event; False (nothing queued, nothing reported) when it is refused.

        ``then`` (backfill rows) is told whether Kafka acknowledged this very message; such a row
        is refused while the topics are missing (the backfill waits).
        """
        symbol = msg["symbol"]
        route = self._routes.get((msg["type"], symbol)) or self._route((msg["type"], symbol))
        topic, callback = route[0], route[1] if then is None else chain(route[1], then)
        value, ts, core = encode(msg), msg["received_at"] // 1000, self.core
        if not core.topics_ready:
            return then is None and core.hold((topic, symbol, value, ts, None))
        try:
            try:
                self._slot.producer.produce(topic, value, symbol, timestamp=ts, on_delivery=callback)
            except KafkaException as exc:
                if not (is_fatal(exc) and self._slot.renew(str(exc))):
                    raise
                self._slot.producer.produce(topic, value, symbol, timestamp=ts, on_delivery=callback)
        except BufferError:
            core.overflowed()
            return False
        except KafkaException as exc:
            self._refused(topic, exc)
            missing = then is None and core.refusal == "topic_missing"
            return missing and core.hold((topic, symbol, value, ts, None))
        core.window.push(core.now, route[2], value, ts)  # the window copies the value (orjson over-allocates)
        return True

    def _refused(self, topic: str, exc: KafkaException) -> None:
        if not self.core.refused(kind_of(exc), topic, str(exc)):
            raise exc
        self._keeper.signal()

    def _route(self, key: tuple[str, str]) -> tuple[str, DeliveryCallback, int]:
        """The topic, the acknowledgement callback and the window's route of one (type, symbol) (Rule 2)."""
        topic = self._topic_of[key[0]]
        callback, kept = self._reports.event_callback(key), self.core.window.route(topic, key[1])
        route = self._routes[key] = (topic, callback, kept)
        return route

    def publish_event(self, msg: ev.TradeMessage | ev.BookTickerMessage) -> None:
        """Queue one event; a refused one is counted and reported lost (delivery Rule 1)."""
        if self.offer(msg):
            return
        self._dropped += 1
        self._metrics.producer_dropped.labels(msg["type"]).inc()
        ident = msg["id"] if msg["type"] != "bookTicker" else None
        lost = Lost(msg["symbol"], msg["type"], ident, msg["received_at"], self.core.refusal)
        self.core.refused_event(lost, time.monotonic(), self._dropped)

    def publish_gap(self, record: ev.GapMessage) -> None:
        """Queue a gap record; it is never dropped (delivery Rule 1)."""
        item = (self._s.topic_gaps, record["symbol"], encode(record), record["detected_at"] // 1000, None)
        self.core.gap_queued(record, item)
        self._drain_pending()

    def dead_letter(self, raw: bytes, reason: str, received_at: int) -> None:
        """Send a rejected frame, unchanged, with its reason in the headers."""
        headers: Headers = [(ev.HDR_REASON, reason.encode()), (ev.HDR_STAGE, b"ingestion"),
                            (ev.HDR_RECEIVED_AT, str(received_at).encode())]  # fmt: skip
        item: Pending = (self._s.topic_dead_letter, None, raw, received_at // 1000, headers)
        sent = self._send(item) if self.core.topics_ready else "refused"
        if sent == "refused":  # held: sent once the topic is back
            self.core.pending.append(item)
        elif sent == "full":
            self._metrics.producer_dropped.labels("dead_letter").inc()
            self.core.trouble(time.monotonic(), "producer buffer full: a dead letter was dropped")
            log.error("dead letter dropped (producer buffer full): %s", reason)

    def _send(self, item: Pending) -> str:
        """Hand one message to the producer: "sent" (kept in the window), "full" or "refused"."""
        try:
            self.producer.produce(item[0], item[2], item[1], timestamp=item[3], headers=item[4])
        except BufferError:
            return "full"
        except KafkaException as exc:  # kept: sent once the topic is back
            self._refused(item[0], exc)
            return "refused"
        self.core.window.append(time.monotonic(), item)
        return "sent"

    def _drain_pending(self) -> None:
        core = self.core
        while core.pending and core.topics_ready and self._send(core.pending[0]) == "sent":
            core.pending.popleft()

    def serve(self) -> None:
        """Run delivery callbacks, renew or retire the producer, watch the ids, send what waits."""
        core = self.core
        try:
            self.producer.poll(0)
        except KafkaException as exc:  # the client raises its fatal error from poll() too
            if not is_fatal(exc):
                raise
            core.fatal_error(str(exc))
        if core.fatal_seen is not None:
            self._slot.renew(core.fatal_seen)
        self._keeper.signal()
        core.served(time.monotonic())
        if core.retire_due:
            core.cut_now()
            self._slot.retire()
        self._keeper.watch(core.now)
        if core.pending:
            self._drain_pending()
        if len(self.producer) == 0:
            core.emptied(time.monotonic())

    async def run(self) -> None:
        """Serve the producer and keep its topics until cancelled (reports pile up: take them)."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.keep_topics(), name="keep-topics")
            while True:
                self.serve()
                await asyncio.sleep(SERVE_INTERVAL_S)

    async def feed(self, rows: asyncio.Queue[Row], reserve: int) -> None:
        """Offer backfill rows in order while ``reserve`` slots stay free (live streams first)."""
        while True:
            row, then = await rows.get()
            while not (self.room() >= reserve and self.offer(row, then)):  # noqa: ASYNC110 - no event
                await asyncio.sleep(FEED_WAIT_S)  # the broker is behind, or the topics are missing

    async def keep_topics(self) -> None:
        """Create lost topics again until cancelled (``ingestion.topic_keeper``)."""
        await self._keeper.keep()

    def queue_depth(self) -> int:
        return len(self._slot.producer) if self._slot.started else 0

    def room(self) -> int:
        """How many more messages the producer buffer takes now."""
        return self._s.producer_buffer_max_messages - self.queue_depth()

    def flush(self, timeout: float) -> int:
        """Deliver what is queued (pending gap records included); returns what is left."""
        deadline = time.monotonic() + timeout
        while self.core.pending and time.monotonic() < deadline:
            self._drain_pending()
            self.producer.poll(0.05)
        left = self.producer.flush(max(0.0, deadline - time.monotonic()))
        self.core.served(time.monotonic())
        return int(left) + len(self.core.pending)

    def readiness(self) -> str | None:
        """None when publishing works, else why not, naming the broker."""
        why = self.core.readiness(time.monotonic(), self.queue_depth(), self._keeper.answered_at())
        return None if why is None else f"kafka ({self._s.kafka_bootstrap_servers}): {why}"
