"""Readiness tells the truth about the broker: a paused broker turns both stages unready, naming it.

The whole pipeline (simulator -> ingestion -> Apache Kafka -> worker -> TimescaleDB) runs on a private
broker of the test's own, which is SIGSTOPped for 30 s under a live stream, then SIGCONTinued.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from binance_pipeline.testing.brokers import PrivateKafka
from binance_pipeline.testing.helpers import wait_for
from binance_pipeline.testing.stages import Pipeline

SYMBOLS = "BTCUSDT,ETHUSDT"
PAUSE_S = 30.0
UNREADY_WITHIN_S = 10.0
pytestmark = pytest.mark.slow


@pytest.fixture
def broker() -> Iterator[PrivateKafka]:
    made = PrivateKafka(1)
    yield made
    made.resume()  # never leave a stopped JVM behind, whatever failed
    made.close()


def readyz(port: str) -> tuple[int, list[str]]:
    """(status, reasons) of a stage's /readyz; (0, []) when it does not answer within 2 s."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status, []
    except urllib.error.HTTPError as e:
        return e.code, list(json.loads(e.read() or b"{}").get("reasons", []))
    except OSError:
        return 0, []


@dataclass
class Watch:
    """What one stage's /readyz said during the pause, timed from the SIGSTOP."""

    port: str
    broker: str  # its address, which a reason must name
    unready_at: float | None = None
    named_at: float | None = None  # the first 503 whose reasons name the broker
    reasons: list[str] = field(default_factory=list)  # at the first 503
    seen: set[str] = field(default_factory=set)  # every reason given during the pause
    statuses: set[int] = field(default_factory=set)

    def look(self, since: float) -> None:
        status, reasons = readyz(self.port)
        self.statuses.add(status)
        self.seen.update(reasons)
        if status == 503 and self.unready_at is None:
            self.unready_at, self.reasons = time.monotonic() - since, reasons
        if status == 503 and self.named_at is None and any(self.broker in r for r in reasons):
            self.named_at = time.monotonic() - since


def _watch_pause(broker: PrivateKafka, stages: dict[str, Watch]) -> None:
    paused = time.monotonic()
    broker.pause()
    try:
        while time.monotonic() - paused < PAUSE_S:
            for watch in stages.values():
                watch.look(paused)
            time.sleep(0.25)
    finally:
        broker.resume()


def test_broker_paused_turns_both_stages_unready_naming_it_then_ready_again(
    broker: PrivateKafka, sim: Callable[..., Any], pipeline: Callable[[Any], Pipeline],
    figure: Callable[[str, float, str], None],
) -> None:  # fmt: skip
    """Broker SIGSTOPped 30 s under a live stream: each stage's /readyz is 503 within 10 s with a
    reason naming the broker's address, stays answering (no stalled loop), and is 200 again after
    SIGCONT."""
    exchange = sim("--symbols", SYMBOLS, "--rate", "100", "--start-delay", "1")
    pipe = pipeline(exchange)
    pipe.env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
    pipe.start_worker()
    pipe.start_ingestion()
    stages = {"worker": Watch(pipe.env["WORKER_HEALTH_PORT"], broker.bootstrap),
              "ingestion": Watch(pipe.env["INGESTION_HEALTH_PORT"], broker.bootstrap)}
    for name, watch in stages.items():
        wait_for(lambda w=watch: readyz(w.port)[0] == 200, 90, f"{name} ready\n{pipe.logs()}")
    wait_for(lambda: pipe.count("trades") > 100, 60, "the first rows")
    _watch_pause(broker, stages)
    resumed = time.monotonic()
    for name, watch in stages.items():
        wait_for(lambda w=watch: readyz(w.port)[0] == 200, 60, f"{name} ready again\n{pipe.logs()}")
        figure(f"{name}: /readyz 503 after the SIGSTOP", watch.unready_at or -1, "s")
        figure(f"{name}: /readyz 503 naming the broker after the SIGSTOP", watch.named_at or -1, "s")
        figure(f"{name}: /readyz 200 again after the SIGCONT", time.monotonic() - resumed, "s")
    for name, watch in stages.items():
        # 503 naming the broker within the limit (a partition lost with the session may come first)
        named = watch.named_at
        assert named is not None and named <= UNREADY_WITHIN_S, (name, watch, pipe.logs())
        assert 0 not in watch.statuses, f"{name}'s health server stopped answering"
    assert not any("stalled" in r for r in stages["worker"].seen), stages["worker"].seen
    count = pipe.count("trades")
    wait_for(lambda: pipe.count("trades") > count, 60, "rows written again after the pause")
