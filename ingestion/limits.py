"""Sliding-window budgets that keep ingestion under Binance's limits (pure, clock passed in).

One class serves every limit, configured as data (``BUDGETS``-style constants below):
  - connection attempts: under 300 per 5 minutes per IP (we allow 290);
  - outgoing control messages: under 5 per second per connection (we allow 4);
  - REST request weight: ``REST_WEIGHT_BUDGET_PER_MIN`` per 60 s, plus a hard pause after a
    429 (``Retry-After``) or 418 (ban).

Rules:
  1. ``delay(cost, now)`` never spends; ``spend(cost, now)`` always does. Callers sleep
     ``delay`` seconds, then spend: the sum spent in any window of ``window`` seconds stays
     at or below ``capacity`` (property-tested).
  2. A cost above the capacity is clamped to it, so a single request can always proceed.
  3. ``block_until(t)`` makes ``delay`` at least ``t - now`` (server-imposed pauses).
  4. ``acquire`` (sleep, then spend) is the only function here that awaits.
  5. ``observe_used(used, now)`` takes the exchange's own count for this IP
     (``X-MBX-USED-WEIGHT-1M``): weight it reports beyond what this budget spent was spent by
     another process on the same IP (live backfill and a history import), and is charged here
     too. So every process that observes the header stays within one shared budget.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping

CONNECT_ATTEMPTS = (290, 300.0)  # (capacity, window s): Binance allows 300 per 5 minutes
CONTROL_MESSAGES = (4, 1.0)  # Binance disconnects above 5 incoming messages per second
WEIGHT_WINDOW_S = 60.0


class WindowBudget:
    """At most ``capacity`` units spent in any ``window`` seconds."""

    def __init__(self, capacity: int, window: float) -> None:
        if capacity < 1 or window <= 0:
            raise ValueError("need capacity >= 1 and window > 0")
        self.capacity, self.window = capacity, window
        self._spent: deque[tuple[float, int]] = deque()
        self._total = 0
        self._blocked_until = 0.0

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] + self.window <= now:  # same sum as in delay()
            self._total -= self._spent.popleft()[1]

    def delay(self, cost: int, now: float) -> float:
        """Seconds to wait before ``cost`` units may be spent (0 when they may be now)."""
        cost = min(cost, self.capacity)
        self._expire(now)
        wait = max(0.0, self._blocked_until - now)
        excess = self._total + cost - self.capacity
        for at, units in self._spent:
            if excess <= 0:
                break
            excess -= units
            wait = max(wait, at + self.window - now)
        return wait

    def spend(self, cost: int, now: float) -> None:
        cost = min(cost, self.capacity)
        self._expire(now)
        self._spent.append((now, cost))
        self._total += cost

    def observe_used(self, used: int, now: float) -> None:
        """Rule 5: charge the weight the exchange counted that this budget did not spend."""
        self._expire(now)
        if used > self._total:
            self.spend(used - self._total, now)

    def block_until(self, until: float) -> None:
        self._blocked_until = max(self._blocked_until, until)

    def used(self, now: float) -> int:
        self._expire(now)
        return self._total


def observe_used_weight(budget: WindowBudget, headers: Mapping[str, str]) -> None:
    """Feed a REST answer's ``X-MBX-USED-WEIGHT-1M`` header (if any) to ``budget`` (Rule 5)."""
    text = headers.get("X-MBX-USED-WEIGHT-1M", "")
    if text.isdigit():
        budget.observe_used(int(text), time.monotonic())


async def acquire(budget: WindowBudget, cost: int) -> float:
    """Wait until ``cost`` units may be spent, spend them; returns the seconds waited."""
    waited = 0.0
    while True:
        delay = budget.delay(cost, time.monotonic())
        if delay <= 0:
            break
        waited += delay
        await asyncio.sleep(delay)
    budget.spend(cost, time.monotonic())
    return waited
