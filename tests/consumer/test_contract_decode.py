"""consumer.decode: valid bookTicker, aggTrade and gap messages become rows, every column checked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from consumer import decode as decode_module
from consumer.decode import (
    _DECIMAL,
    _MAX_US,
    _TEXT,
    BOOK_COLUMNS,
    BOOK_TICKER,
    COPY_TABLES,
    GAP_COLUMNS,
    GAPS,
    TRADE_COLUMNS,
    TRADES,
    decode,
    timestamp_text,
    to_datetime,
)
from consumer.errors import DecodeError

LAST_US = _MAX_US - 1  # 9999-12-31 23:59:59.999999 UTC


def book(**change: Any) -> bytes:
    msg = {
        "v": 1, "type": "bookTicker", "symbol": "BTCUSDT", "update_id": 400900217,
        "bid_price": "67012.35000000", "bid_qty": "0.50000000", "ask_price": "67012.36000000",
        "ask_qty": "1.25000000", "received_at": 1_700_000_000_123_456, "source": "stream",
    }  # fmt: skip
    return orjson.dumps({**msg, **change})


def agg(**change: Any) -> bytes:
    msg = {
        "v": 1, "type": "aggTrade", "symbol": "ETHUSDT", "id": 26129, "price": "0.01633102",
        "qty": "4.70443515", "first_id": 27781, "last_id": 27783, "trade_time": 1_498_793_709_153_000,
        "event_time": 1_498_793_709_153_123, "buyer_maker": True, "best_match": False,
        "received_at": 1_498_793_709_200_000, "source": "rest",
    }  # fmt: skip
    return orjson.dumps({**msg, **change})


def gap(**change: Any) -> bytes:
    msg = {
        "v": 1, "type": "gap", "gap_id": "BTCUSDT/bookTicker/time/1000000", "symbol": "BTCUSDT",
        "stream": "bookTicker", "kind": "time", "first_id": None, "last_id": None,
        "start_time": 1_000_000, "end_time": 2_500_001, "missing": None, "reason": "reconnect",
        "status": "unrepairable", "detected_at": 3_000_000, "repaired_at": None,
    }  # fmt: skip
    return orjson.dumps({**msg, **change})


def columns(table: str, row: Any) -> dict[str, Any]:
    """A decoded row as {column: value}; COPY lines split on tabs."""
    names = {TRADES: TRADE_COLUMNS, BOOK_TICKER: BOOK_COLUMNS, GAPS: GAP_COLUMNS}[table]
    values = row[:-1].split("\t") if isinstance(row, str) else row
    return dict(zip(names, values, strict=True))


def test_book_ticker_row_has_every_column() -> None:
    """A valid bookTicker becomes one COPY line: receipt time, symbol, update id, four exact decimals."""
    row, received = decode(BOOK_TICKER, book())
    assert received == 1_700_000_000_123_456 and isinstance(row, str) and row.endswith("\n")
    assert columns(BOOK_TICKER, row) == {
        "time": "2023-11-14 22:13:20.123456+00", "symbol": "BTCUSDT", "update_id": "400900217",
        "bid_price": "67012.35000000", "bid_qty": "0.50000000", "ask_price": "67012.36000000",
        "ask_qty": "1.25000000",
    }  # fmt: skip


def test_agg_trade_row_has_ids_flags_and_both_times() -> None:
    """An aggTrade keeps first/last ids, buyer_maker t, best_match f, event and receipt times."""
    row, received = decode(TRADES, agg())
    assert received == 1_498_793_709_200_000
    assert columns(TRADES, row) == {
        "time": "2017-06-30 03:35:09.153000+00", "symbol": "ETHUSDT", "type": "aggTrade", "id": "26129",
        "first_id": "27781", "last_id": "27783", "price": "0.01633102", "qty": "4.70443515",
        "buyer_maker": "t", "best_match": "f", "event_time": "2017-06-30 03:35:09.153123+00",
        "received_at": "2017-06-30 03:35:09.200000+00", "source": "rest",
    }  # fmt: skip


def test_flags_render_both_ways() -> None:
    """buyer_maker false is f; best_match true is t; an archive source is kept."""
    row, _ = decode(TRADES, agg(buyer_maker=False, best_match=True, source="archive"))
    assert (columns(TRADES, row)["buyer_maker"], columns(TRADES, row)["best_match"]) == ("f", "t")
    assert columns(TRADES, row)["source"] == "archive"


def test_time_gap_row_has_every_column() -> None:
    """A time gap's window, detection and status become the gaps row, times as UTC datetimes."""
    row, detected = decode(GAPS, gap())
    assert detected == 3_000_000
    assert columns(GAPS, row) == {
        "gap_id": "BTCUSDT/bookTicker/time/1000000", "symbol": "BTCUSDT", "stream": "bookTicker",
        "kind": "time", "first_id": None, "last_id": None,
        "start_time": datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        "end_time": datetime(1970, 1, 1, 0, 0, 2, 500001, tzinfo=UTC), "missing": None,
        "reason": "reconnect", "status": "unrepairable",
        "detected_at": datetime(1970, 1, 1, 0, 0, 3, tzinfo=UTC), "repaired_at": None,
    }  # fmt: skip


def test_repaired_id_gap_row() -> None:
    """An id gap keeps ids and count; repaired_at becomes a datetime."""
    row, _ = decode(
        GAPS,
        gap(
            kind="ids",
            stream="trade",
            first_id=5,
            last_id=9,
            missing=5,
            start_time=None,
            end_time=None,
            status="repaired",
            repaired_at=4_000_000,
        ),
    )
    got = columns(GAPS, row)
    assert (got["first_id"], got["last_id"], got["missing"], got["start_time"]) == (5, 9, 5, None)
    assert got["repaired_at"] == datetime(1970, 1, 1, 0, 0, 4, tzinfo=UTC) and got["status"] == "repaired"


@pytest.mark.parametrize("us", [0, LAST_US])
def test_the_first_and_last_representable_microsecond_are_times(us: int) -> None:
    """0 (1970-01-01) and _MAX_US - 1 (9999-12-31 23:59:59.999999) are accepted in every time field."""
    row, _ = decode(TRADES, agg(trade_time=us, event_time=us, received_at=us))
    text = "1970-01-01 00:00:00.000000+00" if us == 0 else "9999-12-31 23:59:59.999999+00"
    assert columns(TRADES, row)["time"] == columns(TRADES, row)["event_time"] == text
    assert decode(BOOK_TICKER, book(received_at=us))[1] == us
    gap_row, _ = decode(GAPS, gap(start_time=us, end_time=us, detected_at=us, repaired_at=us))
    assert gap_row[6] == gap_row[7] == gap_row[11] == gap_row[12] == to_datetime(us)


@pytest.mark.parametrize("field", ["trade_time", "event_time", "received_at"])
@pytest.mark.parametrize("us", [-1, _MAX_US])
def test_times_outside_the_range_are_refused(field: str, us: int) -> None:
    """-1 and _MAX_US (year 10000) are out of range, naming the field."""
    with pytest.raises(DecodeError, match=f"field {field} is out of range"):
        decode(TRADES, agg(**{field: us}))


@pytest.mark.parametrize("field", ["start_time", "end_time", "detected_at", "repaired_at"])
def test_gap_times_outside_the_range_are_refused(field: str) -> None:
    """A gap time of _MAX_US is refused naming the field."""
    with pytest.raises(DecodeError, match=f"field {field} is out of range"):
        decode(GAPS, gap(**{field: _MAX_US}))


@pytest.mark.parametrize("value", ["false", "true", 0, 1, "t"])
def test_best_match_is_a_boolean_or_null_never_a_string(value: Any) -> None:
    """Null is allowed for best_match; a string or a number is not (nullable means null only)."""
    with pytest.raises(DecodeError, match="field best_match must be a boolean or null"):
        decode(TRADES, agg(best_match=value))


@pytest.mark.parametrize("value", [None, "false", 0])
def test_buyer_maker_is_never_null(value: Any) -> None:
    """buyer_maker must be a boolean: null, a string or a number is refused."""
    with pytest.raises(DecodeError, match=r"^field buyer_maker must be a boolean$"):
        decode(TRADES, agg(buyer_maker=value))


@pytest.mark.parametrize(
    ("table", "message", "reason"),
    [
        (BOOK_TICKER, book(update_id="1"), "field update_id must be an integer"),
        (BOOK_TICKER, book(ask_qty="1,5"), "field ask_qty must be a decimal string"),
        (BOOK_TICKER, book(symbol=5), "field symbol must be a string"),
        (BOOK_TICKER, book(symbol="btcusdt"), "field symbol must match"),
        (BOOK_TICKER, book(v=True), "unsupported contract version True"),
        (BOOK_TICKER, book(v=None), "unsupported contract version None"),
        (TRADES, agg(first_id="1"), "field first_id must be an integer or null"),
        (TRADES, agg(type=["aggTrade"]), "field type must be one of trade, aggTrade"),
        (TRADES, agg(source="ws"), "field source must be one of stream, rest, archive"),
        (TRADES, agg(received_at=None), "field received_at must be an integer"),
        (GAPS, gap(kind="window"), "field kind must be one of ids, time"),
        (GAPS, gap(stream="depth"), "field stream must be one of trade, aggTrade, bookTicker"),
        (GAPS, gap(reason=""), "field reason must be 1-200 printable ASCII characters"),
        (GAPS, gap(missing=1.5), "field missing must be an integer or null"),
    ],
)
def test_each_bad_field_is_named(table: str, message: bytes, reason: str) -> None:
    """A wrong field of a valid message is refused with a reason naming that field."""
    with pytest.raises(DecodeError) as info:
        decode(table, message)
    assert info.value.reason.startswith(reason)


def test_a_valid_symbol_is_accepted_again_from_the_cache() -> None:
    """The same symbol decodes twice (second time from the known-symbols set)."""
    assert decode(BOOK_TICKER, book(symbol="XRPUSDT"))[0] == decode(BOOK_TICKER, book(symbol="XRPUSDT"))[0]


@pytest.mark.parametrize("text", ["0", "-1", "123.456", "1" * 40 + "." + "9" * 40, "-0.0"])
def test_decimal_pattern_accepts_plain_decimals(text: str) -> None:
    """Up to 40 digits before and after the point, optional minus."""
    assert _DECIMAL.fullmatch(text)


@pytest.mark.parametrize("text", ["", ".5", "5.", "+1", "1e5", "1" * 41, "0." + "1" * 41, " 1", "1_0", "NaN"])
def test_decimal_pattern_refuses_everything_else(text: str) -> None:
    """No exponent, sign '+', blanks, empty parts or more than 40 digits on a side."""
    assert not _DECIMAL.fullmatch(text)


def test_text_pattern_is_printable_ascii_without_backslash_up_to_200() -> None:
    """Space to tilde except backslash, 1 to 200 characters; tab, newline, non-ASCII refused."""
    assert _TEXT.fullmatch(" ~[]") and _TEXT.fullmatch("x" * 200)
    for bad in ("", "x" * 201, "a\\b", "a\tb", "a\nb", "é", "\x7f"):
        assert not _TEXT.fullmatch(bad)


def test_the_copy_tables_and_column_orders() -> None:
    """trades and book_ticker are COPY tables; their column orders are the sink's."""
    assert COPY_TABLES == (TRADES, BOOK_TICKER) == ("trades", "book_ticker") and GAPS == "gaps"
    assert BOOK_COLUMNS == ("time", "symbol", "update_id", "bid_price", "bid_qty", "ask_price", "ask_qty")
    assert TRADE_COLUMNS[:4] == ("time", "symbol", "type", "id") and len(TRADE_COLUMNS) == 13
    assert GAP_COLUMNS[0] == "gap_id" and len(GAP_COLUMNS) == 13
    assert _MAX_US == int((datetime(10000 - 1, 12, 31, tzinfo=UTC).timestamp() + 86400) * 1_000_000)


def test_to_datetime_of_none_is_none() -> None:
    """A null time stays null."""
    assert to_datetime(None) is None


@pytest.mark.parametrize(
    ("table", "value", "reason"),
    [
        (TRADES, None, "empty message value (tombstone)"),
        (TRADES, b"[1]", "not a JSON object"),
        (BOOK_TICKER, book(symbol="btcusdt"), "field symbol must match [A-Z0-9]{2,20}"),
    ],
)
def test_whole_reasons_of_envelope_rejections(table: str, value: bytes | None, reason: str) -> None:
    """Tombstones, non-objects and bad symbols carry these exact reasons into the dead-letter header."""
    with pytest.raises(DecodeError) as info:
        decode(table, value)
    assert info.value.reason == reason


def test_timestamp_text_is_right_on_a_cache_miss_and_on_a_hit() -> None:
    """The per-second prefix cache never changes the text: first rendering and cached one agree."""
    decode_module._SECOND_CACHE.clear()
    first = [timestamp_text(us) for us in (0, 86_399_999_999, 951_782_400_000_001, LAST_US)]
    again = [timestamp_text(us) for us in (0, 86_399_999_999, 951_782_400_000_001, LAST_US)]
    assert first == again == [
        "1970-01-01 00:00:00.000000+00", "1970-01-01 23:59:59.999999+00",
        "2000-02-29 00:00:00.000001+00", "9999-12-31 23:59:59.999999+00",
    ]  # fmt: skip


def test_a_reason_is_at_most_200_characters() -> None:
    """A reason quoting a long bad value is cut at 200 characters (it goes into a Kafka header)."""
    with pytest.raises(DecodeError) as info:
        decode(TRADES, agg(v="9" * 500))
    assert info.value.reason == ("unsupported contract version '" + "9" * 500)[:200]
