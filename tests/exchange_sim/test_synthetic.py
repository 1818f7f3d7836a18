"""Synthetic market invariants: ids, grouping, prices, determinism, exact counts (pure)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_sim.events import AGG_TRADE, BOOK_TICKER, TRADE, Event
from exchange_sim.market import spec_for
from exchange_sim.synthetic import SyntheticSymbol


def run(symbol: str, seed: int, steps: int, max_trades: int | None = None) -> list[Event]:
    gen = SyntheticSymbol(spec_for(symbol), seed, max_trades)
    events: list[Event] = []
    for i in range(steps):
        events.extend(gen.step(1_767_225_600_000_000 + i * 1000))
    return events


@given(st.integers(0, 2**32), st.sampled_from(["BTCUSDT", "ETHUSDT", "TRXUSDT", "XYZUSDT"]))
@settings(max_examples=25, deadline=None)
def test_sequence_invariants(seed: int, symbol: str) -> None:
    """t consecutive, a consecutive, f == previous l + 1, u increasing, bid < ask."""
    events = run(symbol, seed, 400)
    trades = [e.body for e in events if e.kind == TRADE]
    aggs = [e.body for e in events if e.kind == AGG_TRADE]
    books = [e.body for e in events if e.kind == BOOK_TICKER]
    assert all(b["t"] == a["t"] + 1 for a, b in pairwise(trades))
    assert all(b["a"] == a["a"] + 1 and b["f"] == a["l"] + 1 for a, b in pairwise(aggs))
    assert all(b["u"] > a["u"] for a, b in pairwise(books))
    assert all(Decimal(b["b"]) < Decimal(b["a"]) for b in books)
    assert aggs[0]["f"] == trades[0]["t"]
    assert aggs[-1]["l"] == trades[-1]["t"]


def test_agg_groups_same_price_and_side() -> None:
    """Each aggTrade covers trades with its price and side, and its qty is their exact sum."""
    events = run("BTCUSDT", 7, 500)
    by_id = {e.body["t"]: e.body for e in events if e.kind == TRADE}
    for agg in (e.body for e in events if e.kind == AGG_TRADE):
        covered = [by_id[t] for t in range(agg["f"], agg["l"] + 1)]
        assert {c["p"] for c in covered} == {agg["p"]}
        assert {c["m"] for c in covered} == {agg["m"]}
        assert sum(Decimal(c["q"]) for c in covered) == Decimal(agg["q"])


def test_prices_are_8_decimal_tick_multiples() -> None:
    """Prices and quantities are 8-decimal strings on the tick and lot grid."""
    spec = spec_for("BTCUSDT")
    for e in run("BTCUSDT", 3, 300):
        if e.kind == TRADE:
            price, qty = e.body["p"], e.body["q"]
            assert len(price.split(".")[1]) == 8
            assert len(qty.split(".")[1]) == 8
            assert (Decimal(price) * 10**8) % spec.tick == 0
            assert (Decimal(qty) * 10**8) % spec.lot == 0


def test_seed_determinism() -> None:
    """The same seed gives the same bodies; another seed differs."""
    first = [e.body for e in run("ETHUSDT", 42, 200)]
    assert first == [e.body for e in run("ETHUSDT", 42, 200)]
    assert first != [e.body for e in run("ETHUSDT", 43, 200)]


def test_max_trades_exact() -> None:
    """max_trades yields exactly that many trades, covered by aggTrades, then nothing."""
    events = run("BTCUSDT", 1, 10_000, max_trades=137)
    trades = [e for e in events if e.kind == TRADE]
    aggs = [e.body for e in events if e.kind == AGG_TRADE]
    assert len(trades) == 137
    assert sum(a["l"] - a["f"] + 1 for a in aggs) == 137
    assert events[-1].kind == BOOK_TICKER


def test_frames_shared_and_microsecond_variant() -> None:
    """Frames are cached per variant; the microsecond frame carries microsecond times."""
    event = next(e for e in run("BTCUSDT", 5, 50) if e.kind == TRADE)
    assert event.frame(True, False) is event.frame(True, False)
    assert b'"E":1767225600' in event.payload(False)
    assert str(event.times_us["E"]).encode() in event.payload(True)


def test_whole_market_lists_usdt_pairs_other_quotes_and_a_few_delisted() -> None:
    """--market N: N USDT pairs (a few BREAK), some bases in other quotes, Zipf-like activity, seeded."""
    from exchange_sim.whole_market import QUIET_FLOOR, activity, listings

    market = listings(300, seed=7)
    quotes = Counter(item.spec.base_quote[1] for item in market)
    assert quotes["USDT"] == 300 and sum(quotes.values()) - 300 >= 30
    assert 0 < sum(not item.trading for item in market) < 10
    assert len({item.spec.symbol for item in market}) == len(market)
    assert market[0].spec.symbol == "BTCUSDT" and market[0].activity == 1.0
    usdt = [item.activity for item in market if item.spec.symbol.endswith("USDT")]
    assert usdt == sorted(usdt, reverse=True) and usdt[-1] == QUIET_FLOOR
    assert sum(a > 0.1 for a in usdt) <= 10  # a few busy, most quiet
    assert listings(300, seed=7) == market and listings(300, seed=8) != market
    for item in market:
        spec = item.spec
        assert spec.tick >= 1 and spec.lot >= 1 and spec.start_price % spec.tick == 0
    with pytest.raises(ValueError, match="rank"):
        activity(0)
    with pytest.raises(ValueError, match="at least one"):
        listings(0, seed=7)
