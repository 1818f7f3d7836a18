"""Benchmark: ``python -m bench.bench_history`` — history import end to end, and export to CSV.

In one run, on the local services (KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL):
  import   the simulator serves one archived day of N aggTrades (``--archive-days 1``); the
           clock starts when ``python -m ingestion.history`` starts and stops when the worker
           (``python -m consumer.worker``, its /metrics) has written all N rows: archive download,
           checksum, parse, Kafka, worker, TimescaleDB.
  worker   the same worker's own rows/s over the same run, from its first to its last written row.
  export   ``db.service.export.write_csv`` (``python -m db.query export``) of the same day to a file.
Fresh schema and topics per run, dropped at the end. N = BENCH_AGGS (default 1,000,000).
Goal: import >= 0.7 x worker rows/s; export >= 200,000 rows/s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka.admin import AdminClient

from bench.common import BOOTSTRAP, ROOT, drop_schemas_of, fresh_schema, metric
from binance_pipeline.testing.helpers import free_port
from db.service import queries
from db.service.export import ExportRequest, write_csv
from exchange_sim.testing import start_simulator

N = int(os.environ.get("BENCH_AGGS", "1000000"))


def worker_env(url: str, topics: dict[str, str], port: int) -> dict[str, str]:
    return {
        **os.environ, **topics, "DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "CONSUMER_GROUP": f"bench-{uuid.uuid4().hex[:8]}", "WORKER_HEALTH_PORT": str(port),
        "BATCH_MAX_ROWS": "5000", "BATCH_MAX_SECONDS": "1", "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
    }


def measure_import(env: dict[str, str], day: str, port: int) -> tuple[float, float]:
    """(import rows/s end to end, the worker's own rows/s) over the same run."""
    started = time.monotonic()
    importer = subprocess.Popen(
        [sys.executable, "-m", "ingestion.history", "BTCUSDT", "--streams", "aggTrade", "--from", day,
         "--to", day, "--no-audit"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    first: tuple[float, float] | None = None
    deadline = started + 600
    while time.monotonic() < deadline:
        written, now = metric(port, "worker_rows_written_total"), time.monotonic()
        if written > 0 and first is None:
            first = (now, written)
        if written >= N and first is not None:
            out = importer.communicate(timeout=60)[0].decode()
            print(out.strip().splitlines()[0], flush=True)
            return N / (now - started), (N - first[1]) / max(now - first[0], 1e-6)
        time.sleep(0.05)
    importer.kill()
    raise RuntimeError("the import did not reach the database in 600 s")


def measure_export(url: str, day: datetime) -> float:
    req = ExportRequest("BTCUSDT", "aggTrade", day, day + timedelta(days=1), "csv")
    conn = queries.connect(url, 0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.csv"
        started = time.monotonic()
        with path.open("wb") as out:
            rows = write_csv(conn, req, out, lambda _: None)
        elapsed = time.monotonic() - started
    conn.close()
    assert rows == N, f"exported {rows} rows, expected {N}"
    return rows / elapsed


def main() -> int:
    tag = uuid.uuid4().hex[:8]
    topics = {"TOPIC_TRADES": f"bench.h.trades.{tag}", "TOPIC_BOOK_TICKER": f"bench.h.book.{tag}",
              "TOPIC_GAPS": f"bench.h.gaps.{tag}", "TOPIC_DEAD_LETTER": f"bench.h.dlq.{tag}",
              "TOPIC_HISTORY_PROGRESS": f"bench.h.progress.{tag}", "TOPIC_PARTITIONS": "6"}
    yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    print(f"simulator: seeding one day of {N:,} aggTrades ...", flush=True)
    t0 = time.monotonic()
    sim = start_simulator("--symbols", "BTCUSDT", "--archive-days", "1", "--archive-day-aggs", str(N),
                          "--rate", "1", timeout=600)
    print(f"  seeded in {time.monotonic() - t0:.0f} s", flush=True)
    urls = [fresh_schema("history")]
    port = free_port()
    worker = subprocess.Popen([sys.executable, "-m", "consumer.worker"], cwd=ROOT,
                              env=worker_env(urls[0], topics, port))
    try:
        while metric(port, "worker_rows_written_total") < 0:
            time.sleep(0.2)
        env = {**worker_env(urls[0], topics, port), "BINANCE_ARCHIVE_URL": sim.rest_url,
               "BINANCE_REST_URL": sim.rest_url}
        import_rate, worker_rate = measure_import(env, yesterday.date().isoformat(), port)
        export_rate = measure_export(urls[0], yesterday)
    finally:
        worker.terminate()
        worker.wait(60)
        sim.stop()
        drop_schemas_of(urls)
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        names = [v for k, v in topics.items() if k != "TOPIC_PARTITIONS"]
        for f in admin.delete_topics(names, operation_timeout=10).values():
            try:
                f.result(30)
            except Exception as exc:
                print(f"(topic cleanup: {exc})")
    ratio = import_rate / worker_rate
    met = ratio >= 0.7 and export_rate >= 200_000
    print(f"import end to end (archive -> rows in TimescaleDB): {import_rate:>10,.0f} rows/s")
    print(f"worker, same run:                                   {worker_rate:>10,.0f} rows/s")
    print(f"import / worker = {ratio:.2f} (goal >= 0.7)")
    print(f"export to archive CSV:                              {export_rate:>10,.0f} rows/s"
          " (goal >= 200,000)")
    print(f"met: {met}")
    figures = {"aggtrades": N, "import_rows_per_s": round(import_rate),
               "worker_rows_per_s": round(worker_rate), "import_to_worker": round(ratio, 3),
               "export_csv_rows_per_s": round(export_rate)}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps({
        "name": "history", "figures": figures, "met": met,
        "goal": "import >= 0.7 x the worker's rows/s in the same run; export >= 200k rows/s to CSV",
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

