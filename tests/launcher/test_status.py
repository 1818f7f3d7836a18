"""The status view: rates from two metric snapshots, lag summed over partitions, latest prices shown."""

from __future__ import annotations

from datetime import UTC, datetime

from binance_launcher.status import (
    GAPS_OPEN_SYMBOLS,
    ComponentState,
    Listings,
    Snapshot,
    busiest,
    captured,
    last_error_line,
    market_lines,
    parse,
    render,
    stuck_notice,
    symbol_rates,
    total,
)

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
                   {"BTCUSDT": ("87648.21000000", at, "aggTrade"), "ETHUSDT": None}, [])
    text = "\n".join(lines)
    assert "100 events/s" in text and "total 700" in text
    assert "150 rows/s" in text and "consumer lag 10" in text
    assert "gaps: detected 2, repaired 1, unrepairable 4" in text
    assert "BTCUSDT      87648.21000000  at 2026-01-01T00:00:01.123456Z  (aggTrade)" in text
    assert "+00:00" not in text
    assert "ETHUSDT      no trades yet" in text


def test_last_error_line_is_the_latest_problem() -> None:
    """The last ERROR/WARNING/exception line of a log is picked; a clean log gives None."""
    log = "\n".join([
        "2026-01-01T00:00:00.000Z INFO ingestion.ws_consumer starting",
        "2026-01-01T00:00:01.000Z WARNING ingestion.connection s0c1: connect failed: ConnectionRefusedError",
        "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 33203)",
        "2026-01-01T00:00:02.000Z INFO ingestion.connection s0c1: retrying in 1.2 s",
    ])
    refused = "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 33203)"
    assert last_error_line(log) == refused
    assert last_error_line("2026-01-01T00:00:00.000Z INFO all good\n") is None
    assert last_error_line("x ERROR " + "y" * 500, width=20) == "x ERROR yyyyyyyyy..."


def test_stuck_notice_names_component_error_and_log() -> None:
    """A stuck component's notice names it, how long, the error line and where its log is."""
    text = stuck_notice("ingestion", 7.2, "/x/ingestion.log", "ConnectionRefusedError: x")
    assert text == "ingestion not ready for 7 s; last error in its log: ConnectionRefusedError: x " \
                   "(log: /x/ingestion.log)"
    assert "no error line" in stuck_notice("worker", 6, "/l", None)


MARKET = """# TYPE ingestion_events_received counter
ingestion_events_received_total{symbol="BTCUSDT",type="trade"} %d
ingestion_events_received_total{symbol="ETHUSDT",type="trade"} %d
ingestion_events_received_total{symbol="X001USDT",type="bookTicker"} 5
# TYPE ingestion_symbol_captured gauge
ingestion_symbol_captured{symbol="BTCUSDT"} 1
ingestion_symbol_captured{symbol="ETHUSDT"} 1
ingestion_symbol_captured{symbol="X001USDT"} 1
%s
# TYPE ingestion_gaps_open_symbols gauge
ingestion_gaps_open_symbols 1
"""


def test_market_view_shows_counts_listings_the_busiest_and_a_total() -> None:
    """With patterns: captured count, open-gap symbols, listings since start, busiest by rate, total."""
    listings = Listings()
    prev = Snapshot(10.0, parse(MARKET % (100, 100, "")))
    assert captured(prev.ingestion) == ["BTCUSDT", "ETHUSDT", "X001USDT"]
    assert listings.since_start(captured(prev.ingestion)) == ([], [])
    cur = Snapshot(12.0, parse(MARKET % (120, 160, 'ingestion_symbol_captured{symbol="NEWUSDT"} 1')))
    symbols = captured(cur.ingestion)
    rates = symbol_rates(prev, cur)
    assert rates == {"BTCUSDT": 10.0, "ETHUSDT": 30.0, "X001USDT": 0.0}
    top = busiest(rates, symbols, 2)
    assert top == [("ETHUSDT", 30.0), ("BTCUSDT", 10.0)]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    lines = market_lines(("*USDT",), symbols, total(cur.ingestion, GAPS_OPEN_SYMBOLS),
                         listings.since_start(symbols), top, sum(rates.values()),
                         {"ETHUSDT": ("3500.00000000", at, "trade"), "BTCUSDT": None})  # fmt: skip
    assert lines[0] == "symbols: 4 captured (SYMBOLS *USDT), 1 with open gaps; since start: +1 NEWUSDT"
    assert lines[1] == "busiest 2 of 4 by events/s, with the latest trade in the database:"
    assert lines[2].split() == ["ETHUSDT", "30.0/s", "3500.00000000", "at", "2026-01-01T00:00:00.000000Z",
                                "(trade)"]  # fmt: skip
    assert lines[3].split()[:2] == ["BTCUSDT", "10.0/s"] and lines[3].endswith("no trades yet")
    assert lines[4].split() == ["total", "40.0/s", "over", "4", "symbols"]
    view = render("demo", prev, cur, [], {}, [], ["self-audit ..."], lines)
    assert "latest trade in the database:" not in view and view[-1] == "self-audit ..."
    assert symbol_rates(None, cur) == {}
