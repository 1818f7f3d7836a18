"""The hand-written fast path accepts exactly what the pydantic models accept, with equal output."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from ingestion.errors import ParseError
from ingestion.fastpath import CHECKERS
from ingestion.models import MAX_ID, AggTradePayload, BookTickerPayload, TradePayload
from ingestion.parse import Parsed, agg_trade_message, book_ticker_message, parse_frame, trade_message

T_US = 1_700_000_000_123_456
TRADE = {"e": "trade", "E": T_US, "s": "BTCUSDT", "t": 12345, "p": "67012.35000000",
         "q": "0.00100000", "T": T_US, "m": True, "M": True}  # fmt: skip
AGG = {"e": "aggTrade", "E": T_US, "s": "BTCUSDT", "a": 7, "p": "0.00000001", "q": "100", "f": 100,
       "l": 105, "T": T_US, "m": False, "M": True}  # fmt: skip
BOOK = {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000", "a": "25.36520000",
        "A": "40.66000000"}  # fmt: skip
BASES = {"trade": TRADE, "aggTrade": AGG, "bookTicker": BOOK}
MODELS: dict[str, tuple[type[BaseModel], Any]] = {
    "trade": (TradePayload, trade_message),
    "aggTrade": (AggTradePayload, agg_trade_message),
    "bookTicker": (BookTickerPayload, book_ticker_message),
}
STREAM_CHOICES = ["own", "btcusdt@trade", "btcusdt@aggTrade", "bnbusdt@bookTicker", "ethusdt@trade",
                  "BTCUSDT@trade", "raw"]  # fmt: skip
STREAMS = {"trade": "btcusdt@trade", "aggTrade": "btcusdt@aggTrade", "bookTicker": "bnbusdt@bookTicker"}

# Values at and around every boundary the models draw, plus every JSON type.
edge_ints = st.sampled_from([
    -(2**63), -2, -1, 0, 1, 2, 10**14 - 1, 10**14, 10**14 + 1, T_US, 10**17 - 1, 10**17,
    MAX_ID - 1, MAX_ID, MAX_ID + 1, 2**64 - 1,
])  # fmt: skip
edge_strings = st.sampled_from([
    "0", "1", "1.5", "67012.35000000", "0.00000001", "1.", ".5", "-1", "+1", "1e5", "1.5.5", " 1", "1 ",
    "1\n", "\n1", "1_000", "\uff11", "\u0663", "1" * 40, "1" * 41, "1." + "0" * 40, "1." + "0" * 41, "",
    "BTCUSDT", "btcusdt", "B", "BT", "A" * 20, "A" * 21, "BTC\n", "BTC-USDT", "\u00c5BC", "1000SATS",
    "trade", "aggTrade", "bookTicker", "true", "null",
])  # fmt: skip
decimals = st.from_regex(r"\A[0-9]{1,42}(\.[0-9]{0,42})?\n?\Z")
symbols = st.from_regex(r"\A[A-Za-z0-9]{1,22}\n?\Z")
values = st.one_of(  # the edge values weigh more: they are where the two paths could differ
    edge_ints, edge_ints, edge_ints, edge_strings, edge_strings, decimals, symbols, st.booleans(),
    st.none(), st.integers(),
    st.floats(allow_nan=False), st.text(max_size=6), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)  # fmt: skip


def mutated(base: dict[str, Any], fixed: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with up to two fields replaced, one removed, extras added (not ``fixed`` keys)."""
    keys = sorted(set(base) - set(fixed))
    book_e = st.sampled_from([None, "bookTicker"])
    extras = {"M": st.one_of(st.booleans(), st.none(), values), "x": values, "b": values, "E": values,
              "e": book_e if "e" in fixed else st.one_of(book_e, values)}  # fmt: skip
    added = st.fixed_dictionaries({}, optional={k: v for k, v in extras.items() if k not in base})
    changes = st.dictionaries(st.sampled_from(keys), values, max_size=2)
    drops = st.sets(st.sampled_from(keys), max_size=1)
    return st.tuples(added, changes, drops).map(
        lambda acd: {k: v for k, v in {**base, **acd[0], **acd[1]}.items() if k not in acd[2]}
    )


def payloads(fixed: tuple[str, ...]) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    kinds = st.sampled_from(sorted(BASES))
    return kinds.flatmap(lambda k: st.tuples(st.just(k), mutated(BASES[k], fixed)))


def reference(kind: str, data: dict[str, Any]) -> Any:
    model, build = MODELS[kind]
    try:
        return build(model.model_validate(data), 7)
    except ValidationError:
        return None


@pytest.mark.slow  # 1,000 generated payloads through both checkers (3-5 s)
@settings(max_examples=1000, deadline=None)
@given(payloads(fixed=("e",)))
@example(("trade", {**TRADE, "t": True}))
@example(("trade", {**TRADE, "p": "1\n"}))
@example(("trade", {**TRADE, "s": "BTC\n"}))
@example(("trade", {**TRADE, "M": None}))
@example(("aggTrade", {**AGG, "p": "0", "q": "0", "f": -1, "l": -1}))
@example(("aggTrade", {**AGG, "E": 10**14 - 1, "T": 1}))
@example(("aggTrade", {**AGG, "E": 10**17}))
@example(("trade", {**TRADE, "T": 0}))
@example(("trade", {**TRADE, "t": MAX_ID + 1}))
@example(("bookTicker", {**BOOK, "e": "bookTicker", "E": "x"}))
@example(("bookTicker", {**BOOK, "e": None}))
def test_checker_accepts_exactly_what_the_model_accepts(case: tuple[str, dict[str, Any]]) -> None:
    """Each checker returns the model's message for a payload the model accepts, else None."""
    kind, data = case
    assert CHECKERS[kind](data, 7) == reference(kind, data)


def parse_both(raw: bytes) -> tuple[Parsed | str, Parsed | str]:
    """(fast path result, pydantic path result); a ParseError becomes "error: <reason>"."""
    out: list[Parsed | str] = []
    for fast in (True, False):
        try:
            out.append(parse_frame(raw, 7, fast=fast))
        except ParseError as exc:
            out.append(f"error: {exc.reason} / {exc.stream}")
    return out[0], out[1]


@pytest.mark.slow  # 500 generated frames through both parse paths (2-3 s)
@settings(max_examples=500, deadline=None)
@given(payloads(fixed=()), st.sampled_from(STREAM_CHOICES))
def test_fast_and_pydantic_paths_parse_frames_alike(case: tuple[str, dict[str, Any]], stream: str) -> None:
    """A frame gives the same event on both paths, or ParseError with the same reason on both."""
    kind, data = case
    name = STREAMS[kind] if stream == "own" else stream
    raw = json.dumps(data if stream == "raw" else {"stream": name, "data": data}).encode()
    fast, slow = parse_both(raw)
    assert fast == slow


@pytest.mark.parametrize("kind", sorted(BASES))
def test_valid_payloads_take_the_fast_path(kind: str) -> None:
    """The usual payloads are accepted by the checker itself, not left to pydantic."""
    assert CHECKERS[kind](BASES[kind], 7) is not None


def test_a_symbol_seen_first_is_checked_then_remembered_and_the_memo_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The symbol memo (parse Rule 8): a valid symbol seen for the first time is accepted by the fastpath
    itself (not handed to the model), remembered, and the memo is emptied when full."""
    from ingestion import fastpath

    monkeypatch.setattr(fastpath, "_SYMBOLS", set())
    monkeypatch.setattr(fastpath, "SYMBOLS_MEMO", 2)
    assert fastpath.trade(TRADE, 7) is not None and fastpath._SYMBOLS == {"BTCUSDT"}
    assert fastpath.book_ticker(BOOK, 7) is not None and fastpath._SYMBOLS == {"BTCUSDT", "BNBUSDT"}
    assert fastpath.trade({**TRADE, "s": "btcusdt"}, 7) is None and len(fastpath._SYMBOLS) == 2
    assert fastpath.trade({**TRADE, "s": "ETHUSDT"}, 7) is not None and fastpath._SYMBOLS == {"ETHUSDT"}
