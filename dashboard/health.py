"""Pipeline health for the dashboard: the stages' own /readyz and /metrics, read over HTTP.

Owns the scrape (``scrape``, the only I/O here) and the arithmetic from two scrapes to the
figures shown (``summarize``, pure). The metric names and the rate arithmetic are the status
view's (binance_launcher.status), so the terminal and the page never disagree.

Rule: a stage that does not answer is reported "not answering", never raised.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from binance_launcher.status import (
    CONSUMER_LAG,
    EVENTS_IN,
    ROWS_WRITTEN,
    Samples,
    Snapshot,
    parse,
    rate,
    total,
)
from binance_pipeline.common.settings import DashboardSettings

DEAD_LETTERS = "worker_dead_letters_total"
INGESTION_DEAD_LETTERS = "ingestion_events_rejected_total"


@dataclass(frozen=True)
class Stage:
    name: str  # "ingestion" | "worker"
    url: str


@dataclass(frozen=True)
class StageState:
    name: str
    url: str
    readiness: str  # "ready" | "not ready: ..." | "not answering"


@dataclass(frozen=True)
class Health:
    stages: list[StageState]
    events_in_per_s: float
    rows_written_per_s: float
    consumer_lag: float
    dead_letters: float
    rejected_events: float


def stages(settings: DashboardSettings) -> list[Stage]:
    """The stages whose health endpoints the dashboard reads, from the settings."""
    return [
        Stage("ingestion", f"http://{settings.ingestion_health_host}:{settings.ingestion_health_port}"),
        Stage("worker", f"http://{settings.worker_health_host}:{settings.worker_health_port}"),
    ]


def _get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - configured stage URL
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


def _readiness(status: int, body: str) -> str:
    if status == 200:
        return "ready"
    if status == 0:
        return "not answering"
    try:
        reasons = "; ".join(json.loads(body).get("reasons", []))
    except (ValueError, AttributeError):
        reasons = body[:80]
    return f"not ready: {reasons}"


def scrape(targets: list[Stage], now: float, timeout: float = 1.0) -> tuple[Snapshot, list[StageState]]:
    """One reading of every stage: its metrics (into a Snapshot) and its readiness."""
    snap, states = Snapshot(now), []
    for stage in targets:
        status, body = _get(f"{stage.url}/metrics", timeout)
        if status == 200:
            setattr(snap, stage.name, parse(body))
        states.append(StageState(stage.name, stage.url, _readiness(*_get(f"{stage.url}/readyz", timeout))))
    return snap, states


def _lag(samples: Samples) -> float:
    return sum(max(0.0, v) for _, v in samples.get(CONSUMER_LAG, []))


def summarize(prev: Snapshot | None, cur: Snapshot, states: list[StageState]) -> Health:
    """The figures of the health panel from the previous and the current scrape (pure)."""
    return Health(
        stages=states,
        events_in_per_s=rate(prev, cur, "ingestion", EVENTS_IN),
        rows_written_per_s=rate(prev, cur, "worker", ROWS_WRITTEN),
        consumer_lag=_lag(cur.worker),
        dead_letters=total(cur.worker, DEAD_LETTERS),
        rejected_events=total(cur.ingestion, INGESTION_DEAD_LETTERS),
    )
