"""The simulator's order book: levels, taker orders, and diffs that rebuild a book exactly (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_sim.book import ASK, BID, OrderBook, diff, from_snapshot, wire

PRICES = st.integers(1, 40).map(lambda tick: 6_700_000_000_000 + tick * 1_000_000)
QTYS = st.integers(0, 5).map(lambda lots: lots * 1_000)
SIDES = st.sampled_from([BID, ASK])
OPS = st.lists(st.tuples(st.sampled_from(["set", "add", "cancel", "take"]), SIDES, PRICES, QTYS), max_size=40)


def run_ops(book: OrderBook, ops: list[tuple[str, str, int, int]]) -> None:
    for op, side, price, qty in ops:
        if op == "take":
            book.take(side == ASK, qty, price)
        else:
            getattr(book, op)(side, price, qty)


@given(OPS, OPS)
@settings(max_examples=200, deadline=None)
def test_diffs_applied_to_a_snapshot_rebuild_the_book(first: list, second: list) -> None:  # type: ignore[type-arg]
    """A snapshot of book A plus the wire diff A -> B gives exactly B, and only changed levels are sent."""
    book = OrderBook(update_id=10)
    run_ops(book, first)
    before = book.copy()
    run_ops(book, second)
    book.update_id = 20
    bids, asks = diff(before, book)
    local = from_snapshot(10, wire(before.levels(BID)), wire(before.levels(ASK)))
    local.apply(wire(bids), wire(asks), 20)
    assert (local.bids, local.asks, local.update_id) == (book.bids, book.asks, 20)
    assert all(before.bids.get(p, 0) != q for p, q in bids)
    assert all(before.asks.get(p, 0) != q for p, q in asks)


@given(OPS, OPS, OPS)
@settings(max_examples=200, deadline=None)
def test_touched_changes_rebuild_the_book_from_any_moment_inside_the_interval(
    first: list, second: list, third: list  # type: ignore[type-arg]
) -> None:
    """The touched levels of an interval, applied to the book at its start or mid-way, give its end."""
    book = OrderBook(update_id=1)
    run_ops(book, first)
    touched = book.watch()
    start = book.copy()
    run_ops(book, second)
    middle = book.copy()  # a snapshot taken inside the interval
    run_ops(book, third)
    bids, asks = book.changes(touched)
    for base in (start, middle):
        local = from_snapshot(base.update_id, wire(base.levels(BID)), wire(base.levels(ASK)))
        local.apply(wire(bids), wire(asks), 9)
        assert (local.bids, local.asks) == (book.bids, book.asks)
    touched.clear()
    assert book.changes(touched) == ([], [])


def test_a_level_changed_and_restored_is_still_sent() -> None:
    """A level that changes and changes back within an interval is listed (a mid snapshot saw it)."""
    book = OrderBook()
    book.set(ASK, 101, 5)
    touched = book.watch()
    book.set(ASK, 101, 2)
    book.set(ASK, 101, 5)
    book.set(BID, 100, 0)  # no change: not touched
    assert book.changes(touched) == ([], [(101, 5)])
    assert diff(book, book) == ([], [])


@given(OPS)
@settings(max_examples=100, deadline=None)
def test_levels_stay_positive_and_ordered(ops: list) -> None:  # type: ignore[type-arg]
    """No level holds zero; bids come best (highest) first, asks best (lowest) first."""
    book = OrderBook()
    run_ops(book, ops)
    assert all(q > 0 for q in [*book.bids.values(), *book.asks.values()])
    bid_prices = [p for p, _ in book.levels(BID)]
    ask_prices = [p for p, _ in book.levels(ASK)]
    assert bid_prices == sorted(bid_prices, reverse=True) and ask_prices == sorted(ask_prices)
    assert book.best(BID) == (book.levels(BID)[:1] or [None])[0]
    assert book.best(ASK) == (book.levels(ASK)[:1] or [None])[0]


def test_a_taker_buy_consumes_asks_from_the_top_up_to_its_limit() -> None:
    """A buy fills the lowest asks first, empties them, and stops at its limit price."""
    book = OrderBook()
    book.set(ASK, 101, 5)
    book.set(ASK, 102, 5)
    book.set(ASK, 103, 5)
    book.set(BID, 100, 7)
    assert book.take(True, 12, 102) == [(101, 5), (102, 5)]
    assert book.asks == {103: 5} and book.bids == {100: 7}
    assert book.take(False, 3, 100) == [(100, 3)]
    assert book.best(BID) == (100, 4)


def test_removed_levels_are_sent_with_quantity_zero() -> None:
    """A level gone from the book appears in the diff with "0.00000000"; unchanged ones do not."""
    before = OrderBook()
    before.set(BID, 100_000_000, 2_000)
    before.set(BID, 99_000_000, 1_000)
    after = before.copy()
    after.cancel(BID, 100_000_000, 5_000)
    after.add(ASK, 101_000_000, 300)
    bids, asks = diff(before, after)
    assert wire(bids) == [["1.00000000", "0.00000000"]]
    assert wire(asks) == [["1.01000000", "0.00000300"]]


def test_a_negative_quantity_is_refused() -> None:
    """Setting a negative quantity or a non-positive price raises ValueError and changes nothing."""
    book = OrderBook()
    with pytest.raises(ValueError, match="bad level"):
        book.set(BID, 100, -1)
    with pytest.raises(ValueError, match="bad level"):
        book.set(ASK, 0, 1)
    assert book.bids == {} and book.asks == {}
