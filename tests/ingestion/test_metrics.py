"""Ingestion's live gauges that alert rules read: open gaps, and unrepairable gaps counted from 0."""

from __future__ import annotations

import time

from ingestion.metrics import STREAMS, Idle, IngestionMetrics


class OpenGaps(Idle):
    def __init__(self, detected_us: list[int]) -> None:
        self.detected_us = detected_us

    def open_gaps_detected_us(self) -> list[int]:
        return self.detected_us


def test_open_gap_gauges_count_them_and_age_the_oldest() -> None:
    """``ingestion_gaps_open`` counts open gaps; ``ingestion_gap_oldest_open_seconds`` ages the oldest."""
    m = IngestionMetrics()
    assert m.registry.get_sample_value("ingestion_gaps_open") == 0
    assert m.registry.get_sample_value("ingestion_gap_oldest_open_seconds") == 0
    now_us = int(time.time() * 1e6)
    m.read_live(OpenGaps([now_us - 120_000_000, now_us - 5_000_000]))
    assert m.registry.get_sample_value("ingestion_gaps_open") == 2
    age = m.registry.get_sample_value("ingestion_gap_oldest_open_seconds")
    assert age is not None and 120 <= age < 130


def test_unrepairable_gap_series_exist_at_zero_from_the_start() -> None:
    """Each stream's unrepairable counter is exported at 0 before any gap, so `increase` sees the first."""
    m = IngestionMetrics()
    for stream in STREAMS:
        labels = {"stream": stream, "status": "unrepairable"}
        assert m.registry.get_sample_value("ingestion_gaps_resolved_total", labels) == 0


class Market(Idle):
    def open_gap_symbols(self) -> set[str]:
        return {"BTCUSDT", "X001USDT"}

    def captured_symbols(self) -> list[str]:
        return ["BTCUSDT", "ETHUSDT", "X001USDT"]


def test_captured_symbols_and_symbols_with_open_gaps_are_exported() -> None:
    """One ``ingestion_symbol_captured`` series per captured symbol; open-gap symbols are counted."""
    m = IngestionMetrics()
    assert m.registry.get_sample_value("ingestion_gaps_open_symbols") == 0
    assert m.registry.get_sample_value("ingestion_symbol_captured", {"symbol": "BTCUSDT"}) is None
    m.read_live(Market())
    assert m.registry.get_sample_value("ingestion_gaps_open_symbols") == 2
    for symbol in ("BTCUSDT", "ETHUSDT", "X001USDT"):
        assert m.registry.get_sample_value("ingestion_symbol_captured", {"symbol": symbol}) == 1
    assert m.registry.get_sample_value("ingestion_symbol_captured", {"symbol": "BNBUSDT"}) is None
