"""The frontier in Kafka: a compacted topic, read fully at start, written as Kafka acknowledges.

This is the pattern Kafka Connect uses for source offsets: the state lives in the broker, not on
the host, so it survives SIGKILL, OOM and a move to another host.

Rules:
  1. The topic (TOPIC_FRONTIER) is compacted, one partition, TOPIC_REPLICATION_FACTOR copies; the
     record key is ``SYMBOL/type`` and the value one ``FrontierEntry``: after compaction, the
     latest entry per key remains.
  2. ``load_frontier`` reads the topic with the kit's compacted reader (``kafka/compacted.py``:
     every partition up to the end it had when the read began, the last entry per key, a
     tombstone deletes its key); it raises ``FrontierError`` rather than return a partial read.
     An undecodable record is logged and skipped (it cannot name its key's ids).
  3. The frontier comes from acknowledgements only: the last event Kafka acknowledged per key,
     folded into the book by the shell (``fold_acks``, decoded then, not per event) right after
     the losses of the same serve; ``FrontierWriter`` writes what
     ``FrontierBook.due`` returns every FRONTIER_WRITE_INTERVAL_MS; a refused or failed write
     is written again at the next turn. ``final`` writes every entry (shutdown).
  4. Frontier records go through the same idempotent producer as the events (acks=all): the
     writer holds the ``ProducerSlot``, so a replaced producer is the one it writes with.
  5. A frontier topic the broker no longer knows (a broker restarted empty, a new cluster) is
     created again by ``run()`` (retried every turn until it works), and then every entry is
     written again, since the lost log held them all; entries refused meanwhile stay dirty.
  6. ``run()`` watches the topic's id (kafka/topic_ids.py ``TopicIds``, every FRONTIER_CHECK_S),
     so a lost topic is seen as soon as the broker answers, not when a write to it fails: the
     producer keeps a topic it knew for ``topic.metadata.propagation.max.ms`` (30 s) before it
     fails the write. The broker saying it does not know the topic is Rule 5's loss; a new id
     (the topic created again by another client) is a new, empty log: every entry is written
     again.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from confluent_kafka import KafkaError, KafkaException, Message

from binance_pipeline.common.clock import mono_us, now_us
from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.codes import is_fatal, topic_missing
from binance_pipeline.kafka.compacted import read_compacted
from binance_pipeline.kafka.errors import CompactedReadError, TopicsNotCreated
from binance_pipeline.kafka.topic_ids import TopicIds, changed_ids
from binance_pipeline.kafka.topics import TopicSpec, compacted_spec, ensure_topics
from ingestion.errors import FrontierError
from ingestion.frontier import FrontierBook, FrontierEntry, Key, decode_entry, encode_entry, record_key
from ingestion.producer_slot import ProducerSlot

log = logging.getLogger(__name__)

FRONTIER_CHECK_S = 1.0  # Rule 6: how often the topic's id is asked for
TOPIC_CONFIG = {"min.cleanable.dirty.ratio": "0.1", "segment.ms": "3600000"}  # and compacted (Rule 1)


def frontier_topic(settings: Settings) -> TopicSpec:
    """Rule 1: how the frontier topic is created (by the kit's one ``ensure_topics``)."""
    return compacted_spec(settings.topic_frontier, settings, **TOPIC_CONFIG)


def load_frontier(settings: Settings, timeout: float = 30.0) -> list[FrontierEntry]:
    """Every key's latest entry (Rule 2); blocking, run it in a thread."""
    try:
        latest = read_compacted(settings, settings.topic_frontier, _decode, timeout)
    except CompactedReadError as exc:
        raise FrontierError(str(exc)) from exc
    return list(latest.values())


def _decode(_key: bytes, value: bytes) -> FrontierEntry:
    return decode_entry(value)  # the entry names its own key; ValueError is skipped (Rule 2)


def fold_acks(book: FrontierBook, acked: dict[Key, Message]) -> None:
    """Rule 3: the last acknowledged event of each key into the book (``acked`` is emptied)."""
    for key, msg in list(acked.items()):
        event = orjson.loads(msg.value() or b"{}")
        if key[0] == "bookTicker":
            book.acked(key, None, event.get("received_at"))
        else:
            book.acked(key, event.get("id"), event.get("trade_time"))
    acked.clear()


class FrontierWriter:
    """Turns acknowledgements into frontier records (Rules 3, 4)."""

    def __init__(self, settings: Settings, book: FrontierBook, slot: ProducerSlot) -> None:
        self.settings = self._s = settings
        self.book, self._slot = book, slot
        self._keys: dict[bytes, Key] = {}
        self.written = 0
        self._topic_lost = False  # Rule 5
        self._known_id: dict[str, str] = {}  # Rule 6: the topic's id, once seen

    def step(self) -> None:
        self._write(self.book.due(now_us(), mono_us()))

    def final(self) -> None:
        """Write every entry (after the producer flushed and its acknowledgements were folded in)."""
        self._write(self.book.everything(now_us(), mono_us()))

    def _write(self, entries: list[FrontierEntry]) -> None:
        producer = self._slot.producer
        for i, entry in enumerate(entries):
            key = record_key(entry.key)
            self._keys[key] = entry.key
            try:
                producer.produce(self._s.topic_frontier, encode_entry(entry), key,
                                 on_delivery=self._delivered)  # fmt: skip
            except BufferError:
                self.book.mark_dirty(entry.key)
            except KafkaException as exc:
                if not (topic_missing(exc) or is_fatal(exc)):
                    raise
                for rest in entries[i:]:
                    self.book.mark_dirty(rest.key)
                if topic_missing(exc):
                    self._lose_topic(str(exc))
                return  # a fatal producer is replaced (delivery Rule 7); written next turn

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.written += 1
            return
        if topic_missing(err):
            self._lose_topic(err.str())
        log.error("frontier write of %r failed: %s; writing it again", msg.key(), err.str())
        self.book.mark_dirty(self._keys[msg.key() or b""])

    def _lose_topic(self, why: str) -> None:
        if not self._topic_lost:
            log.error("frontier topic %s is gone from the broker (%s); creating it again",
                      self._s.topic_frontier, why)
        self._topic_lost = True

    async def run(self) -> None:
        """Write due entries until cancelled; recreate a lost topic first (Rules 5, 6)."""
        interval = self._s.frontier_write_interval_ms / 1000
        ids = TopicIds(self._s, [self._s.topic_frontier], FRONTIER_CHECK_S)
        while True:
            self._watch(ids)
            if self._topic_lost:
                await self._recreate_topic()
            else:
                self.step()
            await asyncio.sleep(interval)

    def _watch(self, ids: TopicIds) -> None:
        """Rule 6: the broker's last answer about the topic, if a new one came."""
        seen = ids.poll(time.monotonic())
        if seen is None:
            return
        if self._s.topic_frontier in ids.unknown:
            self._lose_topic("the broker does not know it")
        elif changed_ids(self._known_id, seen) and not self._topic_lost:
            log.warning("frontier topic %s was created again elsewhere (new id); writing every entry again",
                        self._s.topic_frontier)  # fmt: skip
            self._write_everything()

    def _write_everything(self) -> int:
        entries = self.book.everything(now_us(), mono_us())
        self._write(entries)
        return len(entries)

    async def _recreate_topic(self) -> None:
        try:
            await asyncio.to_thread(self._create_topic)
        except (TopicsNotCreated, KafkaException) as exc:
            log.warning("frontier topic not created yet (%s); retrying", exc)
            return
        self._topic_lost = False
        self._known_id.clear()  # the id it has now is the one we created (Rule 6)
        written = self._write_everything()
        log.warning("frontier topic %s created again; %d entries written again", self._s.topic_frontier,
                    written)

    def _create_topic(self) -> None:
        """Blocking: the topic, then fresh metadata so the producer stops caching "unknown"."""
        ensure_topics(self._s, [frontier_topic(self._s)])
        self._slot.producer.list_topics(self._s.topic_frontier, timeout=5)
