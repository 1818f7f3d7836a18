"""Prometheus for tests: promtool/prometheus lookup, rules with short windows, a server on a free port."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from binance_pipeline.testing.helpers import free_port, stop_process

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS = RULES_DIR / "alerts.yml"


def tool(name: str) -> str:
    """Path of promtool/prometheus (Debian package ``prometheus``, installed by ``make alerts-tools``);
    skipped when absent outside CI, a failure in CI."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: CI runs `make alerts-tools`")
        pytest.skip(f"{name} not installed (make alerts-tools)")
    return found


def short_rules(text: str, window: str = "20s", hold: str = "5s") -> str:
    """The rules with their range windows and `for:` durations shortened, for a test that waits."""
    text = re.sub(r"\[\d+m\]", f"[{window}]", text)
    return re.sub(r"for: \d+m", f"for: {hold}", text)


class Prometheus:
    """``prometheus`` on 127.0.0.1:<free port>, scraping ``targets`` every second; stopped by PID."""

    def __init__(self, workdir: Path, targets: dict[str, str], rules: str) -> None:
        (workdir / "rules.yml").write_text(rules)
        jobs = "".join(f"  - job_name: {job}\n    static_configs: [{{targets: ['{t}']}}]\n"
                       for job, t in targets.items())
        (workdir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{workdir / 'rules.yml'}]\nscrape_configs:\n{jobs}")
        self.url = f"http://127.0.0.1:{free_port()}"
        self._log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [tool("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address={self.url[7:]}"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def firing(self) -> set[str]:
        doc = self.get("/api/v1/alerts") or {"data": {"alerts": []}}
        return {a["labels"]["alertname"] for a in doc["data"]["alerts"] if a["state"] == "firing"}

    def stop(self) -> None:
        stop_process(self.proc, 20)
        self._log.close()


def up_targets(prom: Prometheus) -> float:
    """How many targets Prometheus scraped successfully last time."""
    doc = prom.get("/api/v1/query?query=sum(up)")
    result = doc["data"]["result"] if doc else []
    return float(result[0]["value"][1]) if result else 0.0
