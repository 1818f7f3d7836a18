"""Ingestion's Prometheus metrics, in one registry served on /metrics.

Rules:
  1. Per-event counts (received, published, rejected, duplicates; by type and symbol) are
     plain ``defaultdict(int)`` increments on the hot path, exported by a collector at scrape
     time: no lock and no label lookup per event.
  2. Gauges that describe live state (producer queue depth, connection ages, ids left to
     backfill, open gaps) are read at scrape time from one ``Live`` source, given once by the
     process that owns the parts (``read_live``), never pushed.
  3. Metrics only observe: nothing here changes what the pipeline does.
  4. Series an alert watches for an increase exist from the start at 0 (Prometheus' ``increase``
     does not see a series born at 1): ``ingestion_gaps_resolved{status="unrepairable"}`` for each
     stream.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

EventKey = tuple[str, str]  # (type, symbol)
STREAMS = ("trade", "aggTrade", "bookTicker")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


class Live(Protocol):
    """What the live gauges read at scrape time (Rule 2)."""

    def queue_depth(self) -> int: ...
    def connection_ages(self) -> list[tuple[str, float]]: ...
    def backfill_remaining(self) -> int: ...
    def open_gaps_detected_us(self) -> list[int]: ...  # detected_at of each open gap
    def open_gap_symbols(self) -> set[str]: ...  # the symbols with a gap open
    def captured_symbols(self) -> list[str]: ...  # the symbols captured now (SYMBOLS resolved, owned)


class Idle:
    """The live state of a process with nothing running yet."""

    def queue_depth(self) -> int:
        return 0

    def connection_ages(self) -> list[tuple[str, float]]:
        return []

    def backfill_remaining(self) -> int:
        return 0

    def open_gaps_detected_us(self) -> list[int]:
        return []

    def open_gap_symbols(self) -> set[str]:
        return set()

    def captured_symbols(self) -> list[str]:
        return []


class _LiveCollector(Collector):
    """Exports the hot-path dicts and the live gauges at scrape time (Rules 1-2)."""

    def __init__(self, owner: IngestionMetrics) -> None:
        self._m = owner

    def collect(self) -> Iterator[Metric]:
        m, live = self._m, self._m.live
        for name, doc, counts in (
            ("ingestion_events_received", "Valid events received from the exchange", m.received),
            ("ingestion_events_published", "Events acknowledged by Kafka", m.published),
            ("ingestion_events_rejected", "Frames that failed validation (dead-lettered)", m.rejected),
            ("ingestion_events_duplicate", "Events dropped as duplicates by the sequencer", m.duplicates),
        ):
            family = CounterMetricFamily(name, doc, labels=["type", "symbol"])
            for (kind, symbol), value in list(counts.items()):
                family.add_metric([kind, symbol], value)
            yield family
        depth = GaugeMetricFamily("ingestion_producer_queue_depth", "Messages in the producer queue")
        depth.add_metric([], live.queue_depth())
        yield depth
        ages = GaugeMetricFamily(
            "ingestion_connection_age_seconds", "Age of each open exchange connection", labels=["conn"]
        )
        for conn, age in live.connection_ages():
            ages.add_metric([conn], age)
        yield ages
        left = GaugeMetricFamily(
            "ingestion_backfill_remaining_ids",
            "Ids queued for backfill or not yet fetched by the running job",
        )
        left.add_metric([], live.backfill_remaining())
        yield left
        yield from _open_gaps(live.open_gaps_detected_us(), time.time())
        symbols = GaugeMetricFamily(
            "ingestion_gaps_open_symbols", "Symbols with at least one gap open (not yet resolved)"
        )
        symbols.add_metric([], len(live.open_gap_symbols()))
        yield symbols
        yield _captured(live.captured_symbols())


def _captured(symbols: list[str]) -> Metric:
    """One series per captured symbol (value 1): what SYMBOLS resolved to, listings followed."""
    family = GaugeMetricFamily(
        "ingestion_symbol_captured",
        "1 for each symbol this instance captures now (SYMBOLS resolved, its INGESTION_SHARD)",
        labels=["symbol"],
    )
    for symbol in symbols:
        family.add_metric([symbol], 1)
    return family


def _open_gaps(detected_us: list[int], now: float) -> Iterator[Metric]:
    """How many gaps are open and how long the oldest has been (0 when none)."""
    count = GaugeMetricFamily("ingestion_gaps_open", "Gaps published as open and not yet resolved")
    count.add_metric([], len(detected_us))
    yield count
    oldest = GaugeMetricFamily(
        "ingestion_gap_oldest_open_seconds",
        "Age of the oldest open gap (since its detection); 0 when none is open",
    )
    oldest.add_metric([], max(0.0, now - min(detected_us) / 1e6) if detected_us else 0.0)
    yield oldest


class IngestionMetrics:
    """Every metric ingestion exposes; components receive this object in their constructor."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received: defaultdict[EventKey, int] = defaultdict(int)
        self.published: defaultdict[EventKey, int] = defaultdict(int)
        self.rejected: defaultdict[EventKey, int] = defaultdict(int)
        self.duplicates: defaultdict[EventKey, int] = defaultdict(int)
        self.live: Live = Idle()
        self._connection_metrics(self.registry)
        self._repair_metrics(self.registry)
        self.registry.register(_LiveCollector(self))

    def read_live(self, live: Live) -> None:
        """Rule 2: the live gauges read ``live`` from now on."""
        self.live = live

    def _connection_metrics(self, r: CollectorRegistry) -> None:
        self.connects = Counter(
            "ingestion_connects", "Connection attempts by outcome", ["outcome"], registry=r
        )
        self.reconnects = Counter("ingestion_reconnects", "Connections replaced after a loss", registry=r)
        self.rollovers = Counter(
            "ingestion_rollovers", "Make-before-break connection replacements", ["reason"], registry=r
        )
        self.handoffs = Counter(
            "ingestion_handoffs", "Rollover handoffs, after an overlap or without one", ["how"], registry=r
        )
        self.jump_checks = Counter(
            "ingestion_jump_checks", "Ids checked against REST before they may move a baseline", registry=r
        )

    def _repair_metrics(self, r: CollectorRegistry) -> None:
        self.gaps_detected = Counter(
            "ingestion_gaps_detected", "Gaps detected", ["stream", "reason"], registry=r
        )
        self.gaps_resolved = Counter(
            "ingestion_gaps_resolved", "Gaps closed, by final status", ["stream", "status"], registry=r
        )
        for stream in STREAMS:  # Rule 4
            self.gaps_resolved.labels(stream, "unrepairable")
        self.backfilled = Counter(
            "ingestion_backfilled_events", "Events recovered from REST", ["type"], registry=r
        )
        self.rest_requests = Counter(
            "ingestion_rest_requests",
            "REST requests by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        self.delivery_failures = Counter(
            "ingestion_delivery_failures", "Kafka delivery failures", ["topic"], registry=r
        )
        self.replayed = Counter(
            "ingestion_replayed",
            "Messages sent again because the broker lost their topic's log (delivery Rule 5)",
            registry=r,
        )
        self.producer_dropped = Counter(
            "ingestion_producer_dropped", "Events refused by a full producer buffer", ["type"], registry=r
        )
        self.delivery_latency = Histogram(
            "ingestion_delivery_latency_seconds",
            "Receipt to Kafka acknowledgement, sampled: 1 in 16 acknowledged messages is observed",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
