"""Pytest plugin for runs that need no service: ``-p tests.fast_only``.

By default a selected test whose fixtures reach the broker or the database stops the run at
collection, naming the test, so a mutation run (``make mutation``) never waits on or
provisions a service. With ``--no-services`` such tests are deselected instead, which runs
the fast suite: ``pytest -p tests.fast_only --no-services -m "not slow"``.
"""

from __future__ import annotations

import pytest

SERVICE_FIXTURES = frozenset({"kafka_bootstrap", "database_url", "private_kafka"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-services", action="store_true", help="deselect tests that need the broker or the database"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse the run (or, with --no-services, deselect the tests) when a test needs a service."""
    needing = [item for item in items if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))]
    if not needing:
        return
    if not config.getoption("--no-services"):
        raise pytest.UsageError("these tests need a service: " + ", ".join(i.nodeid for i in needing))
    config.hook.pytest_deselected(items=needing)
    items[:] = [item for item in items if item not in needing]
