"""The pipeline topics' upkeep for ingestion: create them, and create them again when lost.

Rules:
  1. Topics are created by us, with our settings (``kafka.topics``), never auto-created by the
     broker (``publisher.producer_config``).
  2. A loss the delivery core found (its ``losses`` moved: delivery Rule 4) wakes ``keep``,
     which creates the topics again with backoff, then asks the producer for each so it forgets
     "does not exist"; only then the core is told they exist. A loss noticed during an attempt
     starts another.
  4. The topics' ids are asked for every TOPIC_CHECK_S; a changed id (a new, empty log) queues the
     replay window's messages of that topic again (delivery Rule 5).
  3. While acknowledgements stall with the broker up, the broker is asked for the topics every
     TOPIC_CHECK_S (the client may retry a missing partition for long).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from confluent_kafka import KafkaException

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.topic_ids import TopicIds, changed_ids
from binance_pipeline.kafka.topics import create_missing, pipeline_specs, pipeline_topics
from ingestion.delivery import DeliveryCore
from ingestion.errors import TopicSetupError
from ingestion.metrics import IngestionMetrics
from ingestion.producer_slot import ProducerSlot

log = logging.getLogger(__name__)

TOPIC_CHECK_S = 2.0  # Rule 3


class TopicKeeper:
    def __init__(
        self, settings: Settings, core: DeliveryCore, slot: ProducerSlot, metrics: IngestionMetrics
    ) -> None:
        self._s, self._core, self._slot, self._metrics = settings, core, slot, metrics
        self._ids: TopicIds | None = None
        self._lost = asyncio.Event()  # set on the loop's thread only
        self._losses_seen = 0
        self._announced = False  # the current loss is logged

    def ensure(self, timeout: float = 10.0) -> None:
        """Create the four topics if missing (blocking; run it in a thread)."""
        self._create(timeout)
        self._core.topics_created()

    def _create(self, timeout: float = 10.0) -> None:
        failed = create_missing(self._s, pipeline_specs(self._s), timeout)
        self._core.creating(next(iter(failed.values()), None))
        if failed:
            raise TopicSetupError(f"cannot create topics {failed}")
        log.info("topics ready: %s", ", ".join(pipeline_topics(self._s)))

    def start(self) -> None:
        """Watch the topics' ids when a replay window is kept (Rule 4)."""
        if self._core.window.maxlen:
            self._ids = TopicIds(self._s, pipeline_topics(self._s), TOPIC_CHECK_S)

    def answered_at(self) -> float | None:
        """When the broker last answered for the topics' ids (delivery Rule 3)."""
        return self._ids.answered_at if self._ids is not None else None

    def watch(self, now: float) -> None:
        """Rule 4: queue the window again for a topic with a new id (delivery Rule 5)."""
        ids = self._ids.poll(now) if self._ids is not None else None
        if ids is None:
            return
        changed = changed_ids(self._core.known_ids, ids)
        again, retire = self._core.ids_seen(changed, len(ids) == len(self._core.topics), now)
        if retire is not None:
            self._slot.retire(retire)
        if changed:
            self._core.pending.extend(again)  # they re-enter the window as they are sent
            self._metrics.replayed.inc(len(again))
            log.warning("kafka: topic(s) %s have a new id (the broker lost their log: restarted empty?); "
                        "sending the last %.0f s again: %d message(s)", ", ".join(changed),
                        self._s.ingestion_replay_window_s, len(again))  # fmt: skip
        self._core.evict()

    def signal(self) -> None:
        """Rule 2: wake ``keep`` when the core found the topics lost since the last call."""
        if self._core.losses != self._losses_seen:
            self._losses_seen = self._core.losses
            if not self._announced:
                self._announced = True
                log.error("kafka: %s; recreating the topics", self._core.lost_because)
            self._lost.set()

    async def keep(self) -> None:
        """Rule 2, until cancelled."""
        backoff = Backoff(self._s.backoff_initial_s, self._s.backoff_max_s)
        while True:
            await self._wait_for_loss()
            self._lost.clear()
            try:
                await asyncio.to_thread(self._recreate)
            except (TopicSetupError, KafkaException) as exc:
                self._lost.set()
                delay = backoff.next_delay()
                log.warning("kafka: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()

    async def _wait_for_loss(self) -> None:
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), TOPIC_CHECK_S)
            if self._lost.is_set() or not self._core.acks_stalled(time.monotonic(), len(self._slot.producer)):
                continue
            missing = await asyncio.to_thread(self._missing)
            if missing:  # Rule 3
                self._core.lose_topics(f"topics {', '.join(missing)} do not exist on the broker")
                self.signal()

    def _missing(self) -> list[str]:
        try:
            meta = self._slot.producer.list_topics(timeout=5)
        except KafkaException:
            return []  # the broker is down: nothing to learn now
        return self._core.missing({name for name, t in meta.topics.items() if t.error is None})

    def _recreate(self) -> None:
        """Blocking: run it in a thread."""
        self._create()
        for topic in pipeline_topics(self._s):
            self._slot.producer.list_topics(topic, timeout=5)
        self._core.topics_created()
        self._announced = False
