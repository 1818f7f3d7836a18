"""The live status view: pure functions from two metric snapshots to the lines shown.

Rules:
  1. Nothing here does I/O; ``__main__`` fetches and reads logs, this module only computes, so
     the view is testable from canned Prometheus text and canned log lines.
  2. Times are shown as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, as everywhere else in the project.
  3. A component not ready for ``STUCK_AFTER_S`` gets a notice with the last error line of its
     log (when the log has one), so a stuck stage says why without opening the log.
  4. With SYMBOLS patterns, the view follows what ingestion captures (``ingestion_symbol_captured``,
     refreshed with listings): how many symbols, how many have a gap open, the symbols listed and
     delisted since the launcher first saw the list, the BUSIEST_N busiest by events/s over the
     rate window (with their latest trade) and a total line. With exact SYMBOLS the view lists
     every symbol, as before.
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
CAPTURED = "ingestion_symbol_captured"
GAPS_OPEN_SYMBOLS = "ingestion_gaps_open_symbols"
BUSIEST_N = 10
CHANGES_SHOWN = 5
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


def captured(samples: Samples) -> list[str]:
    """Rule 4: the symbols ingestion captures now, sorted (empty until it answers)."""
    return sorted({labels["symbol"] for labels, value in samples.get(CAPTURED, []) if value > 0})


def symbol_rates(prev: Snapshot | None, cur: Snapshot) -> dict[str, float]:
    """Events/s received per symbol (all stream types) between two snapshots."""
    if prev is None or cur.at <= prev.at:
        return {}
    def by_symbol(samples: Samples) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, value in samples.get(EVENTS_IN, []):
            out[labels.get("symbol", "")] = out.get(labels.get("symbol", ""), 0.0) + value
        return out
    now, before = by_symbol(cur.ingestion), by_symbol(prev.ingestion)
    return {s: max(0.0, v - before.get(s, 0.0)) / (cur.at - prev.at) for s, v in now.items()}


def busiest(rates: dict[str, float], symbols: list[str], n: int = BUSIEST_N) -> list[tuple[str, float]]:
    """The ``n`` captured symbols with the highest rate (ties by name), with their rate."""
    ranked = sorted(((s, rates.get(s, 0.0)) for s in symbols), key=lambda p: (-p[1], p[0]))
    return ranked[:n]


@dataclass
class Listings:
    """Rule 4: the captured list as first seen, to show what was listed or delisted since."""

    first: frozenset[str] | None = None

    def since_start(self, symbols: list[str]) -> tuple[list[str], list[str]]:
        """(listed, delisted) since the first non-empty list seen."""
        if self.first is None:
            if symbols:
                self.first = frozenset(symbols)
            return [], []
        now = set(symbols)
        return sorted(now - self.first), sorted(self.first - now)


def _names(names: list[str]) -> str:
    shown = ",".join(names[:CHANGES_SHOWN])
    return shown + (f",... ({len(names)})" if len(names) > CHANGES_SHOWN else "")


def market_lines(
    entries: tuple[str, ...], symbols: list[str], open_gap_symbols: float,
    changes: tuple[list[str], list[str]], top: list[tuple[str, float]], total_rate: float,
    latest: dict[str, Latest | None],
) -> list[str]:
    """Rule 4: the symbols section of the view when SYMBOLS holds patterns."""
    head = f"symbols: {len(symbols):,} captured (SYMBOLS {','.join(entries)}), " \
           f"{open_gap_symbols:,.0f} with open gaps"
    listed, delisted = changes
    moves = [f"{sign}{len(names)} {_names(names)}"
             for sign, names in (("+", listed), ("-", delisted)) if names]
    if moves:
        head += "; since start: " + ", ".join(moves)
    if not symbols:
        return [head, "  (waiting for ingestion to resolve SYMBOLS against exchangeInfo)"]
    lines = [head, f"busiest {len(top)} of {len(symbols):,} by events/s, "
                   "with the latest trade in the database:"]
    for symbol, per_s in top:
        value = latest.get(symbol)
        shown = "no trades yet" if value is None else f"{value[0]}  at {zulu(value[1])}  ({value[2]})"
        lines.append(f"  {symbol:<12} {per_s:8,.1f}/s  {shown}")
    lines.append(f"  {'total':<12} {total_rate:8,.1f}/s  over {len(symbols):,} symbols")
    return lines


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
    symbols: list[str] | None = None,
) -> list[str]:
    """The view; ``symbols`` (market_lines, Rule 4) replaces the per-symbol latest trades."""
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
    ]
    if symbols is not None:
        return lines + symbols + (audit or []) + [f"! {n}" for n in notices]
    lines.append("latest trade in the database:")
    for symbol, value in latest.items():
        shown = "no trades yet" if value is None else f"{value[0]}  at {zulu(value[1])}  ({value[2]})"
        lines.append(f"  {symbol:<12} {shown}")
    return lines + (audit or []) + [f"! {n}" for n in notices]
