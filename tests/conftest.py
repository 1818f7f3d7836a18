"""Session-scoped real services and per-test factories (topics, database schemas).

Every test gets its own topics and its own database schema, so tests never see each
other's data; both are removed when the test ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import psycopg2
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from exchange_sim.testing import SimProcess, start_simulator
from tests.databases import PrivatePostgres
from tests.services import (
    database_endpoint,
    describe_database,
    describe_kafka,
    kafka_endpoint,
    timescale_versions,
)

SERVICES_USED: dict[str, str] = {}  # what the session fixtures connected to, for the summary


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Where the broker and the database come from (and their versions when given by env)."""
    return [f"broker: {describe_kafka()}", f"database: {describe_database()}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The services this session actually used, and the figures tests measured."""
    if SERVICES_USED:
        terminalreporter.section("services used")
        for name, what in SERVICES_USED.items():
            terminalreporter.write_line(f"{name}: {what}")
    if FIGURES:
        terminalreporter.section("figures measured")
        for line in FIGURES:
            terminalreporter.write_line(line)


FIGURES: list[str] = []


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str, float, str], None]:
    """Report a measured figure: shown under 'figures measured' and kept as a JUnit property."""

    def record(name: str, value: float, unit: str) -> None:
        FIGURES.append(f"{request.node.nodeid}: {name} = {value:.3f} {unit}")
        request.node.user_properties.append((name, value))

    return record


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the services its fixtures need (``-m "not kafka"`` runs without a broker)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "kafka_bootstrap" in names:
            item.add_marker(pytest.mark.kafka)
        if "database_url" in names:
            item.add_marker(pytest.mark.database)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka-protocol broker for the whole session."""
    with kafka_endpoint() as (bootstrap, what):
        SERVICES_USED["broker"] = f"{what} at {bootstrap}"
        yield bootstrap


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of a real PostgreSQL + TimescaleDB database for the whole session (no broker needed)."""
    with database_endpoint() as (url, what):
        SERVICES_USED["database"] = f"{what}; {timescale_versions(url)}"
        yield url


def url_with_schema(url: str, schema: str) -> str:
    """The same database URL with search_path set to ``schema`` first, then public."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema},public')}"


@pytest.fixture
def schema_factory(database_url: str) -> Iterator[Callable[[], str]]:
    """Make fresh schemas; returns a database URL whose search_path starts with the new one."""
    made: list[str] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(database_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {name}")
        conn.close()
        made.append(name)
        return url_with_schema(database_url, name)

    yield make
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in made:
            cur.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    conn.close()


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL + TimescaleDB cluster the test may stop and start; removed at the end."""
    pg = PrivatePostgres()
    try:
        pg.init()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def db_url(schema_factory: Callable[[], str]) -> str:
    """A database URL on a fresh, empty schema of this test's own."""
    return schema_factory()


@dataclass
class Topics:
    """The topic names of one test (the four pipeline topics and ingestion's frontier)."""

    trades: str
    book_ticker: str
    gaps: str
    dead_letter: str
    partitions: int = 3
    frontier: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            "TOPIC_TRADES": self.trades,
            "TOPIC_BOOK_TICKER": self.book_ticker,
            "TOPIC_GAPS": self.gaps,
            "TOPIC_DEAD_LETTER": self.dead_letter,
            "TOPIC_PARTITIONS": str(self.partitions),
            **({"TOPIC_FRONTIER": self.frontier} if self.frontier else {}),
        }


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics (``partitions`` each); deleted when the test ends."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    made: list[str] = []

    def make(prefix: str = "t", partitions: int = 3, create: bool = True) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        if create:
            futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=-1)])
            futures[name].result(timeout=30)
        made.append(name)
        return name

    yield make
    if made:
        for fut in admin.delete_topics(made, operation_timeout=10).values():
            try:
                fut.result(timeout=30)
            except Exception:  # noqa: S110 - topics a test never created, or already gone
                pass


@pytest.fixture
def topics(topic_factory: Callable[..., str]) -> Topics:
    """Names for a fresh set of pipeline topics; created by whichever stage starts first."""
    tag = uuid.uuid4().hex[:8]
    return Topics(
        trades=topic_factory(f"trades-{tag}", create=False),
        book_ticker=topic_factory(f"book-{tag}", create=False),
        gaps=topic_factory(f"gaps-{tag}", create=False),
        dead_letter=topic_factory(f"dlq-{tag}", create=False),
        frontier=topic_factory(f"frontier-{tag}", create=False),
    )


@pytest.fixture
def consumer_group() -> str:
    """A consumer group id of this test's own."""
    return f"g-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def sim() -> Iterator[Callable[..., SimProcess]]:
    """Factory starting exchange simulators; all are stopped afterwards."""
    started: list[SimProcess] = []

    def start(*args: str) -> SimProcess:
        process = start_simulator(*args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
