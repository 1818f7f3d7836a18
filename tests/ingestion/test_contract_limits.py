"""ingestion.limits: a budget waits exactly as long as it must, and no longer."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.limits import (
    CONNECT_ATTEMPTS,
    CONTROL_MESSAGES,
    WEIGHT_WINDOW_S,
    WindowBudget,
    acquire,
    observe_used_weight,
)


def test_the_limits_stay_under_binance_s() -> None:
    """Connection attempts stay under 300 per 5 minutes, control messages under 5 per second."""
    assert CONNECT_ATTEMPTS == (290, 300.0) and CONTROL_MESSAGES == (3, 1.0)
    assert WEIGHT_WINDOW_S == 60.0


@pytest.mark.parametrize(("capacity", "window"), [(0, 1.0), (1, 0.0), (5, -1.0)])
def test_an_empty_capacity_or_window_is_rejected(capacity: int, window: float) -> None:
    """A budget needs capacity >= 1 and a positive window."""
    with pytest.raises(ValueError, match=r"^need capacity >= 1 and window > 0$"):
        WindowBudget(capacity, window)


def test_the_smallest_budget_is_accepted() -> None:
    """Capacity 1 over any positive window is a valid budget that is free at first."""
    assert WindowBudget(1, 0.001).delay(1, 0.0) == 0.0


def test_a_fresh_budget_spends_up_to_its_capacity_without_waiting() -> None:
    """While the window holds fewer than capacity units, the wait is zero."""
    budget = WindowBudget(10, 60.0)
    budget.spend(6, 0.0)
    assert budget.delay(4, 1.0) == 0.0 and budget.used(1.0) == 6


def test_the_wait_ends_when_just_enough_units_expire() -> None:
    """The wait is until the oldest spend that frees enough units leaves the window."""
    budget = WindowBudget(10, 60.0)
    budget.spend(6, 0.0)
    budget.spend(4, 10.0)
    assert budget.delay(1, 20.0) == 40.0  # the 6 units of t=0 suffice
    assert budget.delay(6, 20.0) == 40.0
    assert budget.delay(7, 20.0) == 50.0  # the 4 units of t=10 must go too


def test_units_leave_the_window_exactly_at_its_end() -> None:
    """A spend at t counts until t + window, exclusive."""
    budget = WindowBudget(10, 60.0)
    budget.spend(10, 0.0)
    assert budget.used(59.999) == 10 and budget.delay(1, 59.5) == 0.5
    assert budget.used(60.0) == 0 and budget.delay(10, 60.0) == 0.0


def test_a_cost_above_capacity_is_clamped() -> None:
    """A request larger than the capacity waits for an empty window and spends the capacity."""
    budget = WindowBudget(10, 60.0)
    assert budget.delay(50, 0.0) == 0.0
    budget.spend(50, 0.0)
    assert budget.used(0.0) == 10 and budget.delay(50, 30.0) == 30.0


def test_a_block_only_ever_lengthens() -> None:
    """A later block_until extends a pause; an earlier one does not shorten it."""
    budget = WindowBudget(10, 60.0)
    budget.block_until(30.0)
    budget.block_until(10.0)
    assert budget.delay(1, 0.0) == 30.0
    budget.spend(10, 0.0)
    assert budget.delay(1, 20.0) == 40.0  # the window, longer than the block, decides


def test_weight_counted_by_the_exchange_is_charged_once() -> None:
    """Only the reported weight beyond what this budget spent is charged; a lower report changes nothing."""
    budget = WindowBudget(100, 60.0)
    budget.spend(10, 0.0)
    budget.observe_used(25, 1.0)
    assert budget.used(1.0) == 25
    budget.observe_used(5, 2.0)
    budget.observe_used(25, 2.0)
    assert budget.used(2.0) == 25
    assert budget.used(61.0) == 0  # both charges expire with their own window


def test_the_used_weight_header_feeds_the_budget() -> None:
    """A numeric X-MBX-USED-WEIGHT-1M header is charged; a missing or malformed one is ignored."""
    budget = WindowBudget(1000, 3600.0)
    observe_used_weight(budget, {})
    observe_used_weight(budget, {"X-MBX-USED-WEIGHT-1M": "12a"})
    assert budget.used(time.monotonic()) == 0
    observe_used_weight(budget, {"X-MBX-USED-WEIGHT-1M": "40"})
    assert budget.used(time.monotonic()) == 40


def test_acquire_spends_at_once_when_free_and_waits_when_full() -> None:
    """acquire returns 0 s on a free budget; on a full one it sleeps until the window frees a unit."""
    budget = WindowBudget(2, 0.2)

    async def run() -> tuple[float, float, float]:
        free = await acquire(budget, 1)
        await acquire(budget, 1)
        start = time.monotonic()
        waited = await acquire(budget, 1)
        return free, waited, time.monotonic() - start

    free, waited, elapsed = asyncio.run(run())
    assert free == 0.0 and 0.1 < waited <= 0.2 + 0.05 and elapsed >= waited - 0.01
    assert budget.used(time.monotonic()) >= 1


def test_acquire_counts_a_pause_extended_while_it_sleeps() -> None:
    """A 429 arriving mid-wait extends the pause; acquire reports both waits, not only the last."""
    budget = WindowBudget(10, 60.0)

    async def run() -> float:
        start = time.monotonic()
        budget.block_until(start + 0.3)
        waiter = asyncio.create_task(acquire(budget, 1))
        await asyncio.sleep(0.1)
        budget.block_until(start + 0.6)
        return await waiter

    assert asyncio.run(run()) >= 0.5


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
