"""ingestion.fastpath: each checker's edges (times, ids, patterns), one value at a time."""

from __future__ import annotations

from typing import Any

import pytest

from ingestion.fastpath import CHECKERS, TIME_BELOW, agg_trade, book_ticker, trade
from ingestion.models import MAX_ID, MS_BELOW

T_US = 1_700_000_000_123_456
TRADE = {
    "e": "trade",
    "E": T_US,
    "s": "BTCUSDT",
    "t": 1,
    "p": "1.5",
    "q": "2",
    "T": T_US,
    "m": True,
    "M": True,
}
AGG = {"e": "aggTrade", "E": T_US, "s": "BTCUSDT", "a": 1, "p": "1.5", "q": "2", "f": 3, "l": 4, "T": T_US,
       "m": False, "M": None}  # fmt: skip
BOOK = {"u": 1, "s": "BTCUSDT", "b": "1.0", "B": "2.0", "a": "3.0", "A": "4.0"}


def test_one_checker_per_hot_payload() -> None:
    """trade, aggTrade and bookTicker have checkers; nothing else does."""
    assert CHECKERS == {"trade": trade, "aggTrade": agg_trade, "bookTicker": book_ticker}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (1, 1000),
        (MS_BELOW - 1, (MS_BELOW - 1) * 1000),
        (MS_BELOW, MS_BELOW),
        (TIME_BELOW - 1, TIME_BELOW - 1),
    ],
)
def test_times_below_ms_below_are_milliseconds(given: int, expected: int) -> None:
    """1 .. 10**14 - 1 are milliseconds (times 1000); 10**14 .. 10**17 - 1 are microseconds."""
    msg = trade({**TRADE, "E": given, "T": given}, 0)
    assert msg is not None and (msg["event_time"], msg["trade_time"]) == (expected, expected)


@pytest.mark.parametrize("value", [0, -1, TIME_BELOW, True, 1.0, "1", None])
@pytest.mark.parametrize("field", ["E", "T"])
def test_times_outside_the_model_range_are_declined(field: str, value: Any) -> None:
    """0, negatives, 10**17 and non-integers are left to the model (None)."""
    assert TIME_BELOW == 10**17
    assert trade({**TRADE, field: value}, 0) is None and agg_trade({**AGG, field: value}, 0) is None


def test_id_edges() -> None:
    """Ids run 0 .. 2**63 - 1; first/last ids may also be -1 (the aggTrade anomaly)."""
    assert trade({**TRADE, "t": 0}, 0) is not None and trade({**TRADE, "t": MAX_ID}, 0) is not None
    assert book_ticker({**BOOK, "u": 0}, 0) is not None and book_ticker({**BOOK, "u": MAX_ID}, 0) is not None
    ok = agg_trade({**AGG, "a": MAX_ID, "f": -1, "l": MAX_ID}, 0)
    assert ok is not None and (ok["id"], ok["first_id"], ok["last_id"]) == (MAX_ID, -1, MAX_ID)
    assert agg_trade({**AGG, "f": MAX_ID, "l": -1}, 0) is not None


@pytest.mark.parametrize("value", [-1, MAX_ID + 1, True, "1", 1.0, None])
def test_bad_ids_are_declined(value: Any) -> None:
    """An id below 0, above 2**63 - 1, a bool, a string or a float is left to the model."""
    assert trade({**TRADE, "t": value}, 0) is None
    assert agg_trade({**AGG, "a": value}, 0) is None
    assert book_ticker({**BOOK, "u": value}, 0) is None


@pytest.mark.parametrize("field", ["f", "l"])
@pytest.mark.parametrize("value", [-2, MAX_ID + 1, False, "3", None])
def test_bad_trade_refs_are_declined(field: str, value: Any) -> None:
    """first/last ids below -1, above 2**63 - 1 or not integers are left to the model."""
    assert agg_trade({**AGG, field: value}, 0) is None


@pytest.mark.parametrize("value", ["1.5\n", "-1", "1e5", "", ".5", 1.5, None, "1" * 41])
@pytest.mark.parametrize("field", ["p", "q"])
def test_bad_decimals_in_trades_are_declined(field: str, value: Any) -> None:
    """Prices and quantities must match the model's pattern on the whole string (no final newline)."""
    assert trade({**TRADE, field: value}, 0) is None and agg_trade({**AGG, field: value}, 0) is None


@pytest.mark.parametrize("field", ["b", "B", "a", "A"])
def test_bad_decimals_in_book_tickers_are_declined(field: str) -> None:
    """Each of the four book decimals is checked."""
    assert book_ticker({**BOOK, field: "1.0\n"}, 0) is None and book_ticker({**BOOK, field: 1}, 0) is None


@pytest.mark.parametrize("value", ["btcusdt", "B", "BTCUSDT\n", "A" * 21, 5, None])
def test_bad_symbols_are_declined(value: Any) -> None:
    """The symbol must be 2-20 of A-Z 0-9 on the whole string, and a string."""
    assert trade({**TRADE, "s": value}, 0) is None
    assert agg_trade({**AGG, "s": value}, 0) is None
    assert book_ticker({**BOOK, "s": value}, 0) is None


def test_flags_are_strict_booleans() -> None:
    """m must be a bool; M may be missing or null but otherwise must be a bool."""
    assert trade({**TRADE, "m": 1}, 0) is None and trade({**TRADE, "m": None}, 0) is None
    assert trade({**TRADE, "M": "true"}, 0) is None and agg_trade({**AGG, "M": 0}, 0) is None
    without_m = {k: v for k, v in TRADE.items() if k != "M"}
    msg = trade(without_m, 0)
    assert msg is not None and msg["best_match"] is None
    msg = agg_trade({**AGG, "M": True}, 0)
    assert msg is not None and msg["best_match"] is True and msg["buyer_maker"] is False


def test_symbol_edges_are_accepted() -> None:
    """2 and 20 characters are valid symbols."""
    assert book_ticker({**BOOK, "s": "AB"}, 0) is not None
    assert book_ticker({**BOOK, "s": "A" * 20}, 0) is not None


@pytest.mark.parametrize("field", ["p", "q"])
def test_a_trade_with_a_zero_price_or_quantity_is_declined(field: str) -> None:
    """Either a zero price or a zero quantity alone is enough to leave a trade to the model."""
    assert trade({**TRADE, field: "0.00000000"}, 0) is None
    assert agg_trade({**AGG, field: "0"}, 0) is None


def test_the_zero_price_anomaly_needs_both_first_and_last_id_at_minus_one() -> None:
    """An aggTrade of zero price and quantity passes only with f = l = -1 (models Rule 4)."""
    zero = {**AGG, "p": "0", "q": "0.0"}
    msg = agg_trade({**zero, "f": -1, "l": -1}, 0)
    assert msg is not None
    assert (msg["price"], msg["qty"], msg["first_id"], msg["last_id"]) == ("0", "0.0", -1, -1)
    assert agg_trade({**zero, "f": -1, "l": 4}, 0) is None and agg_trade({**zero, "f": 3, "l": -1}, 0) is None
