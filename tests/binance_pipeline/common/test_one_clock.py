"""One clock helper (issue 25): ``now_us``/``mono_us`` and the epoch are each defined once."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("binance_pipeline", "binance_launcher", "ingestion", "consumer", "db", "dashboard", "bench",
            "scripts", "tests", "exchange_sim")
DEFINITION = re.compile(r"^(?:def (now_us|mono_us)\(|_?(EPOCH) *=)", re.MULTILINE)


def test_the_clock_and_the_epoch_are_defined_once() -> None:
    found: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for match in DEFINITION.finditer(path.read_text("utf-8")):
                name = match.group(1) or match.group(2)
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert found == {"now_us": ["binance_pipeline/common/clock.py"],
                     "mono_us": ["binance_pipeline/common/clock.py"],
                     "EPOCH": ["binance_pipeline/common/utc.py"]}
