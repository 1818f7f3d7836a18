"""ingestion.universe: pattern resolution, symbol diffs and stream placement (pure)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestion.errors import UniverseError
from ingestion.universe import (
    Placement,
    chunks,
    diff,
    needs_exchange_info,
    parse_exchange_info,
    place,
    resolve,
    stream_names,
)

INFO = {"BTCUSDT": "TRADING", "ETHUSDT": "TRADING", "OLDUSDT": "BREAK", "ETHBTC": "TRADING",
        "BTCFDUSD": "TRADING"}


def test_patterns_match_trading_symbols_only() -> None:
    """*USDT matches TRADING USDT pairs; ALL matches every TRADING symbol; exact names always stay."""
    assert resolve(["*USDT"], INFO) == ["BTCUSDT", "ETHUSDT"]
    assert resolve(["ALL"], INFO) == ["BTCFDUSD", "BTCUSDT", "ETHBTC", "ETHUSDT"]
    assert resolve(["BTC*"], INFO) == ["BTCFDUSD", "BTCUSDT"]
    assert resolve(["OLDUSDT", "*BTC"], INFO) == ["OLDUSDT", "ETHBTC"]
    assert resolve(["ETH*", "ETHUSDT"], INFO) == ["ETHUSDT", "ETHBTC"]


def test_exchange_info_is_parsed_or_rejected_with_universe_error() -> None:
    """A well-formed answer gives symbol -> status; anything else raises UniverseError only."""
    body = orjson.dumps({"symbols": [{"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC"}]})
    assert parse_exchange_info(body) == {"BTCUSDT": "TRADING"}
    for bad in (b"{", b"[]", b'{"symbols": 3}', b'{"symbols": [{"symbol": "X"}]}', b'{"symbols": [1]}'):
        with pytest.raises(UniverseError):
            parse_exchange_info(bad)


def test_diff_lists_added_and_removed_in_order() -> None:
    """diff gives what to start and what to stop; an unchanged universe is an empty change."""
    change = diff(["A", "B", "C"], ["B", "D", "C", "E"])
    assert (change.added, change.removed) == (["D", "E"], ["A"])
    assert not diff(["A"], ["A"])


def test_placement_reuses_freed_room_then_opens_new_connections() -> None:
    """Removed streams free room on their connection; new streams fill it, the rest get new slots."""
    slots = [["a@t", "b@t", "c@t"], ["d@t", "e@t"]]
    plan = place(slots, ["x@t", "y@t", "z@t", "w@t"], ["b@t"], per_connection=3)
    assert plan == Placement(unsubscribe={0: ["b@t"]}, subscribe={0: ["x@t"], 1: ["y@t"]},
                             new_slots=[["z@t", "w@t"]])
    assert plan.messages(per_message=200) == 3
    assert place(slots, ["a@t"], [], 3) == Placement()  # already captured: nothing to do


def test_stream_names_and_chunks() -> None:
    """Stream names are lowercase symbol@type; chunks never exceed their size."""
    assert stream_names(["BTCUSDT"], ("trade", "bookTicker")) == ["btcusdt@trade", "btcusdt@bookTicker"]
    assert chunks(["a", "b", "c"], 2) == [["a", "b"], ["c"]]


names = st.lists(st.sampled_from([f"s{i}@t" for i in range(40)]), unique=True, max_size=40)


@given(names, names, st.integers(1, 8), st.data())
def test_placement_keeps_every_connection_under_the_limit(
    existing: list[str], add: list[str], limit: int, data: st.DataObject
) -> None:
    """After any placement: each stream once, removed ones gone, added present, none over the limit."""
    slots = chunks(existing, limit)
    remove = data.draw(st.lists(st.sampled_from(existing), unique=True) if existing else st.just([]))
    plan = place(slots, add, remove, limit)
    after = [list(s) for s in slots]
    for i, gone in plan.unsubscribe.items():
        after[i] = [s for s in after[i] if s not in gone]
    for i, new in plan.subscribe.items():
        after[i] += new
    after += plan.new_slots
    flat = [s for slot in after for s in slot]
    assert len(flat) == len(set(flat))
    assert set(flat) == (set(existing) - set(remove)) | set(add)
    assert all(len(slot) <= limit for slot in after)
    kept = [[s for s in slot if s not in remove] for slot in slots]
    assert all(after[i][: len(k)] == k for i, k in enumerate(kept))  # streams that stay never move


def test_exact_entries_alone_match_no_other_symbol() -> None:
    """With no pattern nothing is matched, not even a symbol with an empty name."""
    assert resolve(["ETHUSDT", "BTCUSDT"], {**INFO, "": "TRADING"}) == ["ETHUSDT", "BTCUSDT"]
    assert resolve([], {**INFO, "": "TRADING"}) == []


def test_several_patterns_are_alternatives() -> None:
    assert resolve(["*USDT", "*BTC"], INFO) == ["BTCUSDT", "ETHBTC", "ETHUSDT"]


@pytest.mark.parametrize(("body", "message"), [
    (b"{", r"^exchangeInfo is not JSON: "),
    (b"[]", r"^exchangeInfo has no 'symbols' list$"),
    (b'{"symbols": [{"symbol": "X"}]}',
     r"^exchangeInfo symbol entry without symbol/status: \{'symbol': 'X'\}$"),
])
def test_exchange_info_errors_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(UniverseError, match=message):
        parse_exchange_info(body)


def test_an_exchange_info_error_quotes_at_most_200_characters() -> None:
    body = orjson.dumps({"symbols": [{"symbol": "X" * 500}]})
    with pytest.raises(UniverseError) as caught:
        parse_exchange_info(body)
    assert len(str(caught.value)) == 200


def test_a_connection_over_the_limit_takes_no_new_stream() -> None:
    """A slot already past per_connection (the limit was lowered) gets nothing more."""
    plan = place([["a@t", "b@t", "c@t", "d@t"]], ["x@t"], [], per_connection=3)
    assert plan == Placement(new_slots=[["x@t"]])


def test_a_change_is_true_when_it_adds_or_removes() -> None:
    assert diff(["A"], ["A", "B"])
    assert diff(["A", "B"], ["A"])


def test_exchange_info_is_needed_only_for_a_pattern() -> None:
    assert not needs_exchange_info(["BTCUSDT", "ETHUSDT"])
    assert not needs_exchange_info([])
    assert needs_exchange_info(["BTCUSDT", "*USDT"])
    assert needs_exchange_info(["ALL"])
