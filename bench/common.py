"""What the benchmarks share: where results go, the default services, a process's peak memory and CPU
time, a stage's Prometheus counter, and migrated schemas of their own. The stages, simulators and
readers come from the test kit (binance_pipeline.testing)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from binance_pipeline.testing.helpers import create_schema, drop_schemas, metric_sum
from db.store.migrate import apply

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
DSN = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/pipeline")


def write_result(file_name: str, result: dict[str, object]) -> Path:
    """``bench/results/<file_name>`` holding ``result`` as indented JSON; its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / file_name
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them (the machine is shared)."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def vm(pid: int, field: str) -> int:
    """A /proc/<pid>/status memory field in kB (VmRSS, VmHWM, ...); 0 when absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of ``pid`` so far, in MB."""
    return vm(pid, "VmHWM") / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(port: int, name: str) -> float:
    """Sum of the samples of ``name`` on 127.0.0.1:port/metrics; -1 while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1.0
    return metric_sum(text, name)


def fresh_schema(tag: str) -> str:
    """A migrated schema ``bench_<tag>_<random>`` of the default database; a URL on it."""
    _, url = create_schema(DSN, f"bench_{tag}")
    apply(url)
    return url


def drop_schemas_of(urls: list[str]) -> None:
    """Drop the schemas ``fresh_schema`` made (named in each URL's search_path)."""
    drop_schemas(DSN, [url.split("search_path%3D")[1].split("%2C")[0] for url in urls])


def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete a run's topics and wait for the broker's answer (a request not waited for may never
    leave the process); a failure is printed, not raised (the figures are already taken)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, future in admin.delete_topics(names, operation_timeout=10).items():
        try:
            future.result(30)
        except KafkaException as exc:  # cleanup: say it and go on (a topic never created is fine)
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                print(f"(topic {name} not deleted: {exc})")
