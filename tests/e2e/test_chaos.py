"""Chaos against ground truth: seeded fault schedules over the whole pipeline, then the simulator's
record of what it emitted is compared with the database.

Each seed (``CHAOS_SEEDS``, default ``3``: seeds 1 to 3; ``make chaos SEEDS=20``) draws a schedule from
``tests/e2e/chaos.py`` and runs it against a pipeline of its own: the simulator, ingestion and the
worker as real processes, a private Apache Kafka and a private PostgreSQL + TimescaleDB (both may be
stopped). After the schedule the simulator stops generating, the self-audit runs with ``--repair``
for every symbol, and then:
  - every trade and aggTrade id the simulator generated is stored exactly once;
  - every bookTicker it generated is stored once, or lies inside a recorded bookTicker loss window;
  - every recorded bookTicker loss window really lacks events: a window of events known and lost
    (delivery failed, buffer full, topic missing) says how many, and at least that many generated
    in it are missing; a window of an interruption (reconnect, restart) claims no count, only
    that nothing was kept in it;
  - no stage exited except those the schedule killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from binance_pipeline.testing.brokers import PrivateKafka
from binance_pipeline.testing.databases import PrivatePostgres
from binance_pipeline.testing.helpers import ROOT, Topics, wait_for
from binance_pipeline.testing.stages import Pipeline, Proc, pipeline_env, sim_stats
from tests.e2e.chaos import Fault, schedule, seeds
from tests.e2e.test_pipeline import expected_rows

pytestmark = [pytest.mark.slow, pytest.mark.private_broker]
SYMBOLS = "BTCUSDT,ETHUSDT"
SEEDS = seeds(os.environ.get("CHAOS_SEEDS", "3"))
QUIET_S = 5.0  # no row added for this long: the stream has settled
SLACK_US = 1_500_000  # a generated bookTicker reaches ingestion within this (clock and latency)
JUNK = [b"", b"not a gap record", b"\x00\xff\xfe junk", b'{"v": 1}', b"[1, 2, 3]", b'{"v":1,"type":"trade"}']


class Chaos:
    """One seed's pipeline and the faults applied to it."""

    def __init__(self, pipe: Pipeline, broker: PrivateKafka, pg: PrivatePostgres, exchange: Any,
                 topics: Topics) -> None:
        self.pipe, self.broker, self.pg, self.exchange, self.topics = pipe, broker, pg, exchange, topics
        self.stages: dict[str, Proc] = {}
        self.killed: list[str] = []

    def start(self, stage: str) -> None:
        starter = self.pipe.start_ingestion if stage == "ingestion" else self.pipe.start_worker
        self.stages[stage] = starter()

    def check_alive(self, when: str) -> None:
        for name, proc in self.stages.items():
            code = proc.popen.poll()
            assert code is None, f"{name} exited ({code}) {when}, unasked:\n{proc.tail(60)}"

    def apply(self, fault: Fault) -> None:
        getattr(self, fault.kind)(fault.duration_s)

    def _signal_stage(self, stage: str, sig: int, down_s: float) -> None:
        proc = self.stages[stage]
        proc.popen.send_signal(sig)
        proc.popen.wait(30)
        self.killed.append(f"{stage} ({signal.Signals(sig).name}, exit {proc.popen.returncode})")
        time.sleep(down_s)
        self.start(stage)

    def ingestion_sigkill(self, down_s: float) -> None:
        self._signal_stage("ingestion", signal.SIGKILL, down_s)

    def ingestion_sigterm(self, down_s: float) -> None:
        self._signal_stage("ingestion", signal.SIGTERM, down_s)

    def worker_sigkill(self, down_s: float) -> None:
        self._signal_stage("worker", signal.SIGKILL, down_s)

    def broker_sigkill(self, down_s: float) -> None:
        self.broker.kill()
        time.sleep(down_s)
        self.broker.start()

    def broker_sigstop(self, down_s: float) -> None:
        self.broker.pause()
        try:
            time.sleep(down_s)
        finally:
            self.broker.resume()

    def broker_empty(self, _down_s: float) -> None:
        self.broker.wipe()
        self.broker.start()

    def postgres_stopped(self, down_s: float) -> None:
        self.pg.stop()
        try:
            time.sleep(down_s)
        finally:
            self.pg.start()

    def junk_on_every_topic(self, _down_s: float) -> None:
        producer = Producer({"bootstrap.servers": self.broker.bootstrap})
        names = [self.topics.trades, self.topics.book_ticker, self.topics.gaps, self.topics.dead_letter,
                 self.topics.frontier]
        for topic in names:
            for value in JUNK:
                producer.produce(topic, value, key=f"junk-{uuid.uuid4().hex[:6]}")
        assert producer.flush(30) == 0, "the junk was not all delivered"

    def rest_unreachable(self, down_s: float) -> None:
        """REST drops every connection while the feed is cut for a moment: the gap it leaves cannot
        be backfilled until REST is back (the self-audit repairs it then)."""
        self.exchange.control("rest_down", {"seconds": down_s})
        self.exchange.control("refuse", {"seconds": min(2.0, down_s / 2)})
        self.exchange.control("disconnect", {})
        time.sleep(down_s)


@pytest.mark.parametrize("seed", SEEDS)
def test_chaos_schedule_against_ground_truth(
    seed: int, sim: Callable[..., Any], topics: Topics, private_pg: PrivatePostgres, tmp_path: Path,
    figure: Callable[[str, float, str], None],
) -> None:  # fmt: skip
    """Under a seeded schedule of faults, no trade is lost or stored twice, every missing bookTicker
    is inside a recorded loss window and every such window lacks events, and no stage exits unasked."""
    faults = schedule(seed)
    print(f"\nchaos seed {seed}: " + "; ".join(map(str, faults)))
    broker = PrivateKafka()
    exchange = sim("--symbols", SYMBOLS, "--rate", "60", "--start-delay", "1")
    env = pipeline_env(broker.bootstrap, private_pg.url, topics.env(), f"chaos-{seed}-{uuid.uuid4().hex[:6]}",
                       exchange)
    pipe = Pipeline(env=env, db_url=private_pg.url, log_dir=tmp_path)
    chaos = Chaos(pipe, broker, private_pg, exchange, topics)
    try:
        chaos.start("worker")
        chaos.start("ingestion")
        wait_for(lambda: pipe.count("trades") > 200, 90, "the first rows")
        for fault in faults:
            chaos.check_alive(f"before {fault.kind}")
            time.sleep(fault.pause_s)
            chaos.apply(fault)
        time.sleep(3)
        chaos.check_alive("after the schedule")
        exchange.control("pause", {})
        _settle_and_repair(pipe, exchange)
        chaos.check_alive("after the audit")
        _compare_with_ground_truth(pipe, exchange, figure)
    except BaseException:
        print(f"chaos seed {seed} failed; faults: {faults}; killed: {chaos.killed}\n{pipe.logs()}")
        raise
    finally:
        pipe.close()
        broker.close()


def _settle_and_repair(pipe: Pipeline, exchange: Any) -> None:
    """Wait for the stream to settle (every row in, or no row added for QUIET_S: bookTickers lost
    while ingestion was down never come), then the self-audit with repair for every symbol."""
    stats = sim_stats(exchange.control_url)
    trades, books = expected_rows(stats)
    _settle(pipe, trades, books)
    for symbol in stats["symbols"]:
        done = subprocess.run(
            [sys.executable, "-m", "db.query", "audit", symbol, "--last", "30m", "--repair"],
            cwd=ROOT, env={**os.environ, **pipe.env, "AUDIT_REPAIR_WAIT_S": "90"},
            capture_output=True, text=True, timeout=240,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: pipe.count("trades") >= trades, 90, f"{trades} trade rows after the repair")
    _settle(pipe, trades, books)  # the last rows of the repair, and any duplicate, have landed


def _settle(pipe: Pipeline, trades: int, books: int, timeout: float = 90.0) -> None:
    """Every row in, or none added for QUIET_S while the worker is ready (assigned, broker and
    database answering: not in the middle of a recovery)."""
    last, still_since, deadline = (-1, -1), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = (pipe.count("trades"), pipe.count("book_ticker"))
        if now[0] >= trades and now[1] >= books:
            return
        if now != last or not _ready(pipe.env["WORKER_HEALTH_PORT"]):
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= QUIET_S:
            return  # holes are the audit's to find; the comparison after it is the verdict
        time.sleep(0.5)


def _ready(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:  # 503 (HTTPError) or no answer
        return False


def _compare_with_ground_truth(
    pipe: Pipeline, exchange: Any, figure: Callable[[str, float, str], None]
) -> None:
    stats = sim_stats(exchange.control_url)
    lost_books = 0
    for symbol, per in stats["symbols"].items():
        for kind in ("trade", "aggTrade"):
            want = list(range(per[kind]["first_id"], per[kind]["last_id"] + 1))
            assert pipe.ids(symbol, kind) == want, f"{symbol} {kind}: ids not stored exactly once"
        lost_books += _check_book_tickers(pipe, exchange, symbol)
    figure("bookTickers lost inside recorded windows", lost_books, "")


def _check_book_tickers(pipe: Pipeline, exchange: Any, symbol: str) -> int:
    truth = _book_truth(exchange, symbol)
    assert truth["complete"]
    emitted = dict(zip(truth["u"], truth["time_us"], strict=True))
    stored = pipe.query("SELECT update_id, count(*) FROM book_ticker WHERE symbol = %s GROUP BY update_id",
                        (symbol,))
    twice = [u for u, n in stored if n != 1]
    assert not twice, f"{symbol}: bookTickers stored more than once: {twice[:10]}"
    unknown = [u for u, _ in stored if u not in emitted]
    assert not unknown, f"{symbol}: stored bookTickers the simulator never generated: {unknown[:10]}"
    have = {u for u, _ in stored}
    missing = sorted(t for u, t in emitted.items() if u not in have)
    recorded = pipe.query("SELECT start_time, end_time, missing, reason FROM gaps "
                          "WHERE symbol = %s AND stream = 'bookTicker'", (symbol,))
    now = time.time_ns() // 1000
    windows = [(_us(a) - SLACK_US, (_us(b) if b else now) + SLACK_US, n, why) for a, b, n, why in recorded]
    outside = [t for t in missing if not any(a <= t <= b for a, b, _, _ in windows)]
    assert not outside, (f"{symbol}: {len(outside)} bookTicker(s) missing outside every recorded window, "
                         f"first at {_iso(outside[0])}; windows: {recorded}")
    for a, b, claimed, why in windows:  # a loss window says how many events it lost: they must be missing
        if claimed is not None:
            really = sum(1 for t in missing if a <= t <= b)
            assert really >= claimed, f"{symbol}: window {why!r} claims {claimed} lost, {really} missing"
    return len(missing)


def _book_truth(exchange: Any, symbol: str) -> dict[str, Any]:
    url = f"{exchange.control_url}/book_tickers?symbol={symbol}"
    with urllib.request.urlopen(url, timeout=30) as answer:
        return dict(orjson.loads(answer.read()))


def _us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // _ONE_US


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat()


_ONE_US = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
