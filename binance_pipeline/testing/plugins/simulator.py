"""Pytest plugin: ``sim``, a factory of exchange simulators (``python -m exchange_sim``) on free
loopback ports; each is stopped by its PID when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from exchange_sim.testing import SimProcess, start_simulator


@pytest.fixture
def sim() -> Iterator[Callable[..., SimProcess]]:
    """``sim(*args)`` starts a simulator with the CLI's arguments (``"--symbols", "BTCUSDT"``)."""
    started: list[SimProcess] = []

    def start(*args: str) -> SimProcess:
        process = start_simulator(*args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
