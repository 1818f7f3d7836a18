"""Benchmark: ``python -m bench.bench_worker`` — worker rows/s vs. a COPY ceiling and the usual design.

In one run, on the local services (KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, default local):
  worker   ``python -m consumer.worker`` (subprocess) draining a pre-filled topic of N trade
           messages into the trades hypertable: rows/s from its first to its last written row
           (read from its /metrics), and its peak memory (VmHWM). Twice, on fresh schemas and
           consumer groups: with the rollups kept in the write transaction (the default) and
           without (WORKER_ROLLUPS=false), in 3 off/on pairs; the ratio is the median of the
           pairs' on/off ratios (a shared machine's noise moves whole runs, pairs cancel it).
  ceiling  (a) COPY of the same rows pre-built as text into the same table (same unique index),
           in transactions of the worker's batch size.
  usual    (b) psycopg2 execute_values + ON CONFLICT DO NOTHING, 500-row pages, same transactions.
Each run gets a fresh schema (all migrations) and fresh topics; both are dropped at the end.
Goal (issue 26): worker with rollups off >= 0.8 x (a), rollups on >= 0.85 x off; and >= 4 x (b),
peak memory <= 150 MB.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import orjson
import psycopg2
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg2.extras import execute_values

from bench.common import BOOTSTRAP, ROOT, drop_schemas_of, fresh_schema, load_average, metric, vm
from binance_pipeline.testing import events
from consumer.decode import TRADE_COLUMNS, decode_trade, to_datetime

N = int(os.environ.get("BENCH_ROWS", "300000"))
BATCH = int(os.environ.get("BENCH_BATCH_ROWS", "5000"))
PARTITIONS = 6
PAIRS = int(os.environ.get("BENCH_PAIRS", "3"))
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT")


def message(i: int) -> dict[str, Any]:
    """The kit's trade ``i``, spread over six symbols (six partitions) with varied quantities."""
    return events.trade(i, SYMBOLS[i % len(SYMBOLS)], qty=f"0.{i % 1000:03d}00000")


def prefill(topic: str, values: list[bytes]) -> None:
    p = Producer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "linger.ms": 20,
            "batch.size": 1 << 20,
            "compression.type": "lz4",
            "acks": "all",
            "enable.idempotence": True,
        }
    )
    for i, v in enumerate(values):
        while True:
            try:
                p.produce(topic, key=SYMBOLS[i % len(SYMBOLS)].encode(), value=v)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(120) == 0


def run_worker(
    url: str, topic_env: dict[str, str], port: int, rollups: bool = True
) -> tuple[float, int, float]:
    """Rows/s from first to last written row, peak memory (kB), time to drain all."""
    env = {
        **os.environ,
        **topic_env,
        "WORKER_ROLLUPS": "true" if rollups else "false",
        "DATABASE_URL": url,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "CONSUMER_GROUP": f"bench-{uuid.uuid4().hex[:8]}",
        "WORKER_HEALTH_PORT": str(port),
        "BATCH_MAX_ROWS": str(BATCH),
        "BATCH_MAX_SECONDS": "1",
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen([sys.executable, "-m", "consumer.worker"], cwd=ROOT, env=env)
    try:
        first: tuple[float, float] | None = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            written = metric(port, "worker_rows_written_total")
            now = time.monotonic()
            if written > 0 and first is None:
                first = (now, written)
            if written >= N and first is not None:
                hwm = vm(proc.pid, "VmHWM")
                return (N - first[1]) / (now - first[0]), hwm, now - first[0]
            time.sleep(0.05)
        raise RuntimeError("worker did not drain the topic in 300 s")
    finally:
        proc.terminate()
        proc.wait(60)


def run_copy(url: str, lines: list[str]) -> float:
    conn = psycopg2.connect(url)
    cols = ", ".join(TRADE_COLUMNS)
    started = time.perf_counter()
    with conn.cursor() as cur:
        for s in range(0, N, BATCH):
            cur.copy_expert(
                f"COPY trades ({cols}) FROM STDIN",
                io.BytesIO("".join(lines[s : s + BATCH]).encode()),
                size=1 << 20,
            )
            conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return N / elapsed


def run_execute_values(url: str, msgs: list[dict[str, Any]]) -> float:
    rows = [
        (
            to_datetime(m["trade_time"]),
            m["symbol"],
            m["type"],
            m["id"],
            m["first_id"],
            m["last_id"],
            m["price"],
            m["qty"],
            m["buyer_maker"],
            m["best_match"],
            to_datetime(m["event_time"]),
            to_datetime(m["received_at"]),
            m["source"],
        )
        for m in msgs
    ]
    sql = f"INSERT INTO trades ({', '.join(TRADE_COLUMNS)}) VALUES %s ON CONFLICT DO NOTHING"
    conn = psycopg2.connect(url)
    started = time.perf_counter()
    with conn.cursor() as cur:
        for s in range(0, N, BATCH):
            execute_values(cur, sql, rows[s : s + BATCH], page_size=500)
            conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return N / elapsed


def main() -> int:
    msgs = [message(i) for i in range(N)]
    values = [orjson.dumps(m) for m in msgs]
    lines = [str(decode_trade(v)[0]) for v in values]
    tag = uuid.uuid4().hex[:8]
    topic_env = {
        "TOPIC_TRADES": f"bench.trades.{tag}",
        "TOPIC_BOOK_TICKER": f"bench.book.{tag}",
        "TOPIC_GAPS": f"bench.gaps.{tag}",
        "TOPIC_DEAD_LETTER": f"bench.dlq.{tag}",
        "TOPIC_PARTITIONS": str(PARTITIONS),
    }
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    names = [v for k, v in topic_env.items() if k != "TOPIC_PARTITIONS"]
    for f in admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names]).values():
        f.result(30)
    urls: list[str] = []
    try:
        print(f"pre-filling {topic_env['TOPIC_TRADES']} with {N:,} trade messages ...", flush=True)
        prefill(topic_env["TOPIC_TRADES"], values)
        urls.append(fresh_schema("ev"))
        usual = run_execute_values(urls[-1], msgs)
        print(f"(b) execute_values ON CONFLICT, 500:  {usual:>10,.0f} rows/s", flush=True)
        port = 18_000 + int(tag[:4], 16) % 2000
        runs: dict[str, list[float]] = {"copy": [], "off": [], "on": []}
        hwm_kb = 0
        for _ in range(PAIRS):  # each pair beside its own ceiling: a shared machine's load drifts
            urls.append(fresh_schema("copy"))
            runs["copy"].append(run_copy(urls[-1], lines))
            print(f"(a) COPY pre-built text:              {runs['copy'][-1]:>10,.0f} rows/s"
                  f"  load average {load_average()}", flush=True)
            for rollups in (False, True):
                urls.append(fresh_schema("worker"))
                rate, hwm, drained_s = run_worker(urls[-1], topic_env, port, rollups)
                runs["on" if rollups else "off"].append(rate)
                hwm_kb = max(hwm_kb, hwm)
                label = "on " if rollups else "off"
                print(f"worker, rollups {label} (Kafka -> hypertable): {rate:>10,.0f} rows/s "
                      f"({drained_s:.1f} s)  load average {load_average()}", flush=True)
        ceiling = statistics.median(runs["copy"])
        worker, worker_off = statistics.median(runs["on"]), statistics.median(runs["off"])
        pair_ratio = statistics.median(on / off for on, off in zip(runs["on"], runs["off"], strict=True))
        off_ratio = statistics.median(off / c for off, c in zip(runs["off"], runs["copy"], strict=True))
        on_ratio = statistics.median(on / c for on, c in zip(runs["on"], runs["copy"], strict=True))
        print(f"rollups on / off (median of {PAIRS} pairs): {pair_ratio:.3f} (goal >= 0.85)")
        print(f"rollups off / COPY ceiling (median of {PAIRS}): {off_ratio:.3f} (goal >= 0.8); "
              f"rollups on / COPY ceiling: {on_ratio:.3f}")
    finally:
        drop_schemas_of(urls)
        for f in admin.delete_topics(names, operation_timeout=10).values():
            try:
                f.result(30)
            except Exception as exc:
                print(f"(topic cleanup: {exc})")
    figures = {
        "rows": N,
        "batch_max_rows": BATCH,
        "worker_rows_per_s": round(worker),
        "worker_rows_per_s_rollups_off": round(worker_off),
        "ratio_rollups_on_to_off": round(pair_ratio, 3),
        "copy_ceiling_rows_per_s": round(ceiling),
        "execute_values_rows_per_s": round(usual),
        "ratio_to_ceiling": round(on_ratio, 3),
        "ratio_rollups_off_to_ceiling": round(off_ratio, 3),
        "ratio_to_execute_values": round(worker / usual, 2),
        "worker_peak_memory_mb": round(hwm_kb / 1024, 1),
    }
    met = (
        figures["ratio_rollups_off_to_ceiling"] >= 0.8
        and figures["ratio_to_execute_values"] >= 4
        and hwm_kb <= 150 * 1024
        and figures["ratio_rollups_on_to_off"] >= 0.85
    )
    print(
        f"worker / (a) = {figures['ratio_to_ceiling']:.2f}, rollups off {off_ratio:.2f} (goal >= 0.8); "
        f"worker / (b) = {figures['ratio_to_execute_values']:.2f} (goal >= 4); "
        f"peak memory {figures['worker_peak_memory_mb']} MB (goal <= 150); met: {met}"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "worker.json").write_text(
        json.dumps(
            {
                "name": "worker",
                "figures": figures,
                "goal": "worker with rollups off >= 0.8 x COPY ceiling, >= 4 x execute_values, "
                "peak memory <= 150 MB, rollups on >= 0.85 x off",
                "met": met,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
