"""The live status view: pure functions from two metric snapshots to the lines shown.

Rules:
  1. Nothing here does I/O; ``__main__`` fetches and reads logs, this module only computes, so
     the view is testable from canned Prometheus text and canned log lines.
  2. Times are shown as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, as everywhere else in the project.
  3. A component not ready for ``STUCK_AFTER_S`` gets a notice with the last error line of its
     log (when the log has one), so a stuck stage says why without opening the log.
"""

from __future__ import annotations

import re
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
STUCK_AFTER_S = 5.0
# A log line that reports a problem: our own format's level field, or a Python exception line.
_ERROR_LINE = re.compile(r"\b(?:ERROR|CRITICAL|WARNING)\b|^\w[\w.]*(?:Error|Exception)\b|Traceback")
Latest = tuple[str, datetime, str]  # price, trade time, type (trade or aggTrade)


def zulu(at: datetime) -> str:
    """Rule 2: a UTC time with microseconds and a ``Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def last_error_line(log_text: str, width: int = 240) -> str | None:
    """The last line of a log that reports an error or warning (cut to ``width``), if any."""
    for line in reversed(log_text.splitlines()):
        if _ERROR_LINE.search(line.strip()):
            text = line.strip()
            return text if len(text) <= width else text[: width - 3] + "..."
    return None


def stuck_notice(name: str, for_s: float, log_path: str, error: str | None) -> str:
    """Rule 3: the notice for a component not ready for ``for_s`` seconds."""
    why = f"last error in its log: {error}" if error else "its log has no error line yet"
    return f"{name} not ready for {for_s:.0f} s; {why} (log: {log_path})"


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
    latest: dict[str, Latest | None],
    notices: list[str],
    audit: list[str] | None = None,
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
        shown = "no trades yet" if value is None else f"{value[0]}  at {zulu(value[1])}  ({value[2]})"
        lines.append(f"  {symbol:<12} {shown}")
    return lines + (audit or []) + [f"! {n}" for n in notices]
