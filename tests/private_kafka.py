"""A private single-node Apache Kafka (KRaft) for tests that stop a broker or replace it.

``PrivateKafka(port)`` formats a fresh cluster (its own id, its own data directory) and runs it
on 127.0.0.1:port (controller on port+1). ``replace_with_empty()`` stops it and starts a new,
empty cluster on the same address: what a restart of a non-durable broker looks like to clients.
The jars come from ``KAFKA_LIBS`` (default /tmp/kpom/libs); without them the test is skipped.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

LIBS = Path(os.environ.get("KAFKA_LIBS", "/tmp/kpom/libs"))  # noqa: S108 - where CI unpacks Kafka

LOCAL = Path(__file__).resolve().parents[1] / ".local"  # the checkout's git-ignored scratch space

PROPERTIES = """process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.partitions=1
"""


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


class PrivateKafka:
    """One node, formatted afresh at each ``start``; stopped by PID."""

    def __init__(self, port: int) -> None:
        if not (LIBS / ".").is_dir() or not any(LIBS.glob("kafka_*.jar")):
            pytest.skip(f"Apache Kafka jars not found in {LIBS} (set KAFKA_LIBS)")
        self.port, self.bootstrap = port, f"127.0.0.1:{port}"
        LOCAL.mkdir(parents=True, exist_ok=True)
        self.home = Path(tempfile.mkdtemp(prefix=f"kafka-{port}-", dir=LOCAL))
        self.process: subprocess.Popen[bytes] | None = None
        self.generation = 0

    def _java(self, *args: str) -> list[str]:
        return ["java", "-Xmx512m", "-cp", f"{LIBS}/*", *args]

    def format(self) -> Path:
        """A new cluster's properties file (new id, empty data directory)."""
        self.generation += 1
        data = self.home / f"data{self.generation}"
        props = self.home / f"server{self.generation}.properties"
        props.write_text(PROPERTIES.format(port=self.port, cport=self.port + 1, data=data))
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        args = ("kafka.tools.StorageTool", "format", "--standalone", "-t", cluster, "-c", str(props))
        subprocess.run(self._java(*args), check=True, capture_output=True, timeout=120)
        return props

    def start(self, props: Path | None = None) -> None:
        props = props or self.format()
        log = (self.home / f"kafka{self.generation}.log").open("wb")
        self.process = subprocess.Popen(self._java("kafka.Kafka", str(props)), stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 90
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private Kafka did not start; see {log.name}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        self.process = None

    def replace_with_empty(self) -> float:
        """Stop this cluster, start an empty one on the same address; returns the seconds it was down."""
        props = self.format()  # before stopping: the outage lasts only the JVM's start
        down_at = time.monotonic()
        self.stop()
        self.start(props)
        return time.monotonic() - down_at

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
