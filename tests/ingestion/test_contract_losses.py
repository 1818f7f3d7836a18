"""ingestion.losses: lost events fold into ranges per (symbol, stream, reason), counted once."""

from __future__ import annotations

from ingestion.losses import LossTracker, LostRange


def test_each_loss_is_counted_in_total() -> None:
    """``total`` counts every loss, whichever range it joined."""
    tracker = LossTracker()
    for ident in (1, 2, 9):
        tracker.lost("BTCUSDT", "trade", ident, 10, "producer_overflow", now=0)
    tracker.lost("BTCUSDT", "bookTicker", None, 10, "delivery_failed", now=0)
    assert tracker.total == 4


def test_ranges_of_different_symbols_never_merge() -> None:
    """Consecutive ids of two symbols stay two ranges, each with its own symbol, stream and reason."""
    tracker = LossTracker()
    tracker.lost("BTCUSDT", "trade", 1, 100, "producer_overflow", now=0)
    tracker.lost("ETHUSDT", "trade", 2, 101, "producer_overflow", now=0)
    assert tracker.drain(now=50, quiet=50) == [
        LostRange("BTCUSDT", "trade", "producer_overflow", 1, 1, 100, 100, 1, 0),
        LostRange("ETHUSDT", "trade", "producer_overflow", 2, 2, 101, 101, 1, 0),
    ]


def test_ranges_of_different_streams_or_reasons_never_merge() -> None:
    """The same symbol's losses split by stream and by reason."""
    tracker = LossTracker()
    tracker.lost("BTCUSDT", "trade", 1, 5, "producer_overflow", now=0)
    tracker.lost("BTCUSDT", "aggTrade", 2, 5, "producer_overflow", now=0)
    tracker.lost("BTCUSDT", "trade", 2, 5, "delivery_failed", now=0)
    keys = [(r.symbol, r.stream, r.reason, r.first_id, r.count) for r in tracker.drain(now=9, quiet=1)]
    assert keys == [
        ("BTCUSDT", "trade", "producer_overflow", 1, 1),
        ("BTCUSDT", "aggTrade", "producer_overflow", 2, 1),
        ("BTCUSDT", "trade", "delivery_failed", 2, 1),
    ]


def test_an_extended_range_keeps_its_first_id_and_spans_the_receipt_times() -> None:
    """Growing a range moves last_id and widens [start_time, end_time] whichever order times come in."""
    tracker = LossTracker()
    for ident, at in ((7, 500), (8, 300), (9, 900)):
        tracker.lost("BTCUSDT", "aggTrade", ident, at, "delivery_failed", now=ident)
    assert tracker.drain(now=19, quiet=10) == [
        LostRange("BTCUSDT", "aggTrade", "delivery_failed", 7, 9, 300, 900, 3, 9)
    ]


def test_a_jump_closes_the_range_which_drains_at_once() -> None:
    """A non-consecutive id closes the open range: it drains even inside the quiet period."""
    tracker = LossTracker()
    tracker.lost("BTCUSDT", "trade", 1, 10, "producer_overflow", now=100)
    tracker.lost("BTCUSDT", "trade", 3, 30, "producer_overflow", now=100)
    assert [(r.first_id, r.last_id) for r in tracker.drain(now=100, quiet=1000)] == [(1, 1)]
    assert tracker and tracker.drain(now=100, quiet=1000) == []


def test_an_id_after_a_window_without_ids_starts_a_new_range() -> None:
    """An id loss never extends a range of id-less losses, nor the reverse."""
    tracker = LossTracker()
    tracker.lost("BTCUSDT", "trade", None, 1, "delivery_failed", now=0)
    tracker.lost("BTCUSDT", "trade", 5, 2, "delivery_failed", now=0)
    tracker.lost("BTCUSDT", "trade", None, 3, "delivery_failed", now=0)
    assert [(r.first_id, r.count) for r in tracker.drain(now=0, quiet=0)] == [(None, 1), (5, 1), (None, 1)]


def test_an_open_range_drains_exactly_when_quiet_for_the_period() -> None:
    """An open range drains at ``touched + quiet``, not one microsecond earlier."""
    tracker = LossTracker()
    tracker.lost("BTCUSDT", "trade", 1, 10, "producer_overflow", now=100)
    assert tracker.drain(now=149, quiet=50) == []
    assert [r.first_id for r in tracker.drain(now=150, quiet=50)] == [1]
    assert not tracker


def test_an_empty_tracker_is_false() -> None:
    """A tracker with no range, open or closed, is falsy; one loss makes it true."""
    tracker = LossTracker()
    assert not tracker
    tracker.lost("BTCUSDT", "bookTicker", None, 1, "delivery_failed", now=0)
    assert tracker


def test_loss_tracker_folds_consecutive_ids_and_times() -> None:
    """Consecutive lost ids form one range; a jump starts another; quiet ranges drain once."""
    t2 = LossTracker()
    for i in (5, 6, 7, 10):
        t2.lost("BTCUSDT", "trade", i, 1000 + i, "producer_overflow", now=0)
    closed = t2.drain(now=10, quiet=100)
    assert [(r.first_id, r.last_id, r.count) for r in closed] == [(5, 7, 3)]
    later = t2.drain(now=200, quiet=100)
    assert [(r.first_id, r.last_id) for r in later] == [(10, 10)] and not t2


def test_loss_tracker_book_windows() -> None:
    """bookTicker losses (no ids) become one time window from first to last receipt."""
    t = LossTracker()
    for at in (50, 40, 70):
        t.lost("BTCUSDT", "bookTicker", None, at, "delivery_failed", now=0)
    [r] = t.drain(now=500, quiet=100)
    assert (r.start_time, r.end_time, r.count, r.first_id) == (40, 70, 3, None)
