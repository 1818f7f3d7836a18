"""Apache Kafka on loopback without Docker: fetch from Maven Central, format KRaft storage, run nodes.

Usage (scripts/services.sh calls this; tests import it for private brokers)::

    python3 scripts/kafka_local.py fetch   --dir .local/kafka
    python3 scripts/kafka_local.py up      --dir .local/kafka --port 19092 [--nodes 3]
    python3 scripts/kafka_local.py down    --dir .local/kafka
    python3 scripts/kafka_local.py status  --dir .local/kafka
    python3 scripts/kafka_local.py bootstrap --dir .local/kafka

Rules:
  1. The broker version is pinned here, in KAFKA_VERSION, and nowhere else.
  2. Standard library only: this runs before the project's virtualenv exists.
  3. Durable: each node's log directory lives under ``--dir`` and is formatted once; a node killed
     and started again keeps its topics, messages and committed offsets.
  4. Everything binds to 127.0.0.1; every process is started with a pid file and stopped by PID.
  5. ``up`` is idempotent: a running node is left alone; ``down`` leaves no process of ours.
  6. A cluster is described once, in ``cluster.json`` (nodes, ports, secure or not), written by
     the first ``up``; later commands read it, so ``down`` and ``status`` need no port arguments.
  7. ``--secure-dir DIR`` (services.sh with LOCAL_SECURE=1) adds a SASL_SSL listener on
     ``port + 50`` with SCRAM-SHA-256/512 users; DIR holds the PEM keystore and ``secrets.env``
     made by services.sh. SCRAM users are written when storage is formatted, so turning the
     listener on or off resets the local broker's data (said in the log).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"
READY_TIMEOUT_S = float(os.environ.get("SERVICES_READY_TIMEOUT", "90"))

POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.binance-pipeline</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{SLF4J_VERSION}</version></dependency>
  </dependencies>
</project>
"""

LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Logger:
      - name: kafka
        level: INFO
      - name: org.apache.kafka
        level: WARN
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
"""

READY_LINE = "Kafka Server started"


class KafkaLocalError(RuntimeError):
    """Provisioning failed; the message names the node and its log."""


def log(msg: str) -> None:
    print(f"[services] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------- fetch
def lib_dir(root: Path) -> Path:
    return root / f"lib-{KAFKA_VERSION}"


def fetch(root: Path) -> Path:
    """The broker's jars from Maven Central, cached under ``root``; returns their directory."""
    libs = lib_dir(root)
    done = libs / ".complete"
    if done.exists():
        return libs
    log(f"fetching Apache Kafka {KAFKA_VERSION} and its runtime dependencies from Maven Central")
    libs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kafka-pom-") as tmp:
        (Path(tmp) / "pom.xml").write_text(POM)
        cmd = ["mvn", "-q", "-B", "-f", str(Path(tmp) / "pom.xml"), "dependency:copy-dependencies",
               f"-DoutputDirectory={libs}", "-DexcludeArtifactIds=slf4j-reload4j,reload4j"]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KafkaLocalError(f"mvn could not fetch Apache Kafka {KAFKA_VERSION}:\n{result.stdout[-2000:]}"
                              f"{result.stderr[-2000:]}")
    for old in libs.glob("slf4j-api-1.*.jar"):  # Kafka pulls slf4j 1.7; log4j's bridge needs 2.x
        old.unlink()
    done.write_text(KAFKA_VERSION + "\n")
    return libs


# ------------------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Node:
    node_id: int
    port: int
    controller_port: int


SECURE_PORT_OFFSET = 50


@dataclass(frozen=True)
class Cluster:
    root: Path
    nodes: tuple[Node, ...]
    cluster_id: str
    secure_dir: Path | None = None
    auto_create: bool = True  # Kafka's default; private test brokers turn it off (production-like)

    @classmethod
    def plan(cls, root: Path, port: int, count: int, secure_dir: Path | None = None) -> Cluster:
        """Node i gets broker port ``port + i - 1`` and controller port ``port + 100 + i - 1``."""
        nodes = tuple(Node(i, port + i - 1, port + 100 + i - 1) for i in range(1, count + 1))
        return cls(root, nodes, uuid_b64(), secure_dir)

    @classmethod
    def load(cls, root: Path) -> Cluster | None:
        path = root / "cluster.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        nodes = tuple(Node(**n) for n in data["nodes"])
        secure = data.get("secure_dir")
        return cls(root, nodes, data["cluster_id"], Path(secure) if secure else None,
                   bool(data.get("auto_create", True)))

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data = {"cluster_id": self.cluster_id, "version": KAFKA_VERSION,
                "nodes": [n.__dict__ for n in self.nodes],
                "secure_dir": str(self.secure_dir) if self.secure_dir else None,
                "auto_create": self.auto_create}
        (self.root / "cluster.json").write_text(json.dumps(data, indent=2) + "\n")

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @property
    def secure_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port + SECURE_PORT_OFFSET}" for n in self.nodes)

    def node_dir(self, node: Node) -> Path:
        return self.root / f"node-{node.node_id}"

    def pid_file(self, node: Node) -> Path:
        return self.node_dir(node) / "kafka.pid"

    def log_file(self, node: Node) -> Path:
        return self.node_dir(node) / "server.log"


def uuid_b64() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as kafka-storage makes)."""
    import base64

    while True:  # one starting with '-' would be read as an option by kafka-storage
        ident = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not ident.startswith("-"):
            return ident


def server_properties(cluster: Cluster, node: Node) -> str:
    count = len(cluster.nodes)
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster.nodes)
    replicas = min(3, count)
    lines = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": cluster.node_dir(node) / "data",
        "num.partitions": 1,  # the stages create their topics with TOPIC_PARTITIONS themselves
        "auto.create.topics.enable": str(cluster.auto_create).lower(),
        "default.replication.factor": replicas,
        "min.insync.replicas": min(2, replicas),
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": 10,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min(2, replicas),
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min(2, replicas),
        "group.initial.rebalance.delay.ms": 0,
        "unclean.leader.election.enable": "false",
    }
    if cluster.secure_dir is not None:
        lines.update(secure_properties(cluster.secure_dir, node))
    return "".join(f"{k}={v}\n" for k, v in lines.items())


SCRAM = ("SCRAM-SHA-256", "SCRAM-SHA-512")


def secure_properties(tls: Path, node: Node) -> dict[str, object]:
    """A SASL_SSL listener (SCRAM over TLS, server certificate from the local CA) beside PLAINTEXT."""
    sasl = node.port + SECURE_PORT_OFFSET
    jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    props: dict[str, object] = {
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port},"
                     f"SASL_SSL://127.0.0.1:{sasl}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port},SASL_SSL://127.0.0.1:{sasl}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": ",".join(SCRAM),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": tls / "kafka-keystore.pem",
    }
    for mech in SCRAM:
        props[f"listener.name.sasl_ssl.{mech.lower()}.sasl.jaas.config"] = jaas
    return props


def read_secrets(tls: Path) -> dict[str, str]:
    lines = (tls / "secrets.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


# ------------------------------------------------------------------------------------- processes
def java() -> str:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def heap_mb(count: int) -> int:
    return 512 if count == 1 else 384


def pid_of(cluster: Cluster, node: Node) -> int | None:
    try:
        pid = int(cluster.pid_file(node).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    if _zombie(pid):  # a node we started and that died: reap it, it is not running
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return None
    return pid


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def format_node(cluster: Cluster, node: Node, libs: Path) -> None:
    data = cluster.node_dir(node) / "data"
    if (data / "meta.properties").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    props = cluster.node_dir(node) / "server.properties"
    cmd = [java(), "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format", "-t", cluster.cluster_id,
           "-c", str(props)]
    if cluster.secure_dir is not None:
        secrets = read_secrets(cluster.secure_dir)
        user, password = secrets["KAFKA_SCRAM_USER"], secrets["KAFKA_SCRAM_PASSWORD"]
        for mech in SCRAM:
            cmd += ["--add-scram", f"{mech}=[name={user},password={password}]"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KafkaLocalError(f"formatting node {node.node_id} failed: {result.stdout}{result.stderr}")


def start_node(cluster: Cluster, node: Node, libs: Path) -> int:
    """Start one node (no-op when it runs); returns the offset in its log where this start begins."""
    ndir = cluster.node_dir(node)
    ndir.mkdir(parents=True, exist_ok=True)
    (ndir / "server.properties").write_text(server_properties(cluster, node))
    (cluster.root / "log4j2.yaml").write_text(LOG4J2)
    format_node(cluster, node, libs)
    logf = cluster.log_file(node)
    offset = logf.stat().st_size if logf.exists() else 0
    if pid_of(cluster, node) is not None:
        return -1
    heap = heap_mb(len(cluster.nodes))
    cmd = [java(), f"-Xms{heap // 2}m", f"-Xmx{heap}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
           "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
           f"-Dlog4j2.configurationFile={cluster.root / 'log4j2.yaml'}",
           f"-Dkafka.logs.dir={ndir}", "-cp", f"{libs}/*", "kafka.Kafka", str(ndir / "server.properties")]
    with logf.open("ab") as out:
        out.write(f"==== start {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n".encode())
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    cluster.pid_file(node).write_text(f"{proc.pid}\n")
    return offset


def wait_ready(cluster: Cluster, node: Node, offset: int, timeout: float = READY_TIMEOUT_S) -> None:
    logf = cluster.log_file(node)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_of(cluster, node) is None:
            raise KafkaLocalError(f"Kafka node {node.node_id} exited at start; its log is {logf}")
        with logf.open("rb") as f:
            f.seek(offset)
            if READY_LINE.encode() in f.read() and port_open(node.port):
                return
        time.sleep(0.2)
    raise KafkaLocalError(f"Kafka node {node.node_id} not ready on 127.0.0.1:{node.port} after "
                          f"{timeout:.0f}s; its log is {logf}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def signal_node(cluster: Cluster, node: Node, sig: int) -> None:
    pid = pid_of(cluster, node)
    if pid is not None:
        os.kill(pid, sig)


def stop_node(cluster: Cluster, node: Node, timeout: float = 30.0) -> None:
    """SIGTERM (controlled shutdown), then SIGKILL after ``timeout``; removes the pid file."""
    pid = pid_of(cluster, node)
    if pid is not None:
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_of(cluster, node) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_of(cluster, node) is not None:
            os.kill(pid, signal.SIGKILL)
            while pid_of(cluster, node) is not None:
                time.sleep(0.05)
    cluster.pid_file(node).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------- commands
def up(root: Path, port: int, count: int, secure_dir: Path | None = None) -> Cluster:
    cluster = Cluster.load(root)
    if cluster is not None and (len(cluster.nodes) != count or cluster.nodes[0].port != port
                                or cluster.secure_dir != secure_dir):
        if any(pid_of(cluster, n) for n in cluster.nodes):
            raise KafkaLocalError(f"a {len(cluster.nodes)}-node cluster on port {cluster.nodes[0].port} "
                                  f"runs from {root}; run `services.sh down` before changing its shape "
                                  "(nodes, port or LOCAL_SECURE)")
        log(f"the cluster in {root} changes shape: its data is reset")
        import shutil

        for n in cluster.nodes:
            shutil.rmtree(cluster.node_dir(n), ignore_errors=True)
        cluster = None
    if cluster is None:
        cluster = Cluster.plan(root, port, count, secure_dir)
        cluster.save()
    libs = fetch(root)
    started = []
    for node in cluster.nodes:
        if pid_of(cluster, node) is None and port_open(node.port):
            raise KafkaLocalError(f"127.0.0.1:{node.port} is taken by another process; set LOCAL_KAFKA_PORT")
        started.append((node, start_node(cluster, node, libs)))
    for node, offset in started:
        if offset >= 0:
            wait_ready(cluster, node, offset)
    fresh = [n.node_id for n, off in started if off >= 0]
    what = f"started node(s) {fresh}" if fresh else "already running"
    secure = f", SASL_SSL on {cluster.secure_bootstrap}" if cluster.secure_dir else ""
    log(f"Apache Kafka {KAFKA_VERSION} ({len(cluster.nodes)} node(s)) on {cluster.bootstrap}{secure}: {what}")
    return cluster


def down(root: Path) -> None:
    cluster = Cluster.load(root)
    if cluster is None:
        return
    running = [n for n in cluster.nodes if pid_of(cluster, n) is not None]
    for node in running:
        stop_node(cluster, node)
    if running:
        log(f"Apache Kafka stopped ({len(running)} node(s))")


def status(root: Path) -> int:
    cluster = Cluster.load(root)
    if cluster is None:
        print("broker: not provisioned")
        return 3
    states = [(n, pid_of(cluster, n)) for n in cluster.nodes]
    up_nodes = [f"{n.port} (pid {pid})" for n, pid in states if pid]
    if not up_nodes:
        print("broker: stopped")
        return 3
    print(f"broker: Apache Kafka {KAFKA_VERSION}, {len(up_nodes)}/{len(states)} node(s) running "
          f"on 127.0.0.1: {', '.join(up_nodes)}")
    return 0 if len(up_nodes) == len(states) else 3


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="kafka_local.py", description=__doc__.split("\n\n")[0])
    p.add_argument("command",
                   choices=["fetch", "up", "down", "status", "bootstrap", "secure-bootstrap", "version"])
    p.add_argument("--dir", type=Path, required=True, help="where jars, configs, data and logs live")
    p.add_argument("--port", type=int, default=19092, help="first node's broker port")
    p.add_argument("--nodes", type=int, default=1, choices=[1, 3], help="combined broker+controller nodes")
    p.add_argument("--secure-dir", type=Path, default=None,
                   help="add a SASL_SSL listener with the keystore and secrets in this directory")
    args = p.parse_args(argv)
    root = args.dir.resolve()
    try:
        if args.command == "fetch":
            fetch(root)
        elif args.command == "up":
            up(root, args.port, args.nodes, args.secure_dir.resolve() if args.secure_dir else None)
        elif args.command == "down":
            down(root)
        elif args.command == "status":
            return status(root)
        elif args.command == "version":
            print(KAFKA_VERSION)
        else:
            cluster = Cluster.load(root)
            if args.command == "secure-bootstrap":
                print(cluster.secure_bootstrap if cluster and cluster.secure_dir else "")
                return 0
            print(cluster.bootstrap if cluster else f"127.0.0.1:{args.port}")
    except KafkaLocalError as exc:
        log(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
