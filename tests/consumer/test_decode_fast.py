"""consumer.decode Rule 5: the trade fast path gives the field-by-field decoder's row or defers to it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_pipeline.testing.events import agg_trade, trade
from consumer.decode import _trade_checked, _trade_fast, decode_trade
from consumer.errors import DecodeError
from tests.consumer.test_decode import json_values

FIELDS = sorted(trade(1))


def checked(value: bytes) -> Any:
    try:
        return _trade_checked(value)
    except DecodeError as exc:
        return exc


@settings(max_examples=500, deadline=None)
@given(base=st.sampled_from([trade(7), agg_trade(9), trade(8, source="rest", event_time=None)]),
       field=st.sampled_from([*FIELDS, "extra"]), junk=json_values | st.integers(-5, 2**63) | st.sampled_from(
           ["trade", "aggTrade", "stream", "rest", "archive", "1.5", "-0.1", "1e5", "BTCUSDT", True, None]),
       drop=st.booleans())
def test_the_fast_path_gives_the_checked_row_or_defers(base: dict[str, Any], field: str, junk: Any,
                                                        drop: bool) -> None:
    """Any field replaced (or removed): the fast path's row is the checked decoder's, or it defers."""
    msg = {**base}
    if drop:
        msg.pop(field, None)
    else:
        msg[field] = junk
    value = orjson.dumps(msg)
    want = checked(value)  # first: a valid symbol is then in the cache, as in the worker
    got = _trade_fast(value)
    assert got is None or got == want
    assert (decode_trade(value) == want) if not isinstance(want, DecodeError) else got is None


@given(st.sampled_from([trade(3), agg_trade(4), trade(5, best_match=None, first_id=None)]))
def test_a_valid_trade_of_a_known_symbol_takes_the_fast_path(msg: dict[str, Any]) -> None:
    """A well-formed message whose symbol was seen before is decoded by the fast path."""
    value = orjson.dumps(msg)
    want = _trade_checked(value)
    assert _trade_fast(value) == want


def test_bytes_that_are_not_an_object_defer() -> None:
    """Not JSON, a list, a string: the fast path defers (the checked decoder names the problem)."""
    for value in (b"{", b"[1, 2]", b'"x"', b"null"):
        assert _trade_fast(value) is None


VALID_VARIANTS = [
    trade(7), agg_trade(9), trade(8, source="rest", event_time=None), trade(10, source="archive"),
    {**trade(11), "best_match": None}, {**trade(12), "first_id": 5, "last_id": 6},
    {**trade(13), "price": "-0.5"}, {**trade(14), "trade_time": 0, "received_at": 0},
    {**trade(15), "extra": [1]},
]
# One field at a time, each value one the checked decoder refuses (the fast path must defer on it).
REFUSED: list[tuple[str, Any]] = [
    ("v", 2), ("v", "1"), ("v", True), ("type", "bookTicker"), ("type", 1), ("symbol", "btcusdt"),
    ("symbol", 5), ("id", "1"), ("id", 1.5), ("id", True), ("first_id", "1"), ("last_id", 1.5),
    ("price", "1e5"), ("price", 1), ("price", "1."), ("qty", ""), ("qty", 2), ("buyer_maker", 1),
    ("buyer_maker", None), ("best_match", 0), ("trade_time", -1), ("trade_time", 253_402_300_800_000_000),
    ("trade_time", "1"), ("received_at", -1), ("received_at", 253_402_300_800_000_000), ("received_at", None),
    ("event_time", -1), ("event_time", 253_402_300_800_000_000), ("event_time", 1.5), ("source", "web"),
    ("source", None),
]


@pytest.mark.parametrize("msg", VALID_VARIANTS, ids=range(len(VALID_VARIANTS)))
def test_a_valid_trade_gets_the_checked_row_from_the_fast_path(msg: dict[str, Any]) -> None:
    """Examples of the property above (mutation testing runs no property test): the fast path's row is
    exactly the checked decoder's for a message that passes every check, once its symbol is known."""
    value = orjson.dumps(msg)
    want = _trade_checked(value)
    assert _trade_fast(value) == want


@pytest.mark.parametrize(("field", "bad"), REFUSED, ids=[f"{f}={b!r}" for f, b in REFUSED])
def test_a_field_the_checked_decoder_refuses_makes_the_fast_path_defer(field: str, bad: Any) -> None:
    decode_trade(orjson.dumps(trade(1)))  # the symbol is known
    value = orjson.dumps({**trade(1), field: bad})
    assert isinstance(checked(value), DecodeError)
    assert _trade_fast(value) is None


@pytest.mark.parametrize("field", FIELDS)
def test_a_missing_field_makes_the_fast_path_defer(field: str) -> None:
    decode_trade(orjson.dumps(trade(1)))
    msg = {k: v for k, v in trade(1).items() if k != field}
    assert _trade_fast(orjson.dumps(msg)) is None


def test_an_unknown_symbol_and_bad_json_make_the_fast_path_defer() -> None:
    assert _trade_fast(orjson.dumps({**trade(1), "symbol": "NEVERSEEN1"})) is None
    assert _trade_fast(b"{") is None and _trade_fast(b"[1]") is None
