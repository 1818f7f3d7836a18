"""Pytest plugin (loaded by ``broker`` and ``database``): the services a session actually used,
under "services used" in the terminal summary. The fixtures write into ``SERVICES_USED``."""

from __future__ import annotations

import pytest

from binance_pipeline.testing.services import SERVICES_USED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The services this session connected to (nothing when no test needed one)."""
    if SERVICES_USED:
        terminalreporter.section("services used")
        for name, what in SERVICES_USED.items():
            terminalreporter.write_line(f"{name}: {what}")
