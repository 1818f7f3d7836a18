"""consumer.decode Rule 5: the trade fast path gives the field-by-field decoder's row or defers to it."""

from __future__ import annotations

from typing import Any

import orjson
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
