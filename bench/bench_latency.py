"""Receipt-to-committed-row latency of the whole pipeline, p50 and p99, at 100 and 5,000 events/s.

simulator -> ingestion -> broker -> worker -> TimescaleDB, all real processes, default batch caps
(500 rows / 2 s). Each row's latency is measured by the database itself:
``pg_xact_commit_timestamp(xmin) - received_at`` (commit time of the transaction that wrote the row,
minus the receipt stamp ingestion put on the event). That needs ``track_commit_timestamp = on``,
which the local cluster has (scripts/services.sh); elsewhere the benchmark says so and stops.
Goal: p99 <= flush interval + 0.3 s at 100 events/s, and <= 1 s at 5,000 events/s.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2

from bench.common import ROOT, delete_topics
from binance_pipeline.testing.helpers import free_port, url_with_schema, wait_for
from binance_pipeline.testing.stages import Pipeline
from exchange_sim.testing import start_simulator

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
WARMUP_S, MEASURE_S = 5.0, 30.0
FLUSH_S = 2.0
DB = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/pipeline")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")


def sql(dsn: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def run_at(total_rate: float) -> dict[str, float]:
    schema = f"bench_latency_{uuid.uuid4().hex[:8]}"
    sql(DB, f"CREATE SCHEMA {schema}")
    tag = uuid.uuid4().hex[:8]
    sim = start_simulator("--symbols", ",".join(SYMBOLS), "--rate", str(total_rate / len(SYMBOLS)))
    db_url = url_with_schema(DB, schema)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "DATABASE_URL": db_url,
        "TOPIC_TRADES": f"bench.trades.{tag}", "TOPIC_BOOK_TICKER": f"bench.book.{tag}",
        "TOPIC_GAPS": f"bench.gaps.{tag}", "TOPIC_DEAD_LETTER": f"bench.dlq.{tag}",
        "TOPIC_FRONTIER": f"bench.frontier.{tag}", "CONSUMER_GROUP": f"bench-{tag}",
        "BINANCE_WS_URL": sim.ws_url, "BINANCE_REST_URL": sim.rest_url,
        "INGESTION_HEALTH_PORT": str(free_port()), "WORKER_HEALTH_PORT": str(free_port()),
        "KAFKA_SESSION_TIMEOUT_MS": "6000", "LOG_LEVEL": "WARNING",
        "BATCH_MAX_SECONDS": str(FLUSH_S),
    }
    pipe = Pipeline(env=env, db_url=db_url, log_dir=Path(tempfile.mkdtemp(prefix="bench-latency-")))
    try:
        pipe.start_worker()
        pipe.start_ingestion()
        wait_for(lambda: pipe.count("trades") > 0, 60, "the first rows")
        time.sleep(WARMUP_S)
        start = sql(db_url, "SELECT now()")[0][0]
        time.sleep(MEASURE_S)
        end = sql(db_url, "SELECT now()")[0][0]
        time.sleep(FLUSH_S + 3.0)  # let the last batches of the window commit
        rows = sql(
            db_url,
            "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - received_at) FROM trades"
            " WHERE received_at >= %s AND received_at < %s"
            " UNION ALL SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - time) FROM book_ticker"
            " WHERE time >= %s AND time < %s",
            (start, end, start, end),
        )
    finally:
        pipe.close()
        sim.stop()
        sql(DB, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        delete_topics(KAFKA, [v for k, v in env.items() if k.startswith("TOPIC_")])
    latencies = [float(r[0]) for r in rows if r[0] is not None]
    if len(latencies) < 100:
        raise SystemExit(f"too few rows measured ({len(latencies)}); logs:\n{pipe.logs()}")
    return {
        "rows": float(len(latencies)),
        "events_per_s": len(latencies) / MEASURE_S,
        "p50_s": percentile(latencies, 0.50),
        "p99_s": percentile(latencies, 0.99),
        "max_s": max(latencies),
    }


def main() -> int:
    if sql(DB, "SHOW track_commit_timestamp")[0][0] != "on":
        print("track_commit_timestamp is off on this database: the per-row commit time cannot be read.")
        print("The local cluster (scripts/services.sh) turns it on; restart it with services-down/up.")
        return 1
    figures: dict[str, float] = {}
    for rate in (100.0, 5000.0):
        print(f"measuring at {rate:,.0f} events/s for {MEASURE_S:.0f} s ...", flush=True)
        got = run_at(rate)
        label = f"{int(rate)}eps"
        for key, value in got.items():
            figures[f"{label}_{key}"] = round(value, 4)
        print(f"  {got['events_per_s']:,.0f} rows/s observed; latency p50 {got['p50_s']:.3f} s, "
              f"p99 {got['p99_s']:.3f} s, max {got['max_s']:.3f} s", flush=True)
    goal_low, goal_high = FLUSH_S + 0.3, 1.0
    figures["p99_100eps_over_goal"] = round(figures["100eps_p99_s"] / goal_low, 3)
    figures["p99_5000eps_over_goal"] = round(figures["5000eps_p99_s"] / goal_high, 3)
    met = figures["100eps_p99_s"] <= goal_low and figures["5000eps_p99_s"] <= goal_high
    print(f"p99 / goal: {figures['p99_100eps_over_goal']} at 100 events/s (goal {goal_low} s), "
          f"{figures['p99_5000eps_over_goal']} at 5,000 events/s (goal {goal_high} s); met: {met}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_latency.json").write_text(json.dumps({
        "name": "bench_latency", "figures": figures,
        "goal": "p99 <= flush interval + 0.3 s at 100 ev/s; p99 <= 1 s at 5,000 ev/s", "met": met,
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
