"""ingestion.parse: exact messages from both validation paths, REST row shape, frame-size edge."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from ingestion.errors import ParseError
from ingestion.parse import (
    MAX_FRAME_BYTES,
    SHUTDOWN_STREAM,
    Shutdown,
    decode_frame,
    describe,
    parse_frame,
    parse_rest_rows,
)

T_US = 1_700_000_000_123_456
AGG = {"e": "aggTrade", "E": T_US + 1, "s": "ETHUSDT", "a": 26129, "p": "0.01633102", "q": "4.70443515",
       "f": 27781, "l": 27783, "T": T_US, "m": True, "M": False}  # fmt: skip
BOOK = {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000", "a": "25.36520000",
        "A": "40.66000000"}  # fmt: skip
TRADE = {"e": "trade", "E": T_US + 2, "s": "BTCUSDT", "t": 12345, "p": "67012.35000000", "q": "0.00100000",
         "T": T_US, "m": False}  # fmt: skip


def combined(stream: str, data: Any) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


@pytest.mark.parametrize("fast", [True, False])
def test_agg_trade_message_is_exact_on_both_paths(fast: bool) -> None:
    """The fast path and the model path build the same aggTrade message, key for key."""
    assert parse_frame(combined("ethusdt@aggTrade", AGG), 77, fast=fast) == {
        "v": 1, "type": "aggTrade", "symbol": "ETHUSDT", "id": 26129, "price": "0.01633102",
        "qty": "4.70443515", "first_id": 27781, "last_id": 27783, "trade_time": T_US,
        "event_time": T_US + 1, "buyer_maker": True, "best_match": False, "received_at": 77,
        "source": "stream",
    }  # fmt: skip


@pytest.mark.parametrize("fast", [True, False])
def test_book_ticker_message_is_exact_on_both_paths(fast: bool) -> None:
    """A bookTicker becomes update id, four decimal strings and the receipt time."""
    assert parse_frame(combined("bnbusdt@bookTicker", BOOK), 78, fast=fast) == {
        "v": 1, "type": "bookTicker", "symbol": "BNBUSDT", "update_id": 400900217,
        "bid_price": "25.35190000", "bid_qty": "31.21000000", "ask_price": "25.36520000",
        "ask_qty": "40.66000000", "received_at": 78, "source": "stream",
    }  # fmt: skip


@pytest.mark.parametrize("fast", [True, False])
def test_trade_without_best_match_is_exact_on_both_paths(fast: bool) -> None:
    """A trade with no M field has best_match null; ids stay null for a plain trade."""
    assert parse_frame(combined("btcusdt@trade", TRADE), 79, fast=fast) == {
        "v": 1, "type": "trade", "symbol": "BTCUSDT", "id": 12345, "price": "67012.35000000",
        "qty": "0.00100000", "first_id": None, "last_id": None, "trade_time": T_US,
        "event_time": T_US + 2, "buyer_maker": False, "best_match": None, "received_at": 79,
        "source": "stream",
    }  # fmt: skip


def test_a_raw_payload_needs_no_envelope() -> None:
    """Without an envelope the payload's own e (or bookTicker's shape) decides its type."""
    msg = parse_frame(orjson.dumps(AGG), 1, fast=False)
    assert isinstance(msg, dict) and msg["type"] == "aggTrade" and msg["symbol"] == "ETHUSDT"
    assert parse_frame(orjson.dumps({"e": "serverShutdown", "E": 5}), 1) == Shutdown(5000)
    assert SHUTDOWN_STREAM == "!serverShutdown"


def test_a_frame_of_exactly_the_maximum_size_is_parsed() -> None:
    """MAX_FRAME_BYTES (64 KiB) is allowed; one byte more is refused before decoding."""
    body = orjson.dumps(BOOK)
    exact = body + b" " * (MAX_FRAME_BYTES - len(body))
    assert MAX_FRAME_BYTES == 65_536 and len(exact) == MAX_FRAME_BYTES
    assert isinstance(parse_frame(exact, 1), dict)
    with pytest.raises(ParseError, match=f"oversized frame: {MAX_FRAME_BYTES + 1} bytes > {MAX_FRAME_BYTES}"):
        parse_frame(exact + b" ", 1)


@pytest.mark.parametrize(
    ("raw", "reason", "stream"),
    [
        (orjson.dumps({"stream": 5, "data": {}}), "combined envelope: 'stream' is not a string", None),
        (orjson.dumps({"stream": "x@trade", "data": [1]}), "combined envelope: 'data' is not an object",
         "x@trade"),
        (orjson.dumps({"data": BOOK}), "combined envelope: 'stream' is not a string", None),
        (combined("btcusdt@trade", {"e": "x" * 60}), "unknown event type '" + "x" * 40 + "'",
         "btcusdt@trade"),
        (orjson.dumps({"s": "BTCUSDT"}), "unknown event type 'None'", None),
        (combined("btcusdt@trade", {**AGG, "s": "BTCUSDT"}),
         "stream 'btcusdt@trade' carries a 'aggTrade' event", "btcusdt@trade"),
        (combined("ethusdt@bookTicker", BOOK), "symbol 'BNBUSDT' does not match stream 'ethusdt@bookTicker'",
         "ethusdt@bookTicker"),
        (combined("btcusdt@trade", {**TRADE, "p": 1.5}), "invalid trade: p: Input should be a valid string",
         "btcusdt@trade"),
    ],
)  # fmt: skip
def test_rejections_name_the_reason_and_the_stream(raw: bytes, reason: str, stream: str | None) -> None:
    """A ParseError says what is wrong and carries the stream the frame came on."""
    with pytest.raises(ParseError) as info:
        parse_frame(raw, 1)
    assert info.value.reason.startswith(reason) and info.value.stream == stream


def test_the_model_path_is_the_same_symbol_check() -> None:
    """A payload the fast path declines is still checked against its stream's symbol."""
    odd = {**AGG, "s": "BTCUSDT", "extra": 1}
    with pytest.raises(ParseError, match="does not match stream"):
        parse_frame(combined("ethusdt@aggTrade", odd), 1, fast=False)


def test_rest_trade_rows_have_the_contract_shape() -> None:
    """historicalTrades rows become trade messages: source rest, the given symbol and receipt time."""
    body = orjson.dumps([{"id": 5, "price": "1.10", "qty": "2", "quoteQty": "2.2", "time": T_US,
                          "isBuyerMaker": True, "isBestMatch": False}])  # fmt: skip
    assert parse_rest_rows("trade", "BTCUSDT", body, 9) == [{
        "v": 1, "type": "trade", "symbol": "BTCUSDT", "id": 5, "price": "1.10", "qty": "2",
        "first_id": None, "last_id": None, "trade_time": T_US, "event_time": None,
        "buyer_maker": True, "best_match": False, "received_at": 9, "source": "rest",
    }]  # fmt: skip


def test_rest_agg_trade_rows_have_the_contract_shape() -> None:
    """aggTrades rows become aggTrade messages with ids, flags and ms times in microseconds."""
    row = {"a": 7, "p": "0.5", "q": "3", "f": 100, "l": 105, "T": 1_700_000_000_123, "m": False}
    assert parse_rest_rows("aggTrade", "ETHUSDT", orjson.dumps([row, {**row, "a": 8, "M": True}]), 10) == [
        {
            "v": 1, "type": "aggTrade", "symbol": "ETHUSDT", "id": 7, "price": "0.5", "qty": "3",
            "first_id": 100, "last_id": 105, "trade_time": 1_700_000_000_123_000, "event_time": None,
            "buyer_maker": False, "best_match": None, "received_at": 10, "source": "rest",
        },
        {
            "v": 1, "type": "aggTrade", "symbol": "ETHUSDT", "id": 8, "price": "0.5", "qty": "3",
            "first_id": 100, "last_id": 105, "trade_time": 1_700_000_000_123_000, "event_time": None,
            "buyer_maker": False, "best_match": True, "received_at": 10, "source": "rest",
        },
    ]  # fmt: skip


def test_bad_rest_rows_name_the_stream_and_field() -> None:
    """A bad REST body is one ParseError naming the stream and the first bad fields."""
    with pytest.raises(ParseError, match=r"^invalid REST aggTrade rows: 0\.a: "):
        parse_rest_rows("aggTrade", "ETHUSDT", b'[{"a": "7"}]', 1)
    with pytest.raises(ParseError, match=r"^invalid REST trade rows: "):
        parse_rest_rows("trade", "ETHUSDT", b"{}", 1)


class _Five(BaseModel):
    a: int
    b: int
    c: int
    d: int
    e: int


def _errors(value: Any, model: type[BaseModel] = _Five) -> ValidationError:
    try:
        model.model_validate(value)
    except ValidationError as exc:
        return exc
    raise AssertionError("expected a ValidationError")


def test_describe_gives_three_errors_and_counts_the_rest() -> None:
    """At most three 'field: message' parts, then '(+N more)'; a top-level error is 'value'."""
    assert describe(_errors({})) == ("a: Field required; b: Field required; c: Field required (+2 more)")
    assert describe(_errors({"a": 1, "b": 2, "c": 3, "d": 4})) == "e: Field required"
    assert describe(_errors({"a": 1, "b": 2, "d": 4})) == "c: Field required; e: Field required"
    assert describe(_errors([1])) == "value: Input should be a valid dictionary or instance of _Five"


def test_an_envelope_with_a_stream_and_no_data_is_refused() -> None:
    """{"stream": ...} alone is a broken envelope, not a raw payload."""
    with pytest.raises(ParseError, match=r"^combined envelope: 'data' is not an object$"):
        parse_frame(orjson.dumps({"stream": "btcusdt@trade"}), 1)


def test_a_non_object_frame_names_its_json_type() -> None:
    """A JSON array or number is refused naming what it is."""
    with pytest.raises(ParseError, match=r"^not a JSON object but list$"):
        parse_frame(b"[1]", 1)
    with pytest.raises(ParseError, match=r"^not a JSON object but int$"):
        parse_frame(b"5", 1)


def test_a_control_reply_only_comes_without_an_envelope() -> None:
    """Inside a combined envelope, a result/id payload is an unknown event, not a control reply."""
    with pytest.raises(ParseError, match="unknown event type"):
        parse_frame(combined("btcusdt@trade", {"result": None, "id": 1}), 1)


def test_a_malformed_control_reply_says_so() -> None:
    """A reply whose id is neither int, string nor null is an invalid control reply."""
    with pytest.raises(ParseError, match=r"^invalid control reply: id"):
        parse_frame(b'{"result": null, "id": [1]}', 1)


def test_long_stream_names_are_cut_at_60_characters_in_reasons() -> None:
    """A reason quotes at most 60 characters of a stream name."""
    name = "ethusdt" + "x" * 80
    with pytest.raises(ParseError) as info:
        parse_frame(combined(name + "@trade", AGG), 1)
    assert info.value.reason == f"stream {name[:60]!r} carries a 'aggTrade' event"
    with pytest.raises(ParseError) as info:
        parse_frame(combined(name + "@aggTrade", AGG), 1)
    assert info.value.reason == f"symbol 'ETHUSDT' does not match stream {name[:60]!r}"


def test_describe_counts_one_more() -> None:
    """Four errors read as three and '(+1 more)'."""
    assert describe(_errors({"e": 1})) == "a: Field required; b: Field required; c: Field required (+1 more)"


def _trade_with(tail: bytes) -> bytes:
    """TRADE on btcusdt@trade, compact, with ``tail`` (``,"key":value...``) added to its payload."""
    return b'{"stream":"btcusdt@trade","data":' + orjson.dumps(TRADE)[:-1] + tail + b"}}"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (_trade_with(b',"t":500008'), "t"),
        (b'{"t":1,"t":2}', "t"),
        (b'{"stream":"btcusdt@trade","stream":"ethusdt@trade","data":{}}', "stream"),
        (_trade_with(b',"x":{"k":1,"k":2}'), "k"),
        (_trade_with(b',"x":[{"k":1,"k":2}]'), "k"),
        (_trade_with(b',"x":[[{"k":1}],{"j":{"k":1,"k":2}}]'), "k"),
        (b'{"a":[1],"t":1,"t":2}', "t"),
        (b'{"a":["s",null,{"b":1}],"t":1,"t":2,"u":[true,false]}', "t"),
        (b'{"t" :1,"t":2,"x":3}', "t"),
        (b'{\n  "t": 1,\n  "t": 2\n}', "t"),
        (b'{"a\\"":1,"a\\"":2}', 'a"'),
        (b'{"' + b"k" * 60 + b'":1,"' + b"k" * 60 + b'":2}', "k" * 40),
    ],
    ids=["trade-t-twice", "bare", "envelope-stream", "nested-object", "object-in-list", "deep",
         "scalar-in-list", "scalars-in-lists", "spaced-colon", "pretty", "escaped-quote-key",
         "long-key-cut-at-40"],
)  # fmt: skip
def test_a_frame_with_a_repeated_key_anywhere_is_rejected(raw: bytes, key: str) -> None:
    """Rule 6: a key repeated in any object (top level, envelope, nested, inside lists) rejects the frame."""
    with pytest.raises(ParseError) as info:
        parse_frame(raw, 1)
    assert info.value.reason == f"duplicate key {key!r} in a JSON object"


@pytest.mark.parametrize(
    "tail",
    [b',"tt":2,"T2":3', b',"x":"a\\":b","y":"\\":"', b',"a\\"":1,"a":2', b',"x":{"t":1},"y":[{"t":2}]'],
    ids=["prefix-key", "colon-in-value", "escaped-quote-key", "same-key-in-other-objects"],
)
def test_distinct_keys_that_look_alike_are_not_duplicates(tail: bytes) -> None:
    """A key that is a prefix of another, a quote-colon inside a value, an escaped quote inside a key and
    the same key in two different objects are all valid: the trade is parsed as usual."""
    msg = parse_frame(_trade_with(tail), 5)
    assert isinstance(msg, dict) and msg["type"] == "trade" and msg["id"] == 12345


NESTED = {"k": [{"j": 1}, [{"i": 2}, [{"h": {"g": 3}}]], 3, "s", None, True], "f": {"e": {"d": []}}}
FRAME = {"stream": "btcusdt@trade", "data": {**TRADE, "x": NESTED}}


@pytest.mark.parametrize(
    "raw",
    [
        orjson.dumps(FRAME),
        json.dumps(FRAME, indent=2).encode(),
        json.dumps(FRAME, separators=(",", " : ")).encode(),
        orjson.dumps(TRADE),
    ],
    ids=["compact", "pretty", "spaced-colons", "bare"],
)
def test_a_frame_with_unique_keys_passes_on_the_key_count_alone(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 6's fast test: for JSON without a quote-colon inside strings, the number of key ends
    equals the number of keys of every nested object and list, so the slow exact check never runs."""

    def slow_check(_: bytes) -> None:
        raise AssertionError("the exact duplicate-key check ran on a frame with unique keys")

    monkeypatch.setattr("ingestion.parse._reject_duplicate_keys", slow_check)
    msg = parse_frame(raw, 5)
    assert isinstance(msg, dict) and msg["type"] == "trade" and msg["id"] == 12345


@pytest.mark.parametrize("fast", [True, False])
def test_decode_frame_names_the_envelope_stream_on_both_paths(fast: bool) -> None:
    """decode_frame returns the combined envelope's stream name, None for a bare payload (Rule 7)."""
    raw = combined("btcusdt@trade", TRADE)
    framed = decode_frame(raw, 7, fast=fast)
    assert framed.stream == "btcusdt@trade" and framed.item == parse_frame(raw, 7)
    assert decode_frame(orjson.dumps(TRADE), 7, fast=fast).stream is None
    assert decode_frame(b'{"result":null,"id":3}', 7, fast=fast).stream is None
