"""Private Apache Kafka brokers and clusters for tests that kill, pause or replace a broker.

Built on the checkout's ``scripts/kafka_local.py``, the same code that provisions the local services,
so a private node is configured exactly like the one ``make services-up`` runs. Each cluster lives in
a temporary directory of its own, on free loopback ports.

Rule 1: a node is signalled and stopped by its PID file, never by name.
Rule 2: without a source checkout (scripts/ beside the package) ``kafka_local()`` raises
        ``FileNotFoundError``; the ``private_kafka`` fixture turns that into a skip.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from binance_pipeline.testing.helpers import ROOT

KAFKA_LOCAL = ROOT / "scripts" / "kafka_local.py"
SHARED_LIBS = ROOT / ".local" / "kafka"  # the jars services.sh fetched (cached)


@functools.cache
def kafka_local() -> ModuleType:
    """The checkout's scripts/kafka_local.py, loaded once (Rule 2)."""
    if not KAFKA_LOCAL.is_file():
        raise FileNotFoundError(f"{KAFKA_LOCAL} is absent: private brokers need a source checkout")
    spec = importlib.util.spec_from_file_location("kafka_local", KAFKA_LOCAL)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {KAFKA_LOCAL}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("kafka_local", module)
    spec.loader.exec_module(module)
    return module


def free_port_block(size: int) -> int:
    """A port p such that p .. p+size-1 and p+100 .. p+100+size-1 are all free now."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + 100 + size >= 65535:
            continue
        if all(port_is_free(p) for k in range(size) for p in (base + k, base + 100 + k)):
            return base
    raise RuntimeError("no free block of ports for a private Kafka cluster")


def port_is_free(port: int) -> bool:
    """True when nothing is bound to 127.0.0.1:port right now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PrivateKafka:
    """An Apache Kafka cluster (1 or 3 combined nodes) of one test's own, started on creation."""

    def __init__(self, nodes: int = 1, auto_create: bool = False) -> None:
        local = kafka_local()
        self.dir = Path(tempfile.mkdtemp(prefix="kafka-private-"))
        libs = local.fetch(SHARED_LIBS)
        (self.dir / libs.name).symlink_to(libs)
        plan = local.Cluster.plan(self.dir, free_port_block(nodes), nodes)
        # production-like: no topic appears unless a stage creates it (an empty broker stays empty)
        self.cluster = dataclasses.replace(plan, auto_create=auto_create)
        self.cluster.save()
        self.bootstrap: str = self.cluster.bootstrap
        self.start()

    @property
    def nodes(self) -> tuple[Any, ...]:
        return tuple(self.cluster.nodes)

    def node_by_id(self, node_id: int) -> Any:
        return next(n for n in self.cluster.nodes if n.node_id == node_id)

    def start(self, *node_ids: int) -> None:
        """Start the given nodes (all by default) and wait until each is ready."""
        local = kafka_local()
        libs = local.lib_dir(self.dir)
        chosen = [n for n in self.cluster.nodes if not node_ids or n.node_id in node_ids]
        offsets = [(n, local.start_node(self.cluster, n, libs)) for n in chosen]
        for node, offset in offsets:
            if offset >= 0:
                local.wait_ready(self.cluster, node, offset)

    def pid(self, node_id: int = 1) -> int | None:
        pid: int | None = kafka_local().pid_of(self.cluster, self.node_by_id(node_id))
        return pid

    def kill(self, node_id: int = 1) -> None:
        """SIGKILL one node: no controlled shutdown, as in a crash."""
        node = self.node_by_id(node_id)
        kafka_local().signal_node(self.cluster, node, signal.SIGKILL)
        kafka_local().stop_node(self.cluster, node)

    def pause(self, node_id: int = 1) -> None:
        kafka_local().signal_node(self.cluster, self.node_by_id(node_id), signal.SIGSTOP)

    def resume(self, node_id: int = 1) -> None:
        kafka_local().signal_node(self.cluster, self.node_by_id(node_id), signal.SIGCONT)

    def wipe(self) -> None:
        """Stop every node and delete its data: the next start() is an empty cluster."""
        self.stop_all()
        for node in self.cluster.nodes:
            shutil.rmtree(self.cluster.node_dir(node) / "data", ignore_errors=True)

    def stop_all(self) -> None:
        for node in self.cluster.nodes:
            kafka_local().stop_node(self.cluster, node)

    def close(self) -> None:
        """Gone for good: SIGKILL every node, then delete the directory. A throwaway cluster needs no
        controlled shutdown, and one node of three left without a quorum waits 30 s for it."""
        for node in self.cluster.nodes:
            kafka_local().signal_node(self.cluster, node, signal.SIGKILL)
            kafka_local().stop_node(self.cluster, node)  # reaps it and removes the pid file
        shutil.rmtree(self.dir, ignore_errors=True)
