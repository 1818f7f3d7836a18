"""The worker's Prometheus metrics, in its own CollectorRegistry (served by binance_pipeline.common.health).

Rules:
  1. Recording never touches the network or the database; the health server only reads.
  2. Per-row figures are recorded per batch in bulk (``BulkHistogram.observe_many``), so the
     hot path stays cheap at 100k rows/s.
  3. Consumer lag is the partition's high-water mark (as last fetched from the broker) minus
     the consumer's position. Lag is for dashboards only; nothing in the worker depends on it.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000)


class BulkHistogram(Collector):
    """A histogram fed a whole list of values at a time (sorted once, bucketed by bisection)."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self._name, self._doc = name, documentation
        self._bounds = list(buckets)
        self._counts = [0] * len(self._bounds)  # cumulative per bound
        self._total, self._sum = 0, 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: Iterable[float]) -> None:
        ordered = sorted(values)
        if not ordered:
            return
        with self._lock:
            for i, bound in enumerate(self._bounds):
                self._counts[i] += bisect.bisect_right(ordered, bound)
            self._total += len(ordered)
            self._sum += sum(ordered)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            buckets = [(str(b), c) for b, c in zip(self._bounds, self._counts, strict=True)]
            buckets.append(("+Inf", self._total))
            total_sum = self._sum
        yield HistogramMetricFamily(self._name, self._doc, buckets=buckets, sum_value=total_sum)


class WorkerMetrics:
    """Every metric of ``consumer.worker``; names start with ``worker_``."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.consumed = Counter("worker_messages_consumed", "Kafka messages received", registry=r)
        self.rows_written = Counter(
            "worker_rows_written", "Rows inserted into the database", ["table"], registry=r)
        self.rows_duplicate = Counter(
            "worker_rows_duplicate", "Rows skipped: their unique key was already stored", ["table"],
            registry=r)
        self.dead_letters = Counter(
            "worker_dead_letters", "Messages sent to the dead-letter topic", ["cause"], registry=r)
        self.db_retries = Counter("worker_db_retries", "Database attempts that failed transiently",
                                  registry=r)
        self.partition_resets = Counter(
            "worker_partition_resets", "Partitions whose offsets went back (their log was recreated)",
            registry=r)
        self.consumer_renewals = Counter(
            "worker_consumer_renewals", "Times the worker replaced its consumer for a topic's new log "
            "(loop Rule 8)", registry=r)
        self.topics_recreated = Counter(
            "worker_topics_recreated", "Times the worker created topics the broker had lost", registry=r)
        self.commit_failures = Counter("worker_commit_failures", "Offset commits the broker refused",
                                       registry=r)
        self.flush_rows = Histogram("worker_flush_rows", "Rows per flushed batch", ["table"],
                                    buckets=SIZE_BUCKETS, registry=r)
        self.flush_seconds = Histogram("worker_flush_seconds", "Duration of a batch's write transaction",
                                       ["table"], buckets=LATENCY_BUCKETS, registry=r)
        self.lag = Gauge("worker_consumer_lag", "High-water mark minus position",
                         ["topic", "partition"], registry=r)
        self.buffered = Gauge("worker_buffered_messages", "Messages buffered, not yet committed",
                              registry=r)
        self.paused = Gauge("worker_consumption_paused", "1 while consumption is paused", registry=r)
        self.assigned = Gauge("worker_assigned_partitions", "Partitions assigned to this worker",
                              registry=r)
        self.receipt_to_commit = BulkHistogram(
            "worker_receipt_to_commit_seconds",
            "Per row: offset-commit time minus the event's received_at", LATENCY_BUCKETS)
        r.register(self.receipt_to_commit)

    def committed(self, received_us: list[int], now_us: int) -> None:
        """Record the receipt-to-commit latency of every row of a committed batch."""
        self.receipt_to_commit.observe_many((now_us - us) / 1e6 for us in received_us)

    def set_lag(self, topic: str, partition: int, high: int, position: int) -> None:
        self.lag.labels(topic, str(partition)).set(high - position)

    def forget_partition(self, topic: str, partition: int) -> None:
        try:
            self.lag.remove(topic, str(partition))
        except KeyError:
            pass
