"""consumer.decode: every input is a row or a DecodeError; rows are exact COPY text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_pipeline.testing.events import book, gap, trade
from consumer.decode import BOOK_TICKER, GAPS, TRADES, decode, timestamp_text
from consumer.errors import DecodeError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(table=st.sampled_from([TRADES, BOOK_TICKER, GAPS]), value=st.binary(max_size=300))
def test_arbitrary_bytes_are_a_row_or_a_decode_error(table: str, value: bytes) -> None:
    """Random bytes never raise anything but DecodeError."""
    try:
        decode(table, value)
    except DecodeError as exc:
        assert exc.reason


@settings(max_examples=400, deadline=None)
@given(table=st.sampled_from([TRADES, BOOK_TICKER, GAPS]), field=st.text(max_size=15), junk=json_values)
def test_a_valid_message_with_one_field_replaced_is_a_row_or_a_decode_error(
    table: str, field: str, junk: Any
) -> None:
    """Any field set to any JSON value gives a row or DecodeError; a COPY row stays one line."""
    base = {TRADES: trade(7), BOOK_TICKER: book(7), GAPS: gap("g/1", "open")}[table]
    base[field] = junk
    try:
        row, _ = decode(table, orjson.dumps(base))
    except DecodeError:
        return
    if table != GAPS:
        assert isinstance(row, str) and row.endswith("\n") and row.count("\n") == 1
        assert "\\" not in row.replace("\\N", "")
        assert row.count("\t") == (12 if table == TRADES else 6)


def test_trade_row_keeps_decimal_text_and_microseconds() -> None:
    """Prices and quantities are copied digit for digit; times are exact to the microsecond."""
    msg = trade(
        1,
        price="67012.35000000",
        qty="0.00000001",
        trade_time=1_700_000_000_123_456,
        event_time=None,
        received_at=1_700_000_000_200_001,
        best_match=None,
    )
    row, received = decode(TRADES, orjson.dumps(msg))
    assert received == 1_700_000_000_200_001
    assert row == (
        "2023-11-14 22:13:20.123456+00\tETHUSDT\ttrade\t1\t\\N\t\\N\t67012.35000000\t0.00000001"
        "\tt\t\\N\t\\N\t2023-11-14 22:13:20.200001+00\tstream\n"
    )


def test_timestamp_text_matches_datetime() -> None:
    """The cached timestamp text equals the datetime rendering for edge values."""
    for us in (0, 1, 999_999, 1_000_000, 1_700_000_000_123_456, 253_402_300_799_999_999):
        dt = datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)
        assert timestamp_text(us) == dt.strftime("%Y-%m-%d %H:%M:%S.%f+00").rjust(29, "0")


@pytest.mark.parametrize(
    ("table", "msg", "reason"),
    [
        (TRADES, b"not json", "not JSON"),
        (TRADES, b"[1,2]", "not a JSON object"),
        (TRADES, orjson.dumps(trade(1, v=2)), "unsupported contract version"),
        (TRADES, orjson.dumps(trade(1, price=67012.35)), "field price must be a decimal string"),
        (TRADES, orjson.dumps(trade(1, price="1e5")), "field price must be a decimal string"),
        (TRADES, orjson.dumps(trade(1, symbol="BTC\tUSDT")), "field symbol"),
        (TRADES, orjson.dumps(trade(1, id=True)), "field id must be an integer"),
        (TRADES, orjson.dumps(trade(1, trade_time=-1)), "field trade_time is out of range"),
        (TRADES, orjson.dumps({k: v for k, v in trade(1).items() if k != "qty"}), "missing field qty"),
        (TRADES, orjson.dumps(book(1)), "field type must be one of trade, aggTrade"),
        (BOOK_TICKER, orjson.dumps(trade(1)), "field type must be one of bookTicker"),
        (GAPS, orjson.dumps(gap("a\\b", "open")), "field gap_id"),
        (GAPS, orjson.dumps(gap("g", "closed")), "field status"),
    ],
)
def test_invalid_messages_are_rejected_with_a_reason(table: str, msg: bytes, reason: str) -> None:
    """Malformed messages raise DecodeError naming what is wrong."""
    with pytest.raises(DecodeError) as info:
        decode(table, msg)
    assert reason in info.value.reason


def test_tombstone_is_rejected() -> None:
    """A message with no value is a DecodeError."""
    with pytest.raises(DecodeError, match="tombstone"):
        decode(TRADES, None)
