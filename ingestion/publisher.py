"""Kafka side of ingestion: topics, the idempotent producer, delivery accounting, readiness.

Rules:
  1. Value = ``binance_pipeline.common.events.encode(message)``, key = symbol, Kafka timestamp = receipt time
     (ms); trade and aggTrade go to TOPIC_TRADES, bookTicker to TOPIC_BOOK_TICKER, gap
     records to TOPIC_GAPS, bad frames (raw bytes, reason headers) to TOPIC_DEAD_LETTER.
  2. Nothing is lost silently. An event ``produce`` refuses (buffer full) or whose delivery
     fails is counted, logged and handed to ``on_lost`` (which records and repairs it); a gap
     record is never dropped: refused or failed ones wait in ``_pending`` and are retried in
     order. Dead letters that cannot be queued are counted and logged.
  3. Readiness is off while the broker does not acknowledge queued messages, or answers none of
     the topic-id requests (a quiet feed queues nothing to acknowledge) for UNANSWERED_S, after a
     delivery failure or a refused produce (for ``PRODUCER_ACK_STALL_S``), and before the topics
     exist; every reason names the bootstrap servers.
  4. Delivery callbacks run inside ``serve()`` (or ``flush()``) on the event loop's thread.
  5. Delivery accounting is cheap per success and complete per failure: each event carries
     the acknowledgement callback of its (type, symbol), which counts it and observes the
     latency of 1 in ``LATENCY_SAMPLE_EVERY`` acknowledgements; ``serve()`` turns "acks
     arrived" into readiness once per poll. Every failed delivery, of any message, goes
     through ``_delivery_failed`` on its own (Rule 2).
  6. Frontier seams (``ingestion.frontier``): the last acknowledged message of each (type,
     symbol) is kept in ``acked_events`` (one dict store per acknowledgement, decoded later by
     the frontier writer); every gap record is shown to ``gap_listener`` when queued and again
     when acknowledged.
  7. Topics that vanish (a non-durable broker restarted empty, a new cluster on the same
     address) are recreated by ``run()``: a produce refused or a delivery failed because the
     topic or partition is unknown, or the broker's metadata lacking a topic while
     acknowledgements stall, marks the topics missing (readiness off); ``run()`` creates
     them again with backoff, refreshes the producer's metadata, and readiness comes back by
     itself. Until then nothing is produced: events, gap records and dead letters are held in
     ``_pending`` (events at most PRODUCER_BUFFER_MAX_MESSAGES; past that an event is reported
     lost, reason ``topic_missing``, and backfilled like any other loss) and sent in order once
     the topics are back; an event whose delivery failed because its topic is missing is held
     the same way, not reported lost. A backfill row is refused meanwhile (the backfill waits).
     The producer never lets the broker auto-create a topic (that would use the broker's
     defaults, not ours).
  8. What the broker acknowledged, it can still lose: a non-durable broker restarted empty, a
     cluster replaced. Every message sent is kept in a replay window (INGESTION_REPLAY_WINDOW_S,
     bounded by INGESTION_REPLAY_MAX_MESSAGES), and the pipeline topics' ids are watched
     (kafka/topic_ids.py Rule 1; every TOPIC_CHECK_S). A topic whose id changed is a new, empty
     log: the window's messages of that topic are sent again, each once (``ingestion.replay``
     decides which, purely; through ``_pending``, in order), so events the worker had not yet
     read from the lost log reach it from the new one (its writes are idempotent, so those it
     had read cost nothing). Exactly the messages that may have reached the old log are sent
     again, so none reaches the new log twice: when this process finds its topics missing, it
     retires its producer at once (the *cut*): what the producer still held is purged into
     ``_pending`` and sent once the topics are back, and what was handed to it before the cut
     and not purged was acknowledged by the old log, which the replay sends again. When another
     client recreated the topics first, the cut is when all brokers were last seen down (else
     every message of the window), and the producer is retired when the new ids are seen.
     Messages leave the window only once they are older than the window at a check that found
     every topic's id unchanged, so an outage of any length keeps them until the broker is seen
     again. A retired producer's librdkafka state (its idempotence id, its cached metadata)
     belongs to the lost broker; its replacement starts clean.
  9. A fatal producer error (librdkafka: the instance is unusable; after a broker restarted empty
     an idempotent producer's id can collide with one the new broker hands out, which desyncs its
     sequence numbers) replaces the producer the same way, on the loop's thread, at most
     FATAL_RENEWALS times per FATAL_WINDOW_S; past that the error is final (``fatal``) and
     ingestion exits. Messages that failed with it are queued again, not reported lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.events import (
    HDR_REASON,
    HDR_RECEIVED_AT,
    HDR_STAGE,
    BookTickerMessage,
    GapMessage,
    TradeMessage,
    encode,
)
from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.codes import PRODUCER_GONE as PURGED  # Rules 8-9: sent again on a new producer
from binance_pipeline.kafka.codes import is_fatal, topic_missing
from binance_pipeline.kafka.config import durable_producer_config, explain
from binance_pipeline.kafka.topic_ids import TopicIds, changed_ids
from binance_pipeline.kafka.topics import create_missing, pipeline_specs, pipeline_topics
from ingestion.errors import TopicSetupError
from ingestion.metrics import IngestionMetrics
from ingestion.replay import Headers, Pending, evict, plan_replay

log = logging.getLogger(__name__)

OnLost = Callable[[str, str, int | None, int, str], None]  # symbol, type, id, received_at, reason
SERVE_INTERVAL_S = 0.02
LATENCY_SAMPLE_EVERY = 16  # a power of two (Rule 5)
DeliveryCallback = Callable[[KafkaError | None, Message], None]
OnAck = Callable[[bool], None]  # called once per message: True when Kafka acknowledged it
LOG_EVERY_S = 5.0
TOPIC_CHECK_S = 2.0  # Rule 7: how often stalled acknowledgements make us ask for the topics
UNANSWERED_S = 6.0  # Rule 3: the topic-id requests (every TOPIC_CHECK_S) unanswered this long: broker away
FATAL_RENEWALS, FATAL_WINDOW_S = 5, 60.0  # Rule 9
RETIRE_TIMEOUT_S = 10.0  # Rules 8-9: how long a replaced producer may take to hand its messages back


def _headers_of(msg: Message) -> Headers:
    """A delivered (or failed) message's headers as the producer takes them."""
    got = msg.headers() or []
    return list(got.items()) if isinstance(got, dict) else list(got)


class GapListener(Protocol):
    """Sees every gap record when it is queued and when Kafka acknowledged it (Rule 6)."""

    def gap_published(self, record: GapMessage) -> None: ...
    def gap_acked(self, record: GapMessage) -> None: ...


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
        "allow.auto.create.topics": False,  # Rule 7: topics are created by us, with our settings
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
        self.acked_events: dict[tuple[str, str], Message] = {}  # (type, symbol) -> last acked (Rule 6)
        self.gap_listener: GapListener | None = None
        self._producer: Producer | None = None
        self._pending: deque[Pending] = deque()
        self._window: deque[tuple[float, Pending]] = deque(maxlen=settings.ingestion_replay_max_messages)
        self._topic_ids: TopicIds | None = None  # Rule 8
        self._known_ids: dict[str, str] = {}
        self._confirmed_at = 0.0  # when every topic last had its known id
        self._now = time.monotonic()  # serve()'s clock: what the window stamps messages with
        self.topics_ready = False
        self._topic_error: str | None = None
        self.fatal: str | None = None
        self._fatal_seen: str | None = None  # Rule 9: replace the producer at the next serve()
        self._renewals: deque[float] = deque(maxlen=FATAL_RENEWALS)
        self._resending: Counter[bytes] | None = None  # Rule 8: values being sent again, how often
        self._sent: dict[bytes, deque[Pending]] = {}  # Rules 8-9: while retiring, the window by value
        self._cut: float | None = None  # Rule 8: when the producer of a lost log was retired
        self._retire_due = False  # Rule 7: topics found missing; retire the producer at the next serve()
        self._down_at: float | None = None  # Rule 8: when all brokers were last seen down
        now = time.monotonic()
        self._last_ack = self._last_empty = now
        self._last_trouble: tuple[float, str] | None = None
        self._brokers_down = False
        self._failures = self._dropped = 0
        self._last_log = 0.0
        self._topics_lost = asyncio.Event()  # Rule 7: set on the loop's thread only
        self._ever_lost = False
        self._refusal = "producer_overflow"  # why the last ``offer`` returned False

    # ----------------------------------------------------------------- set-up
    def ensure_topics(self, timeout: float = 10.0) -> None:
        """Create the four topics if missing (blocking; run it in a thread)."""
        self._create_topics(timeout)
        self.topics_ready = True

    def _create_topics(self, timeout: float = 10.0) -> None:
        failed = create_missing(self._s, pipeline_specs(self._s), timeout)
        self._topic_error = next(iter(failed.values()), None)
        if failed:
            raise TopicSetupError(f"cannot create topics {failed}")
        log.info("topics ready: %s", ", ".join(pipeline_topics(self._s)))

    def start(self) -> None:
        self._producer = self._new_producer()
        self._metrics.queue_depth = self.queue_depth
        if self._window.maxlen:
            self._topic_ids = TopicIds(self._s, pipeline_topics(self._s), TOPIC_CHECK_S)

    def _new_producer(self) -> Producer:
        cfg = producer_config(self._s)
        cfg["on_delivery"] = self._on_delivery
        cfg["error_cb"] = self._on_error
        return Producer(cfg)

    @property
    def started(self) -> bool:
        return self._producer is not None

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("Publisher.start() was not called")
        return self._producer

    # ----------------------------------------------------------------- hot path
    def offer(self, msg: TradeMessage | BookTickerMessage, then: OnAck | None = None) -> bool:
        """Queue one event; False (nothing queued, nothing recorded) when the buffer is full.

        ``then`` (backfill rows) is told whether Kafka acknowledged this very message.
        """
        key = (msg["type"], msg["symbol"])
        route = self._routes.get(key) or self._route(key)
        callback = route[1] if then is None else _chain(route[1], then)
        # an exact-size copy: orjson over-allocates its output, which the replay window would keep
        value, ts = bytes(memoryview(encode(msg))), msg["received_at"] // 1000
        if not self.topics_ready:  # Rule 7: held until the topics are back (a backfill row waits)
            return then is None and self._hold((route[0], key[1], value, ts, None))
        try:
            try:
                self.producer.produce(route[0], value, key[1], timestamp=ts, on_delivery=callback)
            except KafkaException as exc:
                if not (is_fatal(exc) and self._renew_after_fatal(str(exc))):
                    raise
                self.producer.produce(route[0], value, key[1], timestamp=ts, on_delivery=callback)
        except BufferError:
            self._refusal = "producer_overflow"
            return False
        except KafkaException as exc:
            self._refused(route[0], exc)
            return then is None and self._refusal == "topic_missing" \
                and self._hold((route[0], key[1], value, ts, None))
        self._window.append((self._now, (route[0], key[1], value, ts, None)))  # Rule 8
        return True

    def _hold(self, item: Pending) -> bool:
        """Rule 7: keep an event in ``_pending`` while its topic is missing; False (nothing kept)
        when PRODUCER_BUFFER_MAX_MESSAGES are held already."""
        if len(self._pending) >= self._s.producer_buffer_max_messages:
            self._refusal = "topic_missing"
            return False
        self._pending.append(item)
        return True

    def _refused(self, topic: str, exc: KafkaException) -> None:
        """A produce the client refused outright: a missing topic (Rule 7), a producer to replace
        (Rule 9), else fatal."""
        if is_fatal(exc):
            self._fatal_seen = str(exc)
            self._refusal = "producer_fatal"
            return
        if not topic_missing(exc):
            raise exc
        self._refusal = "topic_missing"
        self._lose_topics(f"topic {topic} does not exist on the broker")

    def _route(self, key: tuple[str, str]) -> tuple[str, DeliveryCallback]:
        """The topic and the acknowledgement callback of one (type, symbol) (Rule 5)."""
        published, acks, failed = self._metrics.published, self._acks, self._delivery_failed
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

        route = self._routes[key] = (self._topic_of[key[0]], on_delivery)
        return route

    def publish_event(self, msg: TradeMessage | BookTickerMessage) -> None:
        """Queue one event; a refused one is counted, logged and reported lost (Rule 2)."""
        if self.offer(msg):
            return
        self._dropped += 1
        self._metrics.producer_dropped.labels(msg["type"]).inc()
        if self._refusal == "producer_overflow":
            self._trouble(f"producer buffer full ({self._dropped} events refused so far)")
        ident = msg["id"] if msg["type"] != "bookTicker" else None
        self.on_lost(msg["symbol"], msg["type"], ident, msg["received_at"], self._refusal)

    def publish_gap(self, record: GapMessage) -> None:
        """Queue a gap record; it is never dropped (Rule 2)."""
        item = (self._s.topic_gaps, record["symbol"], encode(record), record["detected_at"] // 1000, None)
        if self.gap_listener is not None:
            self.gap_listener.gap_published(record)
        self._pending.append(item)
        self._drain_pending()

    def dead_letter(self, raw: bytes, reason: str, received_at: int) -> None:
        """Send a rejected frame, unchanged, with its reason in the headers."""
        headers: Headers = [
            (HDR_REASON, reason.encode()), (HDR_STAGE, b"ingestion"),
            (HDR_RECEIVED_AT, str(received_at).encode()),
        ]  # fmt: skip
        item: Pending = (self._s.topic_dead_letter, None, raw, received_at // 1000, headers)
        if not self.topics_ready:  # Rule 7: sent once the topic is back
            self._pending.append(item)
            return
        try:
            self.producer.produce(item[0], raw, None, timestamp=item[3], headers=headers)
        except KafkaException as exc:  # Rule 7: kept until the topic is back
            self._refused(self._s.topic_dead_letter, exc)
            self._pending.append(item)
        except BufferError:
            self._metrics.producer_dropped.labels("dead_letter").inc()
            self._trouble("producer buffer full: a dead letter was dropped")
            log.error("dead letter dropped (producer buffer full): %s", reason)  # noqa: TRY400
        else:
            self._window.append((self._now, item))  # Rule 8

    def _drain_pending(self) -> None:
        while self._pending and self.topics_ready:  # Rule 7: held while the topics are missing
            topic, key, value, ts, headers = self._pending[0]
            try:
                self.producer.produce(topic, value, key, timestamp=ts, headers=headers)
            except BufferError:
                return
            except KafkaException as exc:  # kept in _pending: sent once the topic is back
                self._refused(topic, exc)
                return
            self._window.append((time.monotonic(), self._pending.popleft()))  # Rule 8

    # ----------------------------------------------------------------- callbacks
    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """Gap records and dead letters (events carry their own callback, see ``_route``)."""
        if err is not None:
            self._delivery_failed(err, msg)
            return
        self._acks[0] += 1
        if self.gap_listener is not None and msg.topic() == self._s.topic_gaps:
            self.gap_listener.gap_acked(orjson.loads(msg.value() or b"{}"))

    def _delivery_failed(self, err: KafkaError, msg: Message) -> None:
        topic, value = msg.topic(), msg.value() or b""
        if err.code() in PURGED:  # Rule 8: a retired producer's message, sent again by the new one
            if self._resending is not None and self._resending[value] > 0:
                self._resending[value] -= 1
                return  # the replay window sends it again already: once is enough
            copies = self._sent.get(value)
            kept = copies.popleft() if copies else None  # identical bad frames: one copy each
            if kept is None:  # not in the window (evicted): rebuilt from the report
                headers = _headers_of(msg) or None
                key = msg.key()
                stamp = msg.timestamp()[1]
                kept = (topic or "", key.decode() if key else None, value,
                        stamp if stamp > 0 else time.time_ns() // 1_000_000, headers)
            self._pending.append(kept)
            return
        self._failures += 1
        self._metrics.delivery_failures.labels(topic).inc()
        self._trouble(f"delivery to {topic} failed: {err.str()}")
        if topic_missing(err):
            self._lose_topics(f"delivery to {topic} failed: {err.str()}")
        if topic == self._s.topic_gaps:
            self._pending.append((topic, (msg.key() or b"").decode(), value, msg.timestamp()[1], None))
        elif topic == self._s.topic_dead_letter and topic_missing(err):  # Rule 7: resent once back
            self._pending.append((topic, None, value, msg.timestamp()[1], _headers_of(msg)))
        elif topic in (self._s.topic_trades, self._s.topic_book_ticker):
            self._event_failed(err, msg, topic, value)
        if time.monotonic() - self._last_log >= LOG_EVERY_S or self._failures == 1:
            self._last_log = time.monotonic()
            log.error("kafka delivery failure #%d to %s: %s", self._failures, topic, err.str())

    def _event_failed(self, err: KafkaError, msg: Message, topic: str, value: bytes) -> None:
        """An event whose topic is missing is still in hand: held and sent once the topic is back
        (Rule 7); any other failure, or one past the bound, is a loss (Rule 2)."""
        key = msg.key()
        if topic_missing(err) and self._hold((topic, key.decode() if key else None, value,
                                               msg.timestamp()[1], None)):
            return
        event = orjson.loads(value)
        ident = event.get("id") if event["type"] != "bookTicker" else None
        self.on_lost(event["symbol"], event["type"], ident, event["received_at"], "delivery_failed")

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._brokers_down = True
            self._down_at = time.monotonic()  # Rule 8: nothing sent from now on reached the old log
            self._acks_seen = self._acks[0]  # acks served before this error do not undo it
        if err.fatal():
            self._fatal_seen = err.str()  # Rule 9: not inside the old producer's own callback
        why = explain(err, self._s)  # authentication or TLS: said plainly, in the log and /readyz
        if why:
            self._trouble(why)
            log.error("kafka: %s", why)
        else:
            log.warning("kafka client error: %s", err.str())

    def _trouble(self, what: str) -> None:
        self._last_trouble = (time.monotonic(), what)

    def _lose_topics(self, why: str) -> None:
        """Rule 7: readiness off, and ``run()`` recreates the topics."""
        if self.topics_ready:
            log.error("kafka: %s; recreating the topics", why)
        if self._cut is None:  # Rule 8: the first sign of a lost log since the last replay
            self._retire_due = True
        self.topics_ready, self._ever_lost = False, True
        self._topics_lost.set()

    async def _keep_topics(self) -> None:
        """Rule 7: whenever topics are found missing, create them again (backoff between tries).

        The flag is cleared before an attempt, so a loss noticed during one starts another.
        """
        backoff = Backoff(self._s.backoff_initial_s, self._s.backoff_max_s)
        while True:
            await self._wait_for_lost_topics()
            self._topics_lost.clear()
            try:
                await asyncio.to_thread(self._recreate_topics)
            except (TopicSetupError, KafkaException) as exc:
                self._topics_lost.set()
                delay = backoff.next_delay()
                log.warning("kafka: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()

    async def _wait_for_lost_topics(self) -> None:
        """Until a loss is noticed; while acknowledgements stall with the broker up, ask it for
        the topics every TOPIC_CHECK_S (the client may retry a missing partition for long)."""
        while not self._topics_lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._topics_lost.wait(), TOPIC_CHECK_S)
            if self._topics_lost.is_set() or not self._acks_stalled():
                continue
            missing = await asyncio.to_thread(self._missing_topics)
            if missing:
                self._lose_topics(f"topics {', '.join(missing)} do not exist on the broker")

    def _acks_stalled(self) -> bool:
        waited = time.monotonic() - max(self._last_ack, self._last_empty)
        return self.topics_ready and self.queue_depth() > 0 and waited > self._s.producer_ack_stall_s

    def _missing_topics(self) -> list[str]:
        """The pipeline topics the broker does not know (blocking); none when it cannot be asked."""
        try:
            meta = self.producer.list_topics(timeout=5)
        except KafkaException:
            return []  # the broker is down: nothing to learn now
        known = {name for name, t in meta.topics.items() if t.error is None}
        return [t for t in pipeline_topics(self._s) if t not in known]

    def _recreate_topics(self) -> None:
        """Create the topics, then ask the broker for each so the producer learns they exist
        again (it caches "does not exist"); only then ready (blocking: run in a thread)."""
        self._create_topics()
        for topic in pipeline_topics(self._s):
            self.producer.list_topics(topic, timeout=5)
        self._refusal = "producer_overflow"
        self.topics_ready = True

    # ----------------------------------------------------------------- upkeep
    def serve(self) -> None:
        """Run delivery callbacks, retry pending gap records, note an empty queue."""
        producer = self.producer
        try:
            producer.poll(0)
        except KafkaException as exc:  # the client raises its fatal error from poll() too (Rule 9)
            if not is_fatal(exc):
                raise
            self._fatal_seen = str(exc)
        if self._fatal_seen is not None:
            self._renew_after_fatal(self._fatal_seen)
            producer = self.producer
        self._note_acks()
        self._now = time.monotonic()
        if self._retire_due:
            self._retire_lost_producer()
            producer = self.producer
        if self._topic_ids is not None:
            self._watch_topics(self._topic_ids, self._now)
        if self._pending:
            self._drain_pending()
        if len(producer) == 0:
            self._last_empty = time.monotonic()

    def _watch_topics(self, topic_ids: TopicIds, now: float) -> None:
        """Rule 8: send the window again for a topic with a new id; else let old messages go."""
        ids = topic_ids.poll(now)
        if ids is None:
            return
        changed = changed_ids(self._known_ids, ids)
        if changed:
            self._replay(changed)
        elif len(ids) == len(pipeline_topics(self._s)) and self.topics_ready:
            self._confirmed_at, self._cut = now, None  # the log is the one we know: no replay due
        evict(self._window, self._confirmed_at - self._s.ingestion_replay_window_s)

    def _retire_lost_producer(self) -> None:
        """Rule 8: topics found missing. Everything the producer still holds is purged into
        ``_pending`` (held until the topics are back), so what was handed to it before this moment
        either reached the old log (the window sends it again once the new ids are seen) or is in
        ``_pending``: nothing of it can reach the new log twice."""
        self._retire_due = False
        self._cut = self._now
        self._retire_producer()

    def _replay(self, changed: list[str]) -> None:
        """Send the window's messages of ``changed`` again, each once; the others stay in the window."""
        cut = self._cut
        if cut is None:  # the topics came back before we saw them missing (another client made them)
            cut = self._down_at if self._down_at is not None and self._down_at > self._confirmed_at \
                else float("inf")
        again, kept = plan_replay(self._window, self._pending, changed, cut)
        self._window.clear()
        self._window.extend(kept)
        if self._cut is None:  # the producer of the lost log is still ours: retire it now
            self._retire_producer(resending=Counter(item[2] for item in (*again, *self._pending)))
        self._cut = None
        self._pending.extend(again)  # re-enter the window as they are sent (``_drain_pending``)
        self._metrics.replayed.inc(len(again))
        log.warning("kafka: topic(s) %s have a new id (the broker lost their log: restarted empty?); "
                    "sending the last %.0f s again: %d message(s)", ", ".join(changed),
                    self._s.ingestion_replay_window_s, len(again))
        self._drain_pending()

    def _renew_after_fatal(self, why: str) -> bool:
        """Rule 9: a new producer, unless that happened FATAL_RENEWALS times lately (then final)."""
        self._fatal_seen = None
        now = time.monotonic()
        if len(self._renewals) == FATAL_RENEWALS and now - self._renewals[0] < FATAL_WINDOW_S:
            self.fatal = why
            return False
        self._renewals.append(now)
        log.error("kafka: fatal producer error (%s); replacing the producer", why)
        self._retire_producer()
        return True

    def _retire_producer(self, resending: Counter[bytes] | None = None) -> None:
        """Rules 8-9: a new producer; the old one's messages are purged into ``_pending``, except
        those in ``resending`` (queued again already). A purge report lacks the headers and the
        timestamp, so each message is queued again as the window kept it."""
        self._resending = resending or Counter()
        self._sent = {}
        for _, item in self._window:
            self._sent.setdefault(item[2], deque()).append(item)
        try:
            self._swap_producer()
        finally:
            self._resending, self._sent = None, {}

    def _swap_producer(self) -> None:
        old, self._producer = self.producer, self._new_producer()
        old.purge(in_queue=True, in_flight=True)
        deadline = time.monotonic() + RETIRE_TIMEOUT_S
        while len(old) and time.monotonic() < deadline:  # their reports (purged) queue them again
            with contextlib.suppress(KafkaException):  # a fatal producer raises its error here too
                old.poll(0.05)
        if len(old):
            log.error("kafka: %d message(s) of the replaced producer were not handed back in %.0f s; "
                      "those in the replay window are sent again", len(old), RETIRE_TIMEOUT_S)
        log.warning("kafka: producer replaced; %d message(s) it still held queued again", len(self._pending))

    def _note_acks(self) -> None:
        """The broker acknowledged something since the last poll: it is up (Rules 3, 5)."""
        if self._acks[0] != self._acks_seen:
            self._acks_seen = self._acks[0]
            self._last_ack = time.monotonic()
            self._brokers_down = False

    async def run(self) -> None:
        """Serve the producer, and keep its topics (Rule 7), until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._keep_topics(), name="keep-topics")
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
        """None when publishing works, else why not, naming the broker (Rule 3)."""
        why = self._not_ready(time.monotonic(), self._s.producer_ack_stall_s)
        return None if why is None else f"kafka ({self._s.kafka_bootstrap_servers}): {why}"

    def _not_ready(self, now: float, hold: float) -> str | None:
        if self.fatal:
            return f"fatal producer error: {self.fatal}"
        if not self.topics_ready:
            if self._ever_lost:
                return "topics missing on the broker; recreating them"
            return f"topics not created yet: {self._topic_error}" if self._topic_error \
                else "topics not created yet"
        depth = self.queue_depth()
        waited = now - max(self._last_ack, self._last_empty)
        if depth and waited > hold:
            return f"{depth} messages unacknowledged for {waited:.1f} s"
        silent = now - self._topic_ids.answered_at if self._topic_ids is not None else 0.0
        if silent > max(hold, UNANSWERED_S):  # a quiet feed queues nothing: ask the broker itself
            return f"broker unreachable: no answer for {silent:.0f} s"
        if self._brokers_down:
            return "all brokers down"
        if self._last_trouble and now - self._last_trouble[0] < hold:
            return f"{self._last_trouble[1]} ({now - self._last_trouble[0]:.1f} s ago)"
        return None


def _chain(first: DeliveryCallback, then: OnAck) -> DeliveryCallback:
    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        first(err, msg)
        then(err is None)

    return on_delivery
