"""The local Apache Kafka: idempotent provisioning, durability across a crash, browsing with kaskade."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.topics import create_missing, pipeline_specs, pipeline_topics
from binance_pipeline.testing.brokers import PrivateKafka, free_port_block, kafka_local
from binance_pipeline.testing.helpers import ROOT

pytestmark = pytest.mark.slow
SERVICES = ROOT / "scripts" / "services.sh"


def _services(local: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(LOCAL_DIR=str(local), LOCAL_KAFKA_PORT=str(port),
               DATABASE_URL=os.environ.get("DATABASE_URL", "postgresql://unused@127.0.0.1:1/x"))
    return subprocess.run(["bash", str(SERVICES), *args], env=env, capture_output=True, text=True,
                          timeout=180, check=False)


def _java_pids_under(path: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "kafka.Kafka" in cmdline and str(path) in cmdline:
                pids.append(int(entry.name))
    return pids


def test_services_up_twice_changes_nothing_and_down_leaves_no_java_process(tmp_path: Path) -> None:
    """`services.sh up` twice starts one broker; `down` leaves no Java process of ours."""
    local = tmp_path / "local"
    (local / "kafka").mkdir(parents=True)
    cached = ROOT / ".local" / "kafka" / kafka_local().lib_dir(Path(".")).name
    if cached.exists():  # reuse the jars the session's services already fetched
        shutil.copytree(cached, local / "kafka" / cached.name)
    port = free_port_block(1)
    try:
        first = _services(local, port, "up")
        assert first.returncode == 0, first.stderr
        assert f"Apache Kafka {kafka_local().KAFKA_VERSION}" in first.stderr
        pids = _java_pids_under(local)
        assert len(pids) == 1
        second = _services(local, port, "up")
        assert second.returncode == 0 and "already running" in second.stderr, second.stderr
        assert _java_pids_under(local) == pids
        status = _services(local, port, "status")
        assert status.returncode == 0 and f"running on 127.0.0.1: {port}" in status.stdout
        env = _services(local, port, "env")
        assert f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port}" in env.stdout
    finally:
        down = _services(local, port, "down")
    assert down.returncode == 0, down.stderr
    assert _java_pids_under(local) == []
    assert _services(local, port, "status").returncode == 3


def test_killed_broker_keeps_topics_messages_and_committed_offsets() -> None:
    """A broker SIGKILLed and started again still has its topics, every acked message and the offsets."""
    broker = PrivateKafka()
    try:
        topic, group = f"durable-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic, 3, -1)])[topic].result(15)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all",
                             "enable.idempotence": True})
        for i in range(1000):
            producer.produce(topic, key=str(i % 7).encode(), value=str(i).encode())
        assert producer.flush(15) == 0
        _commit(broker.bootstrap, group, [TopicPartition(topic, p, 42 + p) for p in range(3)])

        broker.kill()
        broker.start()

        values = _read_all(broker.bootstrap, topic, 1000)
        assert sorted(int(v) for v in values) == list(range(1000))
        check = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
        committed = check.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)
        check.close()
        assert [tp.offset for tp in committed] == [42, 43, 44]
    finally:
        broker.close()


def _commit(bootstrap: str, group: str, offsets: list[TopicPartition], timeout: float = 30) -> None:
    """Commit offsets for a group, retrying while the new broker elects the group's coordinator."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
                return
            except KafkaException:
                if time.monotonic() > deadline:  # NOT_COORDINATOR is not flagged retriable
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def _read_all(bootstrap: str, topic: str, want: int, timeout: float = 30) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(values) < want and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            values.append(msg.value())
    consumer.close()
    return values


class Tmux:
    """A tmux server of one test's own, with one 220x50 session whose pane runs the program shown.

    The socket lives in the test's tmp dir, so no other run's server can answer on it, and the
    session stays until ``close``: the next program replaces the pane's (``respawn-pane -k``).
    Killing the last session instead makes the server exit, and a ``new-session`` sent right
    after can reach the exiting server ("server exited unexpectedly", exit 1: about 3 % of calls).
    """

    def __init__(self, directory: Path, session: str = "kaskade") -> None:
        self.base = ["tmux", "-S", str(directory / "tmux.sock")]
        self.session = session
        self.started = False

    def __call__(self, *args: str) -> str:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL, timeout=30)
        if done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def show(self, command: str) -> None:
        """Run ``command`` in the pane, in place of what ran there; a program that exits stays on screen."""
        command = f"env COLUMNS=220 LINES=50 {command}"
        if self.started:
            self("respawn-pane", "-k", "-t", self.session, command)
        else:
            self("new-session", "-d", "-s", self.session, "-x", "220", "-y", "50", command,
                 ";", "set-option", "-g", "remain-on-exit", "on")
            self.started = True
        self("resize-window", "-t", self.session, "-x", "220", "-y", "50")

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", self.session, *keys)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.session)

    def wait_screen(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.5)
        raise AssertionError(f"kaskade never showed {text!r}; screen:\n{self.screen()}")

    def close(self) -> None:
        if self.started:
            subprocess.run([*self.base, "kill-server"], check=False, capture_output=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is needed to drive kaskade's text UI")
def test_kaskade_lists_the_project_topics_group_and_messages(tmp_path: Path) -> None:
    """kaskade (make kafka-ui / kafka-tail) shows the pipeline's topics, the worker's group and messages."""
    broker = PrivateKafka()
    tmux = Tmux(tmp_path)
    kaskade = str(Path(os.sys.executable).parent / "kaskade")
    settings = Settings(kafka_bootstrap_servers=broker.bootstrap)
    try:
        assert create_missing(settings, pipeline_specs(settings)) == {}
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce(settings.topic_dead_letter, key=b"BTCUSDT", value=b'{"reason": "bad frame"}')
        producer.flush(10)
        _commit(broker.bootstrap, settings.consumer_group, [TopicPartition(settings.topic_trades, 0, 0)])

        tmux.show(f"{kaskade} admin -b {broker.bootstrap}")
        screen = tmux.wait_screen(settings.topic_dead_letter)
        for topic in pipeline_topics(settings):
            assert topic in screen
        # open the trades topic and its Groups tab: the worker's consumer group is listed
        rows = [line for line in screen.splitlines() if line.startswith(" │ ") and "Partitions" not in line]
        time.sleep(1)  # let the table take the focus before keys are sent
        for _ in range(next(i for i, line in enumerate(rows) if settings.topic_trades in line)):
            tmux.keys("Down")
            time.sleep(0.3)
        tmux.keys("Enter")
        tmux.wait_screen(f"Topic Details [{settings.topic_trades}]")
        for _ in range(2):
            tmux.keys("Right")
            time.sleep(0.5)
        tmux.wait_screen(settings.consumer_group)

        tmux.show(f"{kaskade} consumer -b {broker.bootstrap} -t {settings.topic_dead_letter} "
                  "--earliest -k string -v json")
        tmux.wait_screen("BTCUSDT")
    finally:
        tmux.close()
        broker.close()
