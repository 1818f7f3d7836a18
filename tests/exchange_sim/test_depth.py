"""Synthetic depth: the book behind bookTicker, depthUpdate diffs on one id sequence, ground truth (pure)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_sim.book import ASK, BID, OrderBook
from exchange_sim.depth import DEPTH_1S, DEPTH_100MS, DepthTruth, depth_event
from exchange_sim.events import BOOK_TICKER, TRADE, Event
from exchange_sim.faults import DropRule, Faults
from exchange_sim.market import spec_for
from exchange_sim.synthetic import SyntheticSymbol
from exchange_sim.units import fmt8, parse8

T0 = 1_767_225_600_000_000


Pairs = list[tuple[Event, OrderBook]]


def drive(symbol: str, seed: int, steps: int) -> tuple[SyntheticSymbol, OrderBook, Pairs]:
    """Run a generator as the feed does; return it, its first book and (event, book copy) pairs."""
    gen = SyntheticSymbol(spec_for(symbol), seed, None, book=True)
    start = gen.book.copy()
    out: Pairs = []
    for i in range(steps):
        now = T0 + i * 7000  # a step every 7 ms: several per 100 ms
        out += [(e, gen.book.copy()) for e in gen.step(now)]
        out += [(e, gen.book.copy()) for e in gen.depth_due(now)]
    return gen, start, out


@given(st.integers(0, 2**32), st.sampled_from(["BTCUSDT", "TRXUSDT", "XYZUSDT"]))
@settings(max_examples=15, deadline=None)
def test_depth_diffs_rebuild_the_book_on_both_speeds(seed: int, symbol: str) -> None:
    """Per speed, U == previous u + 1 and the first book plus the diffs equals the generator's book."""
    _, start, out = drive(symbol, seed, 600)
    for kind in (DEPTH_100MS, DEPTH_1S):
        local = start.copy()
        events = [(e, book) for e, book in out if e.kind == kind]
        assert events, kind
        assert events[0][0].body["U"] == start.update_id + 1
        for (a, _), (b, _) in pairwise(events):
            assert b.body["U"] == a.body["u"] + 1
        for event, book in events:
            local.apply(event.body["b"], event.body["a"], event.body["u"])
            assert (local.bids, local.asks, local.update_id) == (book.bids, book.asks, book.update_id)


def test_book_ticker_is_the_top_of_the_book_and_shares_the_id_sequence() -> None:
    """Every bookTicker equals the book's best levels at its u; depth u values are bookTicker u values."""
    _, _, out = drive("BTCUSDT", 5, 800)
    ticker_ids = set()
    for event, book in out:
        if event.kind != BOOK_TICKER:
            continue
        body, (bid, bid_qty), (ask, ask_qty) = event.body, book.best(BID), book.best(ASK)  # type: ignore[misc]
        quoted = (body["b"], body["B"], body["a"], body["A"])
        assert quoted == (fmt8(bid), fmt8(bid_qty), fmt8(ask), fmt8(ask_qty))
        assert body["u"] == book.update_id
        ticker_ids.add(body["u"])
    depth_ids = {e.body["u"] for e, _ in out if e.kind in (DEPTH_100MS, DEPTH_1S)}
    assert depth_ids and depth_ids <= ticker_ids


def test_trades_consume_the_opposite_side() -> None:
    """A taker order takes from the side it hits, within its prices, at most what it traded."""
    gen = SyntheticSymbol(spec_for("BTCUSDT"), 11, None, book=True)
    orders = 0
    for i in range(400):
        trades = [e.body for e in gen.step(T0 + i * 1000) if e.kind == TRADE]
        if not trades:
            continue
        orders += 1
        buy, prices = not trades[0]["m"], [parse8(t["p"]) for t in trades]
        assert gen.taken, "a taker order took nothing from the book"
        within = [p <= max(prices) if buy else p >= min(prices) for p, _ in gen.taken]
        assert all(within)
        assert 0 < sum(q for _, q in gen.taken) <= sum(parse8(t["q"]) for t in trades)
    assert orders > 50


def test_event_shape_is_binance_depth_update() -> None:
    """Keys e, E, s, U, u, b, a in Binance's order; prices and quantities 8-decimal strings."""
    _, _, out = drive("ETHUSDT", 2, 200)
    event = next(e for e, _ in out if e.kind == DEPTH_100MS)
    assert list(event.body) == ["e", "E", "s", "U", "u", "b", "a"]
    assert event.body["e"] == "depthUpdate" and event.body["s"] == "ETHUSDT"
    assert event.stream == "ethusdt@depth@100ms"
    levels = event.body["b"] + event.body["a"]
    assert levels and all(len(p.split(".")[1]) == 8 and len(q.split(".")[1]) == 8 for p, q in levels)
    assert event.payload(True).count(b'"E":' + str(event.times_us["E"]).encode()) == 1


def test_the_truth_answers_the_book_at_an_id_or_a_time() -> None:
    """book_at(u) is the first book plus the 100 ms events with u <= N; before the start it is None."""
    _, start, out = drive("BTCUSDT", 3, 500)
    truth = DepthTruth()
    truth.begin(start)
    depth = [(e, book) for e, book in out if e.kind == DEPTH_100MS]
    for event, _ in depth:
        truth.record(event)
    middle_event, middle_book = depth[len(depth) // 2]
    at = truth.book_at(middle_event.body["u"] + 1)
    assert at is not None and (at.bids, at.asks) == (middle_book.bids, middle_book.asks)
    assert at.update_id == middle_book.update_id
    by_time = truth.book_at(time_ms=middle_event.body["E"])
    assert by_time is not None and by_time.update_id >= middle_event.body["u"]
    assert truth.book_at(start.update_id - 1) is None
    assert truth.stats[DEPTH_100MS].generated == len(depth)
    assert truth.stats[DEPTH_100MS].first_U == start.update_id + 1
    assert truth.stats[DEPTH_100MS].last_u == depth[-1][0].body["u"]


def test_the_truth_keeps_a_window_and_folds_older_events_into_its_start() -> None:
    """With cap 5 the record holds 5 events; the latest book is still exact, older ids answer None."""
    _, start, out = drive("BTCUSDT", 4, 300)
    truth = DepthTruth(cap=5)
    truth.begin(start)
    depth = [(e, book) for e, book in out if e.kind == DEPTH_100MS]
    for event, _ in depth:
        truth.record(event)
    assert len(truth.diffs) == 5 and len(depth) > 10
    last_event, last_book = depth[-1]
    at = truth.book_at(last_event.body["u"])
    assert at is not None and (at.bids, at.asks) == (last_book.bids, last_book.asks)
    assert truth.book_at(depth[-7][0].body["u"]) is None
    oldest_kept = truth.book_at(depth[-6][0].body["u"])
    assert oldest_kept is not None and oldest_kept.bids == depth[-6][1].bids


def test_stream_drop_rules_never_see_depth_and_depth_drops_only_depth() -> None:
    """A drop rule keeps its count past depth events; drop_depth withholds depth of its speed only."""
    faults = Faults()
    faults.drops["BTCUSDT"] = DropRule(1.0, 2)
    faults.depth_drops[("BTCUSDT", DEPTH_100MS)] = 1
    fast = depth_event("BTCUSDT", DEPTH_100MS, T0, 5, 9, [], [])
    slow = depth_event("BTCUSDT", DEPTH_1S, T0, 5, 9, [], [])
    assert [faults.copies(slow), faults.copies(fast), faults.copies(fast)] == [1, 0, 1]
    assert faults.drops["BTCUSDT"].remaining == 2 and not faults.depth_drops
