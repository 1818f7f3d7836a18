"""The suite's services and fixtures come from the test kit's plugins (binance_pipeline/testing/plugins):
a session broker and database, per-test topics and schemas, simulators, the stages and a running
pipeline. What stays here is the suite's own: the figures tests measure.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytest_plugins = [
    "binance_pipeline.testing.plugins.broker",
    "binance_pipeline.testing.plugins.database",
    "binance_pipeline.testing.plugins.simulator",
    "binance_pipeline.testing.plugins.stages",
]

FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures tests measured."""
    if FIGURES:
        terminalreporter.section("figures measured")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str, float, str], None]:
    """Report a measured figure: shown under 'figures measured' and kept as a JUnit property."""

    def record(name: str, value: float, unit: str) -> None:
        FIGURES.append(f"{request.node.nodeid}: {name} = {value:.3f} {unit}")
        request.node.user_properties.append((name, value))

    return record
