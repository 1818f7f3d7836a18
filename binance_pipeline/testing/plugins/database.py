"""Pytest plugin: a real PostgreSQL + TimescaleDB database for the session, and per-test schemas.

Every test gets a schema of its own (dropped when it ends), so tests never see each other's rows.
A test that stops the database asks for ``private_pg`` instead, never the shared one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from binance_pipeline.testing.databases import PrivatePostgres
from binance_pipeline.testing.helpers import create_schema, drop_schemas
from binance_pipeline.testing.services import (
    SERVICES_USED,
    database_endpoint,
    describe_database,
    timescale_versions,
)

pytest_plugins = ["binance_pipeline.testing.plugins.report"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "database: uses the real TimescaleDB (set on every test that asks for database_url)")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Where the database comes from (and its versions when DATABASE_URL names it)."""
    return [f"database: {describe_database()}"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test whose fixtures reach the database (``-m "not database"`` runs without one)."""
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.database)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of a real PostgreSQL + TimescaleDB database for the whole session (no broker needed)."""
    with database_endpoint() as (url, what):
        SERVICES_USED["database"] = f"{what}; {timescale_versions(url)}"
        yield url


@pytest.fixture
def schema_factory(database_url: str) -> Iterator[Callable[[], str]]:
    """Make fresh schemas; returns a database URL whose search_path starts with the new one."""
    made: list[str] = []

    def make() -> str:
        name, url = create_schema(database_url)
        made.append(name)
        return url

    yield make
    drop_schemas(database_url, made)


@pytest.fixture
def db_url(schema_factory: Callable[[], str]) -> str:
    """A database URL on a fresh, empty schema of this test's own."""
    return schema_factory()


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL + TimescaleDB cluster the test may stop and start; removed at the end."""
    pg = PrivatePostgres()
    try:
        pg.init()
        yield pg
    finally:
        pg.destroy()
