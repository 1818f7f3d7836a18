"""Benchmark: exchange simulator -> ingestion -> acknowledged Kafka records, vs a raw produce loop.

Run: ``python -m bench.bench_ingestion [--trades N] [--rate R]``. Uses the local broker
(KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:19092) with topics of its own, deleted at the end.

1. Starts the simulator (synthetic, high --rate, exactly --trades trades per symbol) and
   ingestion as a subprocess; events/s = events acknowledged by Kafka (ingestion's
   /metrics) divided by the time from the first to the last acknowledgement.
2. Peak memory of the ingestion process: VmHWM from /proc/<pid>/status.
3. Baseline (the ceiling) in the same run: the very payloads ingestion published, read back
   and produced again by a bare confluent-kafka loop with the same producer settings.
4. The bare baseline (``bench.bare_ingest``, a process of its own): a second simulator with the
   same arguments, received by websockets, parsed by orjson and produced by confluent-kafka with
   ingestion's producer settings, nothing else. Ingestion's CPU µs per event against the
   baseline's is the price of validation, sequencing, receipt stamps and the replay window.
Writes bench/results/ingestion.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Producer

from bench.common import cpu_seconds, delete_topics, vm_hwm_mb, write_result
from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.topics import TopicSpec, ensure_topics
from binance_pipeline.testing.helpers import read_all
from binance_pipeline.testing.stages import Ingestion, start_ingestion
from exchange_sim.testing import start_simulator
from ingestion.producer_slot import producer_config

POLL_S = 0.25  # each look at /metrics (an HTTP request, the exposition) is CPU ingestion spends for the bench
GOAL = "ingestion CPU/event <= 1.25 x the bare baseline's; ingestion peak RSS <= 100 MB"


def published(ing: Ingestion) -> float:
    return ing.metric("ingestion_events_published")


def measure_ingestion(
    ing: Ingestion, expected_done: Callable[[], int | None], timeout: float
) -> tuple[float, float, float]:
    """(events, seconds from first to last acknowledgement, peak RSS MB)."""
    start = end = None
    last = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now, count = time.monotonic(), published(ing)
        if count and start is None:
            start = now
        if count > last:
            last, end = count, now
        total = expected_done()
        if total is not None and count >= total:
            break
        time.sleep(POLL_S)
    peak = vm_hwm_mb(ing.process.pid)
    assert start is not None and end is not None, "nothing was published"
    return last, max(end - start, 1e-6), peak


def raw_produce(bootstrap: str, payloads: list[tuple[str | None, bytes, int]], topic: str) -> float:
    """Events/s of a bare produce loop of ``payloads`` with ingestion's producer settings."""
    cfg = producer_config(Settings(kafka_bootstrap_servers=bootstrap))
    cfg["queue.buffering.max.messages"] = max(len(payloads) + 1, 100_000)
    settings = Settings(kafka_bootstrap_servers=bootstrap)
    # the producer never auto-creates topics: create it as ingestion does, through the kit
    ensure_topics(settings, [TopicSpec(topic, settings.topic_partitions, settings.topic_replication_factor)],
                  timeout=30)
    producer = Producer(cfg)
    acked = [0]

    def done(err: object, _msg: object) -> None:
        if err is None:
            acked[0] += 1

    start = time.perf_counter()
    for key, value, ts in payloads:
        while True:
            try:
                producer.produce(topic, value, key, timestamp=ts, on_delivery=done)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - start
    assert acked[0] == len(payloads), f"only {acked[0]} of {len(payloads)} acknowledged"
    return len(payloads) / elapsed


def bare_ingest(sim_args: list[str], events: int, bootstrap: str, topics: list[str]) -> dict[str, float]:
    """The bare baseline's figures (events, seconds, cpu_s) on a fresh simulator run with ``sim_args``;
    ``topics``: where trades and bookTickers go (two topics, as ingestion's)."""
    defaults = Settings(kafka_bootstrap_servers=bootstrap)
    names = [f"{s.lower()}@{k}" for s in defaults.symbols for k in defaults.stream_types]
    partitions, replicas = defaults.topic_partitions, defaults.topic_replication_factor
    specs = [TopicSpec(topic, partitions, replicas) for topic in topics]
    ensure_topics(defaults, specs, timeout=30)
    sim = start_simulator(*sim_args)
    try:
        url = f"{sim.ws_url}/stream?streams={'/'.join(names)}&timeUnit=MICROSECOND"
        out = subprocess.run(
            [sys.executable, "-m", "bench.bare_ingest", url, ",".join(topics), str(events), bootstrap],
            capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
    finally:
        sim.stop()
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=30_000, help="trades per symbol (x3 symbols)")
    parser.add_argument("--rate", type=float, default=200_000, help="simulator events/s per symbol")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    tag = uuid.uuid4().hex[:8]
    names = {k: f"bench-{k.lower()}-{tag}" for k in ("TOPIC_TRADES", "TOPIC_BOOK_TICKER", "TOPIC_GAPS",
                                                   "TOPIC_DEAD_LETTER", "TOPIC_FRONTIER")}  # fmt: skip
    baseline_topic, bare_topics = f"bench-raw-{tag}", [f"bench-bare-trades-{tag}", f"bench-bare-book-{tag}"]
    sim_args = ["--max-trades", str(args.trades), "--rate", str(args.rate), "--start-delay", "2",
                "--max-send-buffer", str(1 << 30)]  # fmt: skip
    sim = start_simulator(*sim_args)
    ing = start_ingestion({
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "BINANCE_WS_URL": sim.ws_url, "BINANCE_REST_URL": sim.rest_url,
        "LOG_LEVEL": "WARNING", "WS_STALL_TIMEOUT_S": "120", **names,
    })  # fmt: skip
    try:

        def expected() -> int | None:
            try:
                stats = sim.stats()
            except OSError:  # a timeout on a loaded machine (URLError is an OSError): ask again later
                return None
            if not stats["done"]:
                return None
            return sum(t["sent"] for per in stats["symbols"].values() for t in per.values())

        cpu0 = cpu_seconds(ing.process.pid)
        events, seconds, peak = measure_ingestion(ing, expected, timeout=600)
        cpu = cpu_seconds(ing.process.pid) - cpu0
        gaps = ing.metric("ingestion_gaps_detected")
        records = read_all(bootstrap, [names["TOPIC_TRADES"], names["TOPIC_BOOK_TICKER"]], timeout=300)
        payloads = [(r.key, r.value, r.timestamp_ms) for r in records]
        baseline = raw_produce(bootstrap, payloads, baseline_topic)
        assert ing.stop() == 0
    finally:
        ing.stop()
        sim.stop()
        delete_topics(bootstrap, [*names.values(), baseline_topic])
    try:
        bare = bare_ingest(sim_args, int(events), bootstrap, bare_topics)
    finally:
        delete_topics(bootstrap, bare_topics)
    bare_us = bare["cpu_s"] / bare["events"] * 1e6
    ours_us = cpu / events * 1e6
    rate = events / seconds
    figures = {
        "events": int(events), "ingestion_events_per_s": round(rate),
        "raw_produce_events_per_s": round(baseline), "ratio": round(rate / baseline, 3),
        "ingestion_peak_rss_mb": round(peak, 1), "gaps_detected": gaps,
        "ingestion_cpu_share": round(cpu / seconds, 2),
        "ingestion_cpu_us_per_event": round(cpu / events * 1e6, 1),
        "bare_events": int(bare["events"]), "bare_events_per_s": round(bare["events"] / bare["seconds"]),
        "bare_cpu_us_per_event": round(bare_us, 1), "cpu_ratio_to_bare": round(ours_us / bare_us, 2),
    }  # fmt: skip
    met = ours_us / bare_us <= 1.25 and peak <= 100
    print(f"ingestion (simulator -> ws -> parse -> Kafka ack): {rate:,.0f} events/s, {events:,.0f} events")
    print(f"raw confluent-kafka produce loop, same payloads:   {baseline:,.0f} events/s")
    print(f"ingestion CPU: {figures['ingestion_cpu_share']:.0%} of one core while streaming, "
          f"{figures['ingestion_cpu_us_per_event']} us/event")
    print(f"bare baseline (websockets recv + orjson parse + produce, nothing else): "
          f"{figures['bare_cpu_us_per_event']} us/event CPU, {figures['bare_events_per_s']:,} events/s; "
          f"ingestion / bare CPU per event: {figures['cpu_ratio_to_bare']} (goal <= 1.25)")
    print(f"ratio to the raw produce loop: {rate / baseline:.3f}; ingestion peak RSS (VmHWM): {peak:.1f} MB "
          f"(goal <= 100); replay window: {Settings().ingestion_replay_max_messages:,} messages at most")
    write_result("ingestion.json", {"name": "ingestion", "figures": figures, "goal": GOAL, "met": met})
    return 0


if __name__ == "__main__":
    sys.exit(main())
