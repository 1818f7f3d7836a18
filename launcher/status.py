"""The live status view: pure functions from two metric snapshots to the lines shown.

Rule: nothing here does I/O; ``scrape`` in __main__ fetches, this module only computes, so the
view is testable from canned Prometheus text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, list[tuple[dict[str, str], float]]]

# The metric names the view reads (exported by ingestion/metrics.py and consumer/metrics.py).
EVENTS_IN = "ingestion_events_received_total"
EVENTS_REJECTED = "ingestion_events_rejected_total"
GAPS_DETECTED = "ingestion_gaps_detected_total"
GAPS_RESOLVED = "ingestion_gaps_resolved_total"  # label status: repaired | unrepairable
ROWS_WRITTEN = "worker_rows_written_total"
ROWS_DUPLICATE = "worker_rows_duplicate_total"
CONSUMER_LAG = "worker_consumer_lag"


def parse(text: str) -> Samples:
    """Prometheus text -> {sample name: [(labels, value), ...]}."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


def total(samples: Samples, name: str, **match: str) -> float:
    """Sum of a metric's samples whose labels include ``match``."""
    return sum(
        value for labels, value in samples.get(name, [])
        if all(labels.get(k) == v for k, v in match.items())
    )


@dataclass
class Snapshot:
    at: float  # monotonic seconds
    ingestion: Samples = field(default_factory=dict)
    worker: Samples = field(default_factory=dict)


def rate(prev: Snapshot | None, cur: Snapshot, side: str, name: str) -> float:
    if prev is None or cur.at <= prev.at:
        return 0.0
    now, before = total(getattr(cur, side), name), total(getattr(prev, side), name)
    return max(0.0, now - before) / (cur.at - prev.at)


@dataclass
class ComponentState:
    name: str
    state: str  # "starting" | "ready" | "not ready: <reason>" | "running"


def render(
    title: str,
    prev: Snapshot | None,
    cur: Snapshot,
    components: list[ComponentState],
    latest: dict[str, tuple[str, datetime] | None],
    notices: list[str],
) -> list[str]:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    ing, wrk = cur.ingestion, cur.worker
    lag = sum(v for _, v in wrk.get(CONSUMER_LAG, []))
    lines = [
        f"binance-pipeline · {title} · {now}   (Ctrl-C stops everything)",
        "components: " + "   ".join(f"{c.name}: {c.state}" for c in components),
        f"in:   {rate(prev, cur, 'ingestion', EVENTS_IN):10,.0f} events/s   "
        f"total {total(ing, EVENTS_IN):,.0f}, rejected {total(ing, EVENTS_REJECTED):,.0f}",
        f"out:  {rate(prev, cur, 'worker', ROWS_WRITTEN):10,.0f} rows/s     "
        f"total {total(wrk, ROWS_WRITTEN):,.0f}, duplicates skipped {total(wrk, ROWS_DUPLICATE):,.0f}, "
        f"consumer lag {lag:,.0f}",
        f"gaps: detected {total(ing, GAPS_DETECTED):,.0f}, "
        f"repaired {total(ing, GAPS_RESOLVED, status='repaired'):,.0f}, "
        f"unrepairable {total(ing, GAPS_RESOLVED, status='unrepairable'):,.0f}",
        "latest trade in the database:",
    ]
    for symbol, value in latest.items():
        shown = "no trades yet" if value is None else f"{value[0]}  at {value[1].isoformat()}"
        lines.append(f"  {symbol:<12} {shown}")
    return lines + [f"! {n}" for n in notices]
