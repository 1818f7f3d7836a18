"""Pure helpers: sliding-window budgets, loss ranges, gap records."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.limits import WindowBudget
from ingestion.losses import LossTracker
from ingestion.records import id_gap, resolve, time_gap


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 50), st.lists(st.tuples(st.floats(0, 5), st.integers(1, 60)), max_size=60))
def test_window_budget_never_exceeds_capacity(capacity: int, requests: list[tuple[float, int]]) -> None:
    """Waiting ``delay`` before spending keeps every window at or below capacity."""
    budget, now, spent = WindowBudget(capacity, 10.0), 0.0, []
    for gap, cost in requests:
        now += gap
        while (delay := budget.delay(cost, now)) > 0:  # what limits.acquire does
            now += delay
        budget.spend(cost, now)
        spent.append((now, min(cost, capacity)))
        assert budget.used(now) <= capacity
    for t, _ in spent:
        assert sum(c for at, c in spent if t < at + 10.0 and at <= t) <= capacity


def test_window_budget_block_until() -> None:
    """A server-imposed pause (429/418) delays every request until it ends."""
    budget = WindowBudget(100, 60.0)
    budget.block_until(30.0)
    assert budget.delay(1, 10.0) == 20.0 and budget.delay(1, 31.0) == 0.0


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


def test_gap_records_share_their_id() -> None:
    """Opening and resolving records share the stable gap_id; unrepairable says why."""
    rec = id_gap("BTCUSDT", "trade", 1001, 1050, "stream", now=7)
    assert rec["gap_id"] == "BTCUSDT/trade/ids/1001-1050" and rec["missing"] == 50 and rec["status"] == "open"
    fixed = resolve(rec, "repaired", 9)
    assert (fixed["gap_id"], fixed["status"], fixed["repaired_at"]) == (rec["gap_id"], "repaired", 9)
    lost = resolve(rec, "unrepairable", 9, 20, "REST no longer has ids 1001-1020")
    assert lost["missing"] == 20 and lost["reason"] == "stream: REST no longer has ids 1001-1020"
    window = time_gap("BTCUSDT", "bookTicker", 100, None, "reconnect", "open", 5)
    assert window["gap_id"] == "BTCUSDT/bookTicker/time/100" and window["kind"] == "time"
