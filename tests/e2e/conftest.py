"""End-to-end tests take their pipeline from the kit's ``stages`` plugin (``pipeline``,
``running_pipeline``); this module only says where the recorded market data lives."""

from __future__ import annotations

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
