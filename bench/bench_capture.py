"""Benchmark: whole-market capture, ``python -m bench.bench_capture [--symbols N] [--rate R]``.

The simulator lists N symbols (default 500, all ``*USDT``) and generates R events/s in total
(default 20,000, spread evenly over the symbols and their three streams). Ingestion runs with
``SYMBOLS='*USDT'``, so it resolves the universe from exchangeInfo and captures N x 3 streams
over as many connections as WS_MAX_STREAMS_PER_CONNECTION allows. After a warm-up, for
``--seconds`` (default 60) it measures: ingestion CPU share of one core (utime+stime over wall
time), peak RSS (VmHWM), events acknowledged by Kafka per second, and gaps detected.
Local broker (KAFKA_BOOTSTRAP_SERVERS), topics of its own deleted at the end.
Writes bench/results/capture.json. Goal: CPU < 50% of one core, peak RSS < 100 MB, 0 gaps.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from typing import Any

from bench.common import cpu_seconds, delete_topics, vm_hwm_mb, write_result
from binance_pipeline.testing.helpers import wait_for
from binance_pipeline.testing.stages import start_ingestion
from exchange_sim.testing import start_simulator

GOAL = "N symbols x 3 streams at R events/s: ingestion CPU < 50% of one core, peak RSS < 100 MB, 0 gaps"


def sent(stats: dict[str, Any]) -> int:
    return sum(t["sent"] for per in stats["symbols"].values() for t in per.values())


def symbol_names(n: int) -> list[str]:
    return [f"S{i:03d}USDT" for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20_000, help="events/s over every symbol")
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    tag = uuid.uuid4().hex[:8]
    topics = {k: f"bench-cap-{k.lower()}-{tag}" for k in ("TOPIC_TRADES", "TOPIC_BOOK_TICKER", "TOPIC_GAPS",
                                                         "TOPIC_DEAD_LETTER", "TOPIC_FRONTIER")}  # fmt: skip
    sim = start_simulator("--symbols", ",".join(symbol_names(args.symbols)), "--rate",
                          str(args.rate / args.symbols), "--max-send-buffer", str(1 << 30))
    ing = start_ingestion({
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "BINANCE_WS_URL": sim.ws_url, "BINANCE_REST_URL": sim.rest_url,
        "SYMBOLS": "*USDT", "LOG_LEVEL": "WARNING", "WS_STALL_TIMEOUT_S": "60", **topics,
    })  # fmt: skip
    try:
        streams = args.symbols * 3
        wait_for(lambda: sum(len(c["streams"]) for c in sim.stats()["connection_list"]) >= streams, 120,
                 f"{streams} streams subscribed", interval=0.5)  # fmt: skip
        connections = sim.stats()["connections"]
        time.sleep(5)  # warm-up: every stream flowing, producer batches steady
        pid = ing.process.pid
        cpu0, pub0, t0 = cpu_seconds(pid), ing.metric("ingestion_events_published"), time.monotonic()
        sent0 = sent(sim.stats())
        time.sleep(args.seconds)
        cpu1, pub1, t1 = cpu_seconds(pid), ing.metric("ingestion_events_published"), time.monotonic()
        peak, gaps = vm_hwm_mb(pid), ing.metric("ingestion_gaps_detected")
        sim_stats = sim.stats()
        sent1 = sent(sim_stats)
        assert ing.stop() == 0
    finally:
        ing.stop()
        sim.stop()
        delete_topics(bootstrap, list(topics.values()))
    wall = t1 - t0
    figures = {
        "symbols": args.symbols, "streams": streams, "connections": connections,
        "target_events_per_s": args.rate, "simulator_sent_events_per_s": round((sent1 - sent0) / wall),
        "events_per_s": round((pub1 - pub0) / wall),
        "ingestion_cpu_share": round((cpu1 - cpu0) / wall, 3), "ingestion_peak_rss_mb": round(peak, 1),
        "gaps_detected": gaps, "rate_limit_closes": sim_stats["rate_limit_closes"],
        "peak_incoming_per_sec": sim_stats["peak_incoming_per_sec"],
    }  # fmt: skip
    met = figures["ingestion_cpu_share"] < 0.5 and peak < 100 and gaps == 0
    print(f"{args.symbols} symbols x 3 streams over {connections} connection(s), target {args.rate:,.0f} "
          f"events/s: the simulator sent {figures['simulator_sent_events_per_s']:,}/s, ingestion had "
          f"{figures['events_per_s']:,}/s acknowledged by Kafka")
    print(f"ingestion CPU {figures['ingestion_cpu_share']:.1%} of one core (goal < 50%); peak RSS "
          f"{peak:.1f} MB (goal < 100); gaps {gaps:g} (goal 0); met: {met}")
    write_result("capture.json", {"name": "capture", "figures": figures, "goal": GOAL, "met": met})
    return 0


if __name__ == "__main__":
    sys.exit(main())
