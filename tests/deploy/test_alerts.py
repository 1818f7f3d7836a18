"""Prometheus alert rules (deploy/prometheus/alerts.yml): valid, unit-tested with promtool, and on
metric names the stages really export. (They fire on a real Prometheus: tests/e2e/test_alerts_fire.py.)"""

from __future__ import annotations

import re
import subprocess

from prometheus_client import CollectorRegistry, generate_latest

from binance_pipeline.common.health import HealthServer
from consumer.metrics import WorkerMetrics
from ingestion.metrics import IngestionMetrics
from tests.deploy.prometheus import ALERTS, RULES_DIR, tool


def test_rules_are_valid_and_pass_their_unit_tests() -> None:
    """`promtool check rules` accepts alerts.yml and `promtool test rules` passes alerts_test.yml."""
    promtool = tool("promtool")
    for args in (["check", "rules", ALERTS.name], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run([promtool, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def _exported_names() -> set[str]:
    """Every metric family name the stages export (series names of counters included)."""
    registries = [WorkerMetrics().registry, IngestionMetrics().registry]
    health = CollectorRegistry()
    HealthServer("127.0.0.1", 0, health, [])
    text = "".join(generate_latest(r).decode() for r in [*registries, health])
    return set(re.findall(r"^# TYPE (\S+)", text, re.M)) | set(re.findall(r"^(\w+)", text, re.M))


def test_every_metric_in_the_rules_is_exported_by_a_stage() -> None:
    """Each worker_*, ingestion_*, stage_* and process_* name the rules use exists in a registry."""
    names = set(re.findall(r"\b((?:worker|ingestion|stage|process)_[a-z_]+)\b", ALERTS.read_text()))
    assert names, "no metric found in the rules"
    exported = _exported_names()
    assert names <= exported, sorted(names - exported)
