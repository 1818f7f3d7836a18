"""Where the tests' real broker and database come from, in order of preference:

1. the endpoints in the environment (``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``);
2. testcontainers, when a Docker engine answers (Apache Kafka in KRaft mode, timescale/timescaledb);
3. the project's own local services (``scripts/services.sh up``: Apache Kafka from Maven Central
   and a private PostgreSQL 15 + TimescaleDB cluster), which is what CI and Docker-less machines use.
   Only a source checkout has them; elsewhere step 3 raises ``FileNotFoundError`` naming the variables.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

import psycopg2

from binance_pipeline.testing.brokers import kafka_local
from binance_pipeline.testing.helpers import ROOT

SERVICES = ROOT / "scripts" / "services.sh"
SERVICES_USED: dict[str, str] = {}  # "broker"/"database" -> what the session fixtures connected to


def docker_answers() -> bool:
    """True when a Docker engine responds (not merely when the client is installed)."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - no client, no engine, no permission: all mean "no Docker"
        return False
    return True


def local_services_env() -> dict[str, str]:
    """Start the local services (idempotent) and return their endpoints."""
    if not SERVICES.is_file():
        raise FileNotFoundError(f"{SERVICES} is absent: set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    subprocess.run(["bash", str(SERVICES), "up"], check=True, env=env)
    out = subprocess.run(
        ["bash", str(SERVICES), "env"], check=True, env=env, capture_output=True, text=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@contextlib.contextmanager
def kafka_endpoint() -> Iterator[tuple[str, str]]:
    """Yield (bootstrap servers, description of the broker)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"], "from KAFKA_BOOTSTRAP_SERVERS"
    elif docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:3.9.0").with_kraft() as kafka:
            yield kafka.get_bootstrap_server(), "Apache Kafka (testcontainers)"
    else:
        broker = "Tansu (LOCAL_BROKER=tansu)" if os.environ.get("LOCAL_BROKER") == "tansu" else \
            f"Apache Kafka {kafka_local().KAFKA_VERSION}"
        yield local_services_env()["KAFKA_BOOTSTRAP_SERVERS"], f"{broker} (local services)"


@contextlib.contextmanager
def database_endpoint() -> Iterator[tuple[str, str]]:
    """Yield (database URL, description of the database)."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"], "from DATABASE_URL"
    elif docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("timescale/timescaledb:latest-pg15", driver=None) as pg:
            yield pg.get_connection_url(), "timescale/timescaledb (testcontainers)"
    else:
        yield local_services_env()["DATABASE_URL"], "PostgreSQL 15 + TimescaleDB (local services)"


def describe_kafka() -> str:
    """The broker the tests will use, said before anything starts."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return f"KAFKA_BOOTSTRAP_SERVERS={os.environ['KAFKA_BOOTSTRAP_SERVERS']}"
    return "testcontainers if Docker answers, else the local services (started on first use)"


def describe_database() -> str:
    """The database the tests will use, with its versions when DATABASE_URL names it."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return "testcontainers if Docker answers, else the local services (started on first use)"
    return f"DATABASE_URL set; {timescale_versions(url)}"


def timescale_versions(url: str) -> str:
    """TimescaleDB and PostgreSQL versions of ``url`` (creating the extension if missing)."""
    try:
        conn = psycopg2.connect(url, connect_timeout=3)
    except psycopg2.Error as exc:
        return f"unreachable ({str(exc).strip().splitlines()[0]})"
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            cur.execute("SELECT extversion, current_setting('timescaledb.license'),"
                        " current_setting('server_version') FROM pg_extension WHERE extname = 'timescaledb'")
            row = cur.fetchone()
    finally:
        conn.close()
    if row is None:
        return "TimescaleDB absent"
    ts, lic, pg = row
    return f"TimescaleDB {ts} ({lic} license), PostgreSQL {pg}"
