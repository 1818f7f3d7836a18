"""dashboard.display: computed figures as a reader expects them, exact inputs kept (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from dashboard.display import OVERVIEW_COLUMNS, notional_text, overview_rows, places, statements_text
from db.service.results import Market

D = Decimal


def test_places_counts_the_decimals_as_written() -> None:
    """8 for Binance's padded prices, 0 for a whole number, trailing zeros counted."""
    assert [places(D(t)) for t in ("67005.10000000", "0.00001000", "42", "1E+2", "3.5")] == [8, 8, 0, 0, 1]


def test_a_notional_is_shown_at_the_quote_precision() -> None:
    """The issue's 16-decimal notional shows at the price's 8 decimals, half to even, grouped."""
    price, qty = D("103001.76352360"), D("1.00000000")
    assert str(price * qty) == "103001.7635236000000000"
    assert notional_text(price * qty, price) == "103,001.76352360"
    assert notional_text(D("167512.7500000000000000"), D("67005.10000000")) == "167,512.75000000"
    assert notional_text(D("2.125"), D("1.00")) == "2.12" and notional_text(D("2.135"), D("1.00")) == "2.14"
    assert notional_text(D("1234567.5"), D("7")) == "1,234,568"


def test_overview_rows_keep_the_order_and_exact_prices() -> None:
    """One row per symbol in the given order; a symbol without trades shows dashes."""
    t = datetime(2024, 3, 1, 12, 0, 5, 250_000, tzinfo=UTC)
    rows = overview_rows([Market("BTCUSDT", 7, 1, 2, 0, "open gaps", t, 9, D("67012.34000000")),
                          Market("ETHUSDT", 0, 0, 0, 0, "complete", None, None, None)])
    assert [tuple(row) for row in rows] == [OVERVIEW_COLUMNS] * 2
    assert list(rows[0].values()) == [
        "BTCUSDT", 7, "open gaps", 1, 2, 0, "67012.34000000", "2024-03-01 12:00:05"]
    assert list(rows[1].values()) == ["ETHUSDT", 0, "complete", 0, 0, 0, "-", "-"]
    assert statements_text(1) == "database statements in this refresh: 1"
