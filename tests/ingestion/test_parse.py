"""Frame and REST parsing: exact values, strictness, and the one documented error type."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_sim.faults import MALFORMED_KINDS, malformed_frame
from ingestion.errors import ParseError
from ingestion.models import ControlReply
from ingestion.parse import MAX_FRAME_BYTES, Shutdown, parse_frame, parse_rest_rows

T_US = 1_700_000_000_123_456
TRADE = {"e": "trade", "E": T_US, "s": "BTCUSDT", "t": 12345, "p": "67012.35000000",
         "q": "0.00100000", "T": T_US, "m": True, "M": True}  # fmt: skip
AGG = {"e": "aggTrade", "E": T_US, "s": "BTCUSDT", "a": 7, "p": "0.00000001", "q": "100", "f": 100,
       "l": 105, "T": T_US, "m": False, "M": True}  # fmt: skip
BOOK = {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000", "a": "25.36520000",
        "A": "40.66000000"}  # fmt: skip


def frame(stream: str, data: Any) -> bytes:
    return json.dumps({"stream": stream, "data": data}).encode()


def test_trade_keeps_exact_strings_and_times() -> None:
    """A trade becomes a contract message with the exchange's strings and us times."""
    msg = parse_frame(frame("btcusdt@trade", TRADE), 42)
    assert msg == {
        "v": 1, "type": "trade", "symbol": "BTCUSDT", "id": 12345, "price": "67012.35000000",
        "qty": "0.00100000", "first_id": None, "last_id": None, "trade_time": T_US,
        "event_time": T_US, "buyer_maker": True, "best_match": True, "received_at": 42,
        "source": "stream",
    }  # fmt: skip


def test_millisecond_times_are_normalised() -> None:
    """A time below 10^14 is milliseconds and becomes microseconds."""
    msg = parse_frame(frame("btcusdt@trade", {**TRADE, "E": 1_700_000_000_123, "T": 1_700_000_000_122}), 1)
    assert isinstance(msg, dict)
    assert (msg["event_time"], msg["trade_time"]) == (1_700_000_000_123_000, 1_700_000_000_122_000)  # type: ignore[typeddict-item]


def test_old_trade_fields_are_ignored_and_anomaly_accepted() -> None:
    """Old captures' b/a fields are ignored; the aggTrade p=0 q=0 f=-1 l=-1 anomaly is valid."""
    assert isinstance(parse_frame(frame("btcusdt@trade", {**TRADE, "b": 1, "a": 2}), 1), dict)
    msg = parse_frame(frame("btcusdt@aggTrade", {**AGG, "p": "0", "q": "0", "f": -1, "l": -1}), 1)
    assert isinstance(msg, dict) and (msg["price"], msg["first_id"], msg["last_id"]) == ("0", -1, -1)  # type: ignore[typeddict-item]


def test_book_ticker_raw_and_combined() -> None:
    """bookTicker (no e) is recognised by its stream or its shape."""
    for raw in (frame("bnbusdt@bookTicker", BOOK), orjson.dumps(BOOK)):
        msg = parse_frame(raw, 5)
        assert isinstance(msg, dict) and msg["type"] == "bookTicker" and msg["update_id"] == 400900217  # type: ignore[typeddict-item]


def test_control_reply_and_server_shutdown() -> None:
    """Control replies and serverShutdown are recognised, not dead-lettered."""
    assert parse_frame(b'{"result":null,"id":1}', 1) == ControlReply(id=1, result=None)
    err = parse_frame(b'{"error":{"code":2,"msg":"Invalid request"},"id":"x"}', 1)
    assert isinstance(err, ControlReply) and err.error is not None and err.error.code == 2
    shut = frame("!serverShutdown", {"e": "serverShutdown", "E": 1_770_123_456_789})
    assert parse_frame(shut, 1) == Shutdown(1_770_123_456_789_000)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (frame("btcusdt@trade", {**TRADE, "p": 67012.35}), "p: Input should be a valid string"),
        (frame("btcusdt@trade", {**TRADE, "t": "12"}), "t: Input should be a valid integer"),
        (frame("btcusdt@trade", {**TRADE, "m": 1}), "m: Input should be a valid boolean"),
        (frame("btcusdt@trade", {**TRADE, "p": "1e5"}), "p: String should match pattern"),
        (frame("ethusdt@trade", TRADE), "does not match stream"),
        (frame("btcusdt@aggTrade", TRADE), "carries a 'trade' event"),
        (frame("btcusdt@trade", {"e": "depthUpdate"}), "unknown event type"),
        (b"[1,2]", "not a JSON object"),
        (b'{"stream":"x"', "invalid JSON"),
        (b"x" * (MAX_FRAME_BYTES + 1), "oversized frame"),
    ],
)
def test_invalid_frames_are_rejected_with_reason(raw: bytes, reason: str) -> None:
    """Wrong types, floats for prices, mismatched envelopes and junk raise ParseError naming why."""
    with pytest.raises(ParseError) as info:
        parse_frame(raw, 1)
    assert reason in info.value.reason


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_every_simulator_malformed_kind_is_rejected(kind: str) -> None:
    """Each malformed frame kind the simulator sends is a ParseError (a dead letter)."""
    encoded = malformed_frame(kind, "BTCUSDT", 1_700_000_000_000, True, 100_000)
    payload = encoded[2:] if encoded[1] < 126 else encoded[4:] if encoded[1] == 126 else encoded[10:]
    with pytest.raises(ParseError):
        parse_frame(payload, 1)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=5),
    max_leaves=20,
)
field_values = st.one_of(
    json_values, st.sampled_from(["0", "1.5", "67012.35000000", "BTCUSDT", "trade", "aggTrade"]),
    st.integers(min_value=-2, max_value=2**64), st.just(T_US),
)  # fmt: skip


def mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with some fields replaced by arbitrary JSON values or removed."""
    full = st.fixed_dictionaries({k: st.one_of(st.just(v), field_values) for k, v in base.items()})

    def without_some(d: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        drops = st.sets(st.sampled_from(sorted(d)))
        return drops.map(lambda drop: {k: v for k, v in d.items() if k not in drop})

    return full.flatmap(without_some)


def check(raw: bytes) -> None:
    try:
        item = parse_frame(raw, 1)
    except ParseError as exc:
        assert exc.reason and "\n" not in exc.reason
        return
    assert isinstance(item, dict | ControlReply | Shutdown)
    if isinstance(item, dict):
        for key in ("price", "qty", "bid_price", "bid_qty", "ask_price", "ask_qty"):
            assert not isinstance(item.get(key), float)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_an_event_or_parse_error(raw: bytes) -> None:
    """Arbitrary bytes yield a valid item or ParseError, nothing else."""
    check(raw)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([("btcusdt@trade", TRADE), ("btcusdt@aggTrade", AGG), ("bnbusdt@bookTicker", BOOK)])
    .flatmap(lambda sd: st.tuples(st.just(sd[0]), mutated(sd[1]))),
    st.booleans(),
)
def test_mutated_payloads_give_an_event_or_parse_error(
    case: tuple[str, dict[str, Any]], combined: bool
) -> None:
    """Payloads with fields of any JSON type, or missing, yield a valid event or ParseError."""
    stream, data = case
    check(frame(stream, data) if combined else json.dumps(data).encode())


def test_rest_rows_become_rest_events() -> None:
    """historicalTrades and aggTrades rows become events with source rest and no event time."""
    body = orjson.dumps([{"id": 5, "price": "1.10", "qty": "2", "quoteQty": "2.2", "time": T_US,
                          "isBuyerMaker": False, "isBestMatch": True}])  # fmt: skip
    [msg] = parse_rest_rows("trade", "BTCUSDT", body, 9)
    assert (msg["id"], msg["price"], msg["source"], msg["event_time"], msg["trade_time"]) == (
        5, "1.10", "rest", None, T_US)
    rows = orjson.dumps([{k: v for k, v in AGG.items() if k not in "eEs"}])
    [agg] = parse_rest_rows("aggTrade", "BTCUSDT", rows, 9)
    assert (agg["id"], agg["first_id"], agg["last_id"], agg["type"]) == (7, 100, 105, "aggTrade")
    with pytest.raises(ParseError):
        parse_rest_rows("trade", "BTCUSDT", b'[{"id": "5"}]', 9)


def _compact(stream: str, data: Any) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


def test_a_compact_frame_passes_the_duplicate_key_test_on_its_colons(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule 6's first tier: a compact frame whose colons equal its top level's and data's keys needs
    no walk of its objects; one with a colon inside a value (more colons than keys) goes on to the
    second tier, and still parses."""
    walked: list[object] = []
    real = __import__("ingestion.parse", fromlist=["_count_keys"])._count_keys

    def counting(value: object) -> int:
        walked.append(value)
        return int(real(value))

    monkeypatch.setattr("ingestion.parse._count_keys", counting)
    assert isinstance(parse_frame(_compact("btcusdt@trade", TRADE), 1), dict)
    assert walked == []
    assert isinstance(parse_frame(_compact("btcusdt@trade", {**TRADE, "x": "a:b"}), 1), dict)
    assert walked  # the second tier walked its objects


def test_the_stream_memo_changes_no_answer() -> None:
    """Rule 8: after a stream's frames were accepted, a frame on it with another symbol or another
    kind is still refused, with the same reason as on a first sight."""
    good = _compact("btcusdt@trade", TRADE)
    for _ in range(2):
        assert isinstance(parse_frame(good, 1), dict)
    with pytest.raises(ParseError, match="symbol 'ETHUSDT' does not match stream 'btcusdt@trade'"):
        parse_frame(_compact("btcusdt@trade", {**TRADE, "s": "ETHUSDT"}), 1)
    with pytest.raises(ParseError, match="stream 'btcusdt@trade' carries a 'aggTrade' event"):
        parse_frame(_compact("btcusdt@trade", AGG), 1)
    with pytest.raises(ParseError, match="stream 'btcusdt@trade' carries a 'bookTicker' event"):
        parse_frame(_compact("btcusdt@trade", {**BOOK, "s": "BTCUSDT"}), 1)
    book = _compact("bnbusdt@bookTicker", BOOK)
    for _ in range(2):
        assert isinstance(parse_frame(book, 1), dict)
    with pytest.raises(ParseError, match="unknown event type 'None'"):
        parse_frame(_compact("bnbusdt@bookTicker", {k: v for k, v in BOOK.items() if k != "u"}), 1)


def test_a_streams_later_frames_skip_the_envelope_checks_and_the_memo_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rule 8: once a stream's kind and symbol were accepted, its next frames (trade and bookTicker
    shapes alike) pass without ``_kind_of`` and ``_check_symbol``, on the fastpath by default; the
    memo is emptied when full."""
    from ingestion import parse

    monkeypatch.setattr(parse, "_STREAMS", {})
    trade, book = _compact("btcusdt@trade", TRADE), _compact("bnbusdt@bookTicker", BOOK)
    parse.decode(trade, 1)
    parse.decode(book, 1)
    assert parse._STREAMS == {
        "btcusdt@trade": ("BTCUSDT", "trade"), "bnbusdt@bookTicker": ("BNBUSDT", "bookTicker"),
    }  # fmt: skip

    def refused(*_: object) -> None:
        raise AssertionError("checked again")

    monkeypatch.setattr(parse, "_kind_of", refused)
    monkeypatch.setattr(parse, "_check_symbol", refused)
    monkeypatch.setattr(parse, "_from_model", refused)
    assert parse.decode(trade, 2)[1]["id"] == TRADE["t"]  # type: ignore[index]
    assert parse.decode(book, 2)[1]["update_id"] == BOOK["u"]  # type: ignore[index]
    monkeypatch.setattr(parse, "STREAMS_MEMO", 2)
    parse._remember("ethusdt@trade", "ETHUSDT", "trade")
    assert parse._STREAMS == {"ethusdt@trade": ("ETHUSDT", "trade")}
