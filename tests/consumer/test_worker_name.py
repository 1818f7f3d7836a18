"""WORKER_NAME with ``{hostname}``: each replica of a scaled compose service names itself after its host."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from pydantic import ValidationError

from binance_pipeline.common.settings import WorkerSettings
from binance_pipeline.testing.helpers import wait_for
from binance_pipeline.testing.stages import WorkerProcess
from consumer.worker import named


def test_hostname_in_worker_name_becomes_the_host_s_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """`worker-{hostname}` is valid as written and becomes worker-<host>; a name without it stays."""
    monkeypatch.setenv("WORKER_NAME", "worker-{hostname}")
    settings = WorkerSettings()
    assert settings.worker_name == "worker-{hostname}"
    assert named(settings, "3f2a9c1b7d4e").worker_name == "worker-3f2a9c1b7d4e"
    assert named(settings.model_copy(update={"worker_name": "w1"}), "3f2a9c1b7d4e").worker_name == "w1"
    assert named(settings.model_copy(update={"worker_name": ""}), "h").worker_name == ""
    for bad in ("worker-{host}", "{hostname} x"):  # other braces, spaces: still the Kafka-name rule
        monkeypatch.setenv("WORKER_NAME", bad)
        with pytest.raises(ValidationError, match="expected empty, or 1-249 characters"):
            WorkerSettings()


def member_instance_ids(bootstrap: str, group: str) -> list[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described: Any = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return sorted(str(m.group_instance_id) for m in described.members)


def test_a_worker_joins_its_group_under_its_host_s_name(
    kafka_bootstrap: str, consumer_group: str, start_worker: Callable[..., WorkerProcess],
) -> None:
    """A real worker started with WORKER_NAME=w-{hostname} is the group's static member w-<host>."""
    worker = start_worker(WORKER_NAME="w-{hostname}")
    worker.wait_ready()
    expected = [f"w-{socket.gethostname()}"]
    wait_for(lambda: member_instance_ids(kafka_bootstrap, consumer_group) == expected, 30,
             "the worker's static membership")
