"""Pytest plugin for runs that must need no service (``make mutation``): ``-p tests.fast_only``.

A selected test whose fixtures reach the broker or the database stops the run at collection,
naming the test, so a mutation run never waits on (or provisions) a service.
"""

from __future__ import annotations

import pytest

SERVICE_FIXTURES = frozenset({"kafka_bootstrap", "database_url", "private_kafka"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse the run when a selected test needs a service."""
    needing = [item.nodeid for item in items if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))]
    if needing:
        raise pytest.UsageError("these tests need a service: " + ", ".join(needing))
