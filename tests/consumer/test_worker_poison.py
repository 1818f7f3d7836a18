"""The worker process against poison: one undecodable message on each topic, and every gap record
ingestion can write (REST unreachable included), with the real broker and the real TimescaleDB."""

from __future__ import annotations

import signal
from collections.abc import Callable

import orjson
import pytest
from confluent_kafka import Producer

from binance_pipeline.common.events import CUT_MARKER, HDR_REASON, HDR_STAGE, HDR_TOPIC, GapMessage
from binance_pipeline.testing.events import T0_US, book, gap, trade
from binance_pipeline.testing.helpers import (
    Topics,
    count,
    free_port,
    produce,
    producer,
    query,
    read_all,
    wait_for,
)
from binance_pipeline.testing.stages import WorkerProcess
from consumer.checkpoint import DEAD_LETTER_MAX_VALUE
from ingestion.frontier import FrontierEntry, first_contact
from ingestion.records import id_gap, resolve, time_gap
from ingestion.unfinished import close_at_stop, close_time_gap
from tests.ingestion.test_publisher_backfill import make_settings, run_backfill

POISON = b"not a gap record"
LONG_REASON = gap("BTCUSDT/trade/ids/1-2", "unrepairable", reason="x" * 500)
HUGE = b"\x00" * 1_000_000


def written(db_url: str, trades: int, books: int, gaps: int) -> bool:
    return [count(db_url, t) for t in ("trades", "book_ticker", "gaps")] == [trades, books, gaps]


@pytest.mark.slow
def test_one_poison_message_per_topic_is_dead_lettered_and_a_restart_goes_on(
    kafka_bootstrap: str, db_url: str, topics: Topics, start_worker: Callable[..., WorkerProcess]
) -> None:
    """Poison alone on each topic (a 500-char reason, 1 MB) is dead-lettered or left; the rest is written."""
    worker = start_worker(BATCH_MAX_SECONDS="0.2")
    worker.wait_ready()
    p = producer(kafka_bootstrap)
    for topic in (topics.trades, topics.book_ticker, topics.gaps, topics.dead_letter):
        produce(p, topic, [POISON], key=b"BTCUSDT")  # each alone in its batch: no decodable row
    produce(p, topics.gaps, [LONG_REASON])
    produce(Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 1_040_000}), topics.trades,
            [HUGE], key=b"BTCUSDT")  # whole, too big to dead-letter with the headers
    wait_for(lambda: worker.metric("worker_dead_letters_total", cause="undecodable") == 5, 30,
             f"five dead letters ({worker.log_tail()})")
    produce(p, topics.trades, [trade(i) for i in range(10)])
    produce(p, topics.book_ticker, [book(i) for i in range(5)])
    produce(p, topics.gaps, [gap("g/1", "open"), gap("g/2", "repaired")])
    wait_for(lambda: written(db_url, 10, 5, 2), 30, f"the other messages written ({worker.log_tail()})")
    assert worker.proc.poll() is None
    dead = read_all(kafka_bootstrap, topics.dead_letter, expected=6, idle_s=1.0, timeout=30)
    from_worker = [r for r in dead if r.headers.get(HDR_STAGE) == b"worker"]
    assert sorted((r.headers[HDR_TOPIC].decode(), r.value) for r in from_worker) == sorted([
        (topics.trades, POISON), (topics.book_ticker, POISON), (topics.gaps, POISON),
        (topics.gaps, orjson.dumps(LONG_REASON)), (topics.trades, HUGE[:DEAD_LETTER_MAX_VALUE])])
    assert all(r.headers[HDR_REASON] for r in from_worker)
    assert [r.value for r in dead if r not in from_worker] == [POISON]  # read by no one: never looped

    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    again = start_worker(BATCH_MAX_SECONDS="0.2")
    again.wait_ready()
    produce(p, topics.gaps, [POISON], key=b"BTCUSDT")
    produce(p, topics.trades, [trade(i) for i in range(10, 20)])
    wait_for(lambda: written(db_url, 20, 5, 2), 30, f"the restarted worker writing ({again.log_tail()})")
    wait_for(lambda: again.metric("worker_dead_letters_total", cause="undecodable") == 1, 30, "one more")
    assert again.proc.poll() is None and again.metric("worker_messages_consumed_total") == 11


def rest_unreachable_records(kafka_bootstrap: str, topics: Topics) -> None:
    """Ingestion's own backfill against a REST port nobody listens on: it publishes the gap
    opened and then unrepairable with the connection error as its reason."""
    settings = make_settings(kafka_bootstrap, topics, binance_rest_url=f"http://127.0.0.1:{free_port()}",
                             backoff_initial_s=0.01, backoff_max_s=0.02)
    opened = id_gap("BTCUSDT", "trade", 9001, 9100, "reconnect", T0_US)
    p = producer(kafka_bootstrap)
    produce(p, topics.gaps, [dict(opened)])
    run_backfill(settings, [opened])


def every_gap_record() -> list[GapMessage]:
    """A record of each kind, status and reason ingestion writes (flow, losses, frontier, unfinished)."""
    now = T0_US
    records: list[GapMessage] = [
        id_gap("ETHUSDT", "aggTrade", 1 + 10 * n, 5 + 10 * n, reason, now)
        for n, reason in enumerate(["stream", "reconnect", "rollover", "restart", "producer_overflow",
                                    "delivery_failed", "topic_missing"])
    ]  # fmt: skip
    window = time_gap("ETHUSDT", "bookTicker", now, None, "reconnect", "open", now)
    lost = time_gap("BNBUSDT", "bookTicker", now, now + 9, "producer_overflow", "unrepairable", now)
    stale = first_contact(FrontierEntry("trade", "BNBUSDT", 100, now, {}, 0), 200, now, now, 1).record
    assert stale is not None
    records += [
        window, lost, stale, resolve(records[0], "repaired", now + 1),
        resolve(records[1], "unrepairable", now + 1, 2, "REST no longer has ids " + ", ".join(
            f"{i}-{i}" for i in range(11, 400, 2))),
        resolve(time_gap("BNBUSDT", "bookTicker", now + 5, None, "rollover", "open", now), "unrepairable",
                now + 9, None, "bookTicker has no REST backfill"),
        close_time_gap(time_gap("SOLUSDT", "bookTicker", now, None, "restart", "open", now), now + 1,
                       "closed by the next instance at start"),
        *close_at_stop([time_gap("XRPUSDT", "bookTicker", now, None, "reconnect", "open", now)], now + 2),
    ]  # fmt: skip
    return records


@pytest.mark.slow
def test_every_gap_record_ingestion_writes_is_stored_rest_unreachable_included(
    kafka_bootstrap: str, db_url: str, topics: Topics, start_worker: Callable[..., WorkerProcess]
) -> None:
    """Every kind and reason of gap record ingestion writes, REST unreachable included, is stored."""
    rest_unreachable_records(kafka_bootstrap, topics)
    records = every_gap_record()
    produce(producer(kafka_bootstrap), topics.gaps, [dict(r) for r in records])
    worker = start_worker(BATCH_MAX_SECONDS="0.2")
    worker.wait_ready()
    gap_ids = {r["gap_id"] for r in records} | {"BTCUSDT/trade/ids/9001-9100"}
    wait_for(lambda: count(db_url, "gaps") == len(gap_ids), 40, f"every gap stored ({worker.log_tail()})")
    assert worker.metric("worker_dead_letters_total") == 0
    [(status, reason)] = query(db_url, "SELECT status, reason FROM gaps WHERE gap_id = %s",
                               ("BTCUSDT/trade/ids/9001-9100",))
    assert status == "unrepairable" and reason.startswith("reconnect: REST failed from id 9001: ")
    assert "ClientConnectorError" in reason and reason.endswith(CUT_MARKER) and len(reason) == 200
    stored = dict(query(db_url, "SELECT gap_id, status FROM gaps"))
    assert stored == {**{r["gap_id"]: r["status"] for r in records},  # the last record of an id wins
                      "BTCUSDT/trade/ids/9001-9100": "unrepairable"}
