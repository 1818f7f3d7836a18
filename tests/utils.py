"""The suite's own file lookups: recorded market data beside the checkout. Waits, ports, readers and
database counts are the test kit's (binance_pipeline/testing/helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data_file(name: str) -> Path | None:
    """``name`` in the recorded-data folder, or None: $SHARED_DATA_DIR, else ``shared/data`` beside
    any folder above the tests (../shared/data next to the checkout, main or a worktree)."""
    folders = [Path(os.environ["SHARED_DATA_DIR"])] if os.environ.get("SHARED_DATA_DIR") else []
    folders += [p / "shared" / "data" for p in Path(__file__).resolve().parents]
    return next((f / name for f in folders if (f / name).is_file()), None)


def shared_data_or_skip(name: str) -> Path:
    """``shared_data_file(name)``, or skip the test that needs it when it is absent."""
    found = shared_data_file(name)
    if found is None:
        pytest.skip(f"{name} not found in $SHARED_DATA_DIR or ../shared/data")
    return found
