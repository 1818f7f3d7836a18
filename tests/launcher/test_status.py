"""The status view: rates from two metric snapshots, lag summed over partitions, latest prices shown."""

from __future__ import annotations

from datetime import UTC, datetime

from launcher.status import ComponentState, Snapshot, parse, render

INGESTION = """# TYPE ingestion_events_received counter
ingestion_events_received_total{symbol="BTCUSDT",type="trade"} %d
ingestion_events_received_total{symbol="ETHUSDT",type="trade"} 100
# TYPE ingestion_gaps_detected counter
ingestion_gaps_detected_total{symbol="BTCUSDT",stream="trade"} 2
# TYPE ingestion_gaps_resolved counter
ingestion_gaps_resolved_total{stream="trade",status="repaired"} 1
ingestion_gaps_resolved_total{stream="bookTicker",status="unrepairable"} 4
"""
WORKER = """# TYPE worker_rows_written counter
worker_rows_written_total{table="trades"} %d
# TYPE worker_consumer_lag gauge
worker_consumer_lag{topic="t",partition="0"} 7
worker_consumer_lag{topic="t",partition="1"} 3
"""


def test_render_shows_rates_gaps_lag_and_prices() -> None:
    """Rates are deltas over time; lag is summed over partitions; each symbol gets a price line."""
    prev = Snapshot(10.0, parse(INGESTION % 400), parse(WORKER % 1000))
    cur = Snapshot(12.0, parse(INGESTION % 600), parse(WORKER % 1300))
    at = datetime(2026, 1, 1, 0, 0, 1, 123456, tzinfo=UTC)
    lines = render("demo", prev, cur, [ComponentState("worker", "ready")],
                   {"BTCUSDT": ("87648.21000000", at), "ETHUSDT": None}, [])
    text = "\n".join(lines)
    assert "100 events/s" in text and "total 700" in text
    assert "150 rows/s" in text and "consumer lag 10" in text
    assert "gaps: detected 2, repaired 1, unrepairable 4" in text
    assert "BTCUSDT      87648.21000000  at 2026-01-01T00:00:01.123456+00:00" in text
    assert "ETHUSDT      no trades yet" in text
