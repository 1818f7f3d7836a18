"""The buffer survives its broker: a crashed single node, and a killed leader in a 3-node cluster.

Both run the whole pipeline (simulator -> ingestion -> Apache Kafka -> worker -> TimescaleDB) on a
private cluster of the test's own, and compare the database with the simulator's ground truth.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from binance_pipeline.testing.brokers import PrivateKafka
from binance_pipeline.testing.helpers import ROOT, read_all, wait_for
from binance_pipeline.testing.stages import Pipeline, sim_stats
from tests.e2e.test_pipeline import assert_unbroken, expected_rows, wait_complete

SYMBOLS = "BTCUSDT,ETHUSDT,BNBUSDT"
pytestmark = pytest.mark.slow


@pytest.fixture
def private_cluster() -> Iterator[Callable[[int], PrivateKafka]]:
    made: list[PrivateKafka] = []

    def make(nodes: int) -> PrivateKafka:
        made.append(PrivateKafka(nodes))
        return made[-1]

    yield make
    for broker in made:
        broker.close()


def _on_broker(pipe: Pipeline, broker: PrivateKafka) -> Pipeline:
    pipe.env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
    return pipe


def _assert_everything_once(pipe: Pipeline, exchange: Any) -> dict[str, Any]:
    stats = wait_complete(pipe, exchange, timeout=240)
    assert_unbroken(pipe, stats)
    trades, books = expected_rows(stats)
    wait_for(lambda: pipe.count("book_ticker") >= books, 120, f"{books} book_ticker rows")
    assert (pipe.count("trades"), pipe.count("book_ticker")) == (trades, books)
    return stats


def test_single_broker_killed_and_restarted_loses_nothing_acknowledged(
    private_cluster: Callable[[int], PrivateKafka], sim: Callable[..., Any], pipeline: Any
) -> None:
    """SIGKILL of the only broker under load: after its restart the database holds every event once."""
    broker = private_cluster(1)
    exchange = sim("--symbols", SYMBOLS, "--rate", "300", "--max-trades", "2500", "--start-delay", "1")
    pipe = _on_broker(pipeline(exchange), broker)
    worker, ingestion = pipe.start_worker(), pipe.start_ingestion()
    wait_for(lambda: pipe.count("trades") > 1000, 90, "the first rows")
    broker.kill()
    time.sleep(4)
    broker.start()
    _assert_everything_once(pipe, exchange)
    # What Kafka never acknowledged was retried by the idempotent producer or recorded and repaired.
    statuses = pipe.query("SELECT DISTINCT status FROM gaps WHERE kind = 'ids'")
    assert set(statuses) <= {("repaired",)}, statuses
    assert worker.popen.poll() is None and ingestion.popen.poll() is None


def _leader_of(bootstrap: str, topic: str, partition: int) -> int:
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return int(meta.topics[topic].partitions[partition].leader)


def test_leader_killed_in_three_node_cluster_loses_and_duplicates_nothing(
    private_cluster: Callable[[int], PrivateKafka], sim: Callable[..., Any], pipeline: Any
) -> None:
    """RF 3, min.insync 2: SIGKILL of the trades leader at 1,200 events/s; every event lands once."""
    broker = private_cluster(3)
    exchange = sim("--symbols", SYMBOLS, "--rate", "400", "--max-trades", "3000", "--start-delay", "1")
    pipe = _on_broker(pipeline(exchange), broker)
    worker, ingestion = pipe.start_worker(), pipe.start_ingestion()
    wait_for(lambda: pipe.count("trades") > 1500, 90, "the first rows")
    topic = pipe.env["TOPIC_TRADES"]
    meta = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(topic, timeout=10)
    part = meta.topics[topic].partitions[0]
    assert len(part.replicas) == 3, "the project's topics are replicated 3 times on a 3-node cluster"
    leader = int(part.leader)
    broker.kill(leader)
    survivors = ",".join(f"127.0.0.1:{n.port}" for n in broker.cluster.nodes if n.node_id != leader)
    wait_for(lambda: _leader_of(survivors, topic, 0) not in (leader, -1), 60, "a new leader")
    _assert_everything_once(pipe, exchange)
    assert worker.popen.poll() is None and ingestion.popen.poll() is None, "a stage needed a restart"


def _audit_repair(pipe: Pipeline, symbol: str) -> subprocess.CompletedProcess[str]:
    """The self-audit of the last quarter hour, repairing what it finds (db.query audit --repair)."""
    return subprocess.run(
        [sys.executable, "-m", "db.query", "audit", symbol, "--last", "15m", "--repair"],
        cwd=ROOT, env={**os.environ, **pipe.env, "AUDIT_REPAIR_WAIT_S": "90"},
        capture_output=True, text=True, timeout=180,
    )


def test_broker_replaced_by_an_empty_one_under_load_loses_nothing(
    private_cluster: Callable[[int], PrivateKafka], sim: Callable[..., Any], pipeline: Any,
    figure: Callable[[str, float, str], None],
) -> None:  # fmt: skip
    """The broker is stopped and an empty one started on its address under load. Neither stage is
    restarted: ingestion recreates the topics and sends its replay window again, the worker takes a
    new consumer for the new logs; after the self-audit (with repair) the database holds every
    trade, aggTrade and bookTicker the simulator emitted, each once; no bookTicker loss is recorded
    (none happened), and the bad frames sent while the topics were missing are dead-lettered once."""
    broker = private_cluster(1)
    exchange = sim("--symbols", SYMBOLS, "--rate", "300", "--max-trades", "2500", "--start-delay", "1")
    pipe = _on_broker(pipeline(exchange), broker)
    worker, ingestion = pipe.start_worker(), pipe.start_ingestion()
    wait_for(lambda: pipe.count("trades") > 1000, 90, "the first rows")
    gone = time.monotonic()
    broker.wipe()  # stopped and its data deleted: the next start is an empty broker, same address
    broker.start()
    figure("broker away (stop, wipe, start of an empty one)", time.monotonic() - gone, "s")
    sent = exchange.control("malformed", {"kind": "invalid_json", "count": 3})  # while topics are missing
    bad = 3 * sent["connections"]  # each connection gets the 3 frames
    wait_for(lambda: sim_stats(exchange.control_url)["done"], 240, "the simulator to finish")
    stats = sim_stats(exchange.control_url)
    trades, books = expected_rows(stats)
    wait_for(lambda: pipe.count("book_ticker") >= books and pipe.count("trades") >= trades - 50, 120,
             "the stream to settle")
    for symbol in stats["symbols"]:
        done = _audit_repair(pipe, symbol)
        assert done.returncode == 0, done.stdout + done.stderr + pipe.logs()
    wait_complete(pipe, exchange, timeout=120)
    assert_unbroken(pipe, stats)
    assert (pipe.count("trades"), pipe.count("book_ticker")) == (trades, books)
    assert worker.popen.poll() is None and ingestion.popen.poll() is None, "a stage needed a restart"
    invented = pipe.query("SELECT symbol, start_time, end_time, missing, reason FROM gaps "
                          "WHERE stream = 'bookTicker'")
    assert invented == [], "a bookTicker loss was recorded, yet every bookTicker is stored"
    dead = read_all(broker.bootstrap, [pipe.env["TOPIC_DEAD_LETTER"]], expected=bad)
    assert len(dead) == bad, f"{len(dead)} dead letters for {bad} bad frames"
    replayed = re.findall(r"sending the last \d+ s again: (\d+) message", ingestion.log.read_text())
    assert replayed and sum(map(int, replayed)) > 0, "ingestion sent nothing again"
    assert "replacing the consumer" in worker.log.read_text()
    figure("messages ingestion sent again from its replay window", sum(map(int, replayed)), "")
    repaired = pipe.query("SELECT count(*) FROM gaps WHERE reason = 'audit'")[0][0]
    figure("holes the self-audit had to repair", repaired, "")
