"""Benchmark: where ingestion's per-event microseconds go, step by step, in one process.

Run: ``python -m bench.bench_frame [--frames N] [--rounds R]``. Uses the local broker
(KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:19092) for the produce steps, with topics of its own,
deleted at the end.

The frames are combined-stream frames of one symbol's trade, aggTrade and bookTicker in turn, with
ids in order (the common case). Each step runs over the same frames; each figure is the main
thread's CPU time per frame (``time.thread_time``), the least of R rounds, so a busy machine
inflates it less. The websockets receive, which ingestion and the bare baseline share, is not
here (``bench.bench_ingestion`` measures both whole).

Steps, each including the ones above it:
  1. bare: ``orjson.loads`` + ``orjson.dumps`` of the payload + produce (+ poll every 256 frames),
     the bare baseline's work (``bench.bare_ingest``);
  2. parse: ``parse._loads``, JSON and the duplicate-key test (parse Rule 6);
  3. decode: ``parse.decode``, envelope, validation (fastpath) and the stream's checks;
  4. flow: ``Flow.receive`` + ``take_actions``, the link's checks, sequencing, pace, the action;
  5. ingestion: ``Effects.on_frame``, the flow's actions carried out by the publisher (encode,
     produce, the replay window) and the producer served every 256 frames (its acknowledgement
     callbacks run there).
Writes bench/results/frame.json.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Producer

from bench.common import delete_topics, write_result
from binance_pipeline.common.settings import Settings
from ingestion.backfill import Backfiller
from ingestion.connection import Connection
from ingestion.effects import Effects
from ingestion.flow import Flow, Tallies
from ingestion.metrics import IngestionMetrics
from ingestion.parse import _loads, decode
from ingestion.producer_slot import producer_config
from ingestion.publisher import Publisher

SYMBOL = "BTCUSDT"
STREAMS = [f"{SYMBOL.lower()}@{kind}" for kind in ("trade", "aggTrade", "bookTicker")]
SERVE_EVERY = 256


def frames(n: int, start: int, now_us: int) -> list[bytes]:
    """``n`` frames, ids from ``start`` on (trade t, aggTrade a, bookTicker u each in order)."""
    out = []
    for i in range(n):
        k, j = i % 3, start + i // 3
        if k == 0:
            data: dict[str, Any] = {"e": "trade", "E": now_us, "s": SYMBOL, "t": j, "p": "64012.34000000",
                                    "q": "0.00123000", "T": now_us, "m": True, "M": True}  # fmt: skip
        elif k == 1:
            data = {"e": "aggTrade", "E": now_us, "s": SYMBOL, "a": j, "p": "64012.34000000",
                    "q": "0.00123000", "f": j, "l": j, "T": now_us, "m": False, "M": True}  # fmt: skip
        else:
            data = {"u": j, "s": SYMBOL, "b": "64012.33000000", "B": "1.23000000", "a": "64012.34000000",
                    "A": "0.50000000"}  # fmt: skip
        out.append(orjson.dumps({"stream": STREAMS[k], "data": data}))
    return out


class _Conn(Connection):
    """A connection the flow can attach, never opened (the frames come from the list)."""

    def __init__(self) -> None:
        super().__init__(0, "ws://127.0.0.1:1", STREAMS, lambda *_: None, 65_536)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    tag = uuid.uuid4().hex[:8]
    names = {k: f"bench-frame-{k}-{tag}" for k in ("trades", "book", "gaps", "dead", "frontier")}
    settings = Settings(
        kafka_bootstrap_servers=bootstrap, topic_trades=names["trades"], topic_book_ticker=names["book"],
        topic_gaps=names["gaps"], topic_dead_letter=names["dead"], topic_frontier=names["frontier"],
    )  # fmt: skip
    metrics = IngestionMetrics()
    publisher = Publisher(settings, metrics)
    publisher.ensure_topics(30)
    publisher.start()
    effects = Effects(settings, metrics, publisher, Backfiller(settings, metrics))
    conn = _Conn()
    effects.attach(conn)
    bare = Producer(producer_config(settings))
    n, now_us = args.frames - args.frames % 3, time.time_ns() // 1000
    try:
        seed(effects.flow, 0)
        best = measure(args.rounds, n, now_us, Steps(effects, conn, bare, names))
        effects.flush(60)
        bare.flush(60)
    finally:
        delete_topics(bootstrap, list(names.values()))
    us = {step: seconds / n * 1e6 for step, seconds in best.items()}
    load = os.getloadavg()[0]
    print(f"per frame, main thread CPU, least of {args.rounds} rounds of {n:,} frames (load {load:.2f}):")
    previous = 0.0
    for step, value in us.items():
        extra = "" if step == "bare" else f"  (+{value - previous:5.2f} over the step above)"
        print(f"  {step:10s} {value:6.2f} us{extra}")
        previous = value if step != "bare" else 0.0
    ratio = us["ingestion"] / us["bare"]
    print(f"ingestion / bare, receive aside: {ratio:.2f}")
    figures = {f"{step}_us": round(value, 2) for step, value in us.items()} | {"ratio": round(ratio, 2)}
    write_result("frame.json", {"name": "frame", "figures": figures, "goal": "", "met": None})
    return 0


def seed(flow: Flow, last: int) -> None:
    """Trade and aggTrade ids go on from ``last`` (a resumed frontier): the first needs no REST check."""
    flow.seed(("trade", SYMBOL), last)
    flow.seed(("aggTrade", SYMBOL), last)


class Steps:
    """The five steps over one batch of frames (the module's docstring)."""

    def __init__(self, effects: Effects, conn: Connection, bare: Producer, names: dict[str, str]) -> None:
        self.effects, self.conn, self.bare, self.names = effects, conn, bare, names
        self.acked = 0

    def _done(self, err: object, _msg: object) -> None:
        if err is None:
            self.acked += 1

    def bare_step(self, batch: list[bytes], _now: int) -> None:
        produce, poll = self.bare.produce, self.bare.poll
        book, trades = self.names["book"], self.names["trades"]
        for i, raw in enumerate(batch):
            data = orjson.loads(raw)["data"]
            produce(book if "u" in data else trades, orjson.dumps(data), data["s"], on_delivery=self._done)
            if not i % SERVE_EVERY:
                poll(0)

    def parse_step(self, batch: list[bytes], _now: int) -> None:
        for raw in batch:
            _loads(raw)

    def decode_step(self, batch: list[bytes], now: int) -> None:
        for raw in batch:
            decode(raw, now)

    def flow_step(self, batch: list[bytes], now: int) -> None:
        flow = Flow(Tallies(defaultdict(int), defaultdict(int)), 10**12)  # fresh, seeded where batch starts
        flow.attach(self.conn.id, STREAMS)
        seed(flow, orjson.loads(batch[0])["data"]["t"] - 1)
        receive, take, conn_id = flow.receive, flow.take_actions, self.conn.id
        for raw in batch:
            receive(conn_id, raw, now)
            take()

    def ingestion_step(self, batch: list[bytes], now: int) -> None:
        on_frame, serve, conn = self.effects.on_frame, self.effects.serve, self.conn
        for i, raw in enumerate(batch):
            on_frame(raw, now, False, conn)
            if not i % SERVE_EVERY:
                serve()


def measure(rounds: int, n: int, now_us: int, steps: Steps) -> dict[str, float]:
    """The least main-thread CPU seconds of each step over ``rounds`` rounds of ``n`` fresh frames."""
    best: dict[str, float] = {}
    order: dict[str, Callable[[list[bytes], int], None]] = {
        "bare": steps.bare_step, "parse": steps.parse_step, "decode": steps.decode_step,
        "flow": steps.flow_step, "ingestion": steps.ingestion_step,
    }  # fmt: skip
    for r in range(rounds):
        batch = frames(n, 1 + r * n // 3, now_us)  # ids go on from the last round's: all in order
        for step, run in order.items():
            gc.collect()
            start = time.thread_time()
            run(batch, now_us)
            best[step] = min(best.get(step, float("inf")), time.thread_time() - start)
        steps.bare.flush(60)
        steps.effects.flush(60)
    return best


if __name__ == "__main__":
    sys.exit(main())
