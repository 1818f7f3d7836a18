"""The Docker image and the compose stack, checked without a Docker engine: what they ship and run."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from typing import Any

import pytest

from binance_pipeline.common.settings import WorkerSettings
from binance_pipeline.testing.helpers import ROOT
from consumer.worker import named
from tests.deploy.prometheus import tool

yaml = pytest.importorskip("yaml")


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_the_image_ships_every_package_and_the_dashboard_extra() -> None:
    """The Dockerfile copies every package setuptools installs and installs the `dashboard` extra,
    which holds Streamlit and Plotly but not the tests' browser driver."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.M))
    assert packages == copied, packages ^ copied
    assert 'pip install --no-cache-dir ".[dashboard]"' in dockerfile
    extra = " ".join(project["project"]["optional-dependencies"]["dashboard"])
    assert "streamlit" in extra and "plotly" in extra and "playwright" not in extra


def test_the_stack_runs_the_dashboard_and_names_each_worker_replica() -> None:
    """A dashboard service serves the page on 8501 with a healthcheck; workers scale: each replica
    names itself after its host and publishes its health port on an ephemeral host port."""
    services = compose()["services"]
    dash = services["dashboard"]
    assert dash["command"] == ["python", "-m", "dashboard"] and dash["ports"] == ["127.0.0.1:8501:8501"]
    assert dash["environment"]["DASHBOARD_HOST"] == "0.0.0.0"  # noqa: S104 - inside its container
    assert "/_stcore/health" in " ".join(dash["healthcheck"]["test"])
    worker = services["worker"]
    template = worker["environment"]["WORKER_NAME"]
    assert "{hostname}" in template
    one = named(WorkerSettings(worker_name=template), "3f2a9c1b7d4e")
    assert one.worker_name == "worker-3f2a9c1b7d4e"
    assert all(not re.match(r"^[\d.]*:\d+:", port) for port in worker["ports"]), worker["ports"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="no docker-compose (make compose-check)")
def test_compose_check_validates_the_file() -> None:
    """`docker-compose config -q` (what `make compose-check` runs) accepts the file."""
    subprocess.run(["docker-compose", "-f", "docker-compose.yml", "config", "-q"], cwd=ROOT, check=True,
                   timeout=60)


def test_prometheus_config_is_valid_and_scrapes_every_worker_replica() -> None:
    """promtool accepts prometheus.yml; the worker job discovers the replicas by the service's name."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    worker = next(job for job in config["scrape_configs"] if job["job_name"] == "worker")
    assert worker["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": 8082, "refresh_interval": "15s"}]
    subprocess.run([tool("promtool"), "check", "config", "prometheus.yml"], check=True, timeout=60,
                   cwd=ROOT / "deploy" / "prometheus", capture_output=True)
