"""Sliding-window budgets that keep ingestion under Binance's limits (pure, clock passed in).

One class serves every limit, configured as data (``BUDGETS``-style constants below):
  - connection attempts: under 300 per 5 minutes per IP (we allow 290);
  - outgoing control messages: under 5 per second per connection (we allow 3, + ping/pong);
  - REST request weight: ``REST_WEIGHT_BUDGET_PER_MIN`` per 60 s, plus a hard pause after a
    429 (``Retry-After``) or 418 (ban).

Rules:
  1. ``delay(cost, now)`` never spends; ``spend(cost, now)`` always does. Callers sleep
     ``delay`` seconds, then spend: the sum spent in any window of ``window`` seconds stays
     at or below ``capacity`` (property-tested).
  2. A cost above the capacity is clamped to it, so a single request can always proceed.
  3. ``block_until(t)`` makes ``delay`` at least ``t - now`` (server-imposed pauses).
  4. ``acquire`` (sleep, then spend) is the only function here that awaits.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

CONNECT_ATTEMPTS = (290, 300.0)  # (capacity, window s): Binance allows 300 per 5 minutes
# Binance disconnects above 5 incoming messages per second, pings and pongs included: 3 control
# messages leave room for the pong to the server's ping and the client's own keepalive ping.
CONTROL_MESSAGES = (3, 1.0)
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

    def block_until(self, until: float) -> None:
        self._blocked_until = max(self._blocked_until, until)

    def used(self, now: float) -> int:
        self._expire(now)
        return self._total


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
