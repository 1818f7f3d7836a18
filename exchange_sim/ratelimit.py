"""Rate limits: sliding-window counters and the REST weight limiter (pure, clock passed in).

Rule 1: a :class:`SlidingWindow` admits at most ``limit`` hits in any ``window`` seconds.
Rule 2: REST weight is counted in fixed windows aligned to multiples of ``window`` (Binance
        counts per clock minute). A request that would exceed the limit is refused with 429 and
        adds no weight; ``Retry-After`` is the time left in the window, rounded up.
Rule 3: more than ``ban_after`` refusals in one window ban the client for ``ban_seconds``;
        while banned every request gets 418 with ``Retry-After`` the ban's remaining time.
"""

from __future__ import annotations

import math
from collections import deque

from exchange_sim.errors import RateLimitedError


class SlidingWindow:
    """At most ``limit`` hits per ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.hits: deque[float] = deque()

    def hit(self, now: float) -> bool:
        """Record a hit at ``now``; False when it exceeds the limit (it is still counted)."""
        hits = self.hits
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        hits.append(now)
        return len(hits) <= self.limit

    def retry_after(self, now: float) -> int:
        """Whole seconds until the oldest hit leaves the window."""
        return max(1, math.ceil(self.hits[0] + self.window - now)) if self.hits else 0


class WeightLimiter:
    """Binance-style request-weight accounting with 429 then 418."""

    def __init__(self, limit: int, window: float, ban_after: int, ban_seconds: float) -> None:
        self.limit = limit
        self.window = window
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self.window_start = 0.0
        self.used = 0
        self.refusals = 0
        self.banned_until = 0.0

    def _roll(self, now: float) -> None:
        start = math.floor(now / self.window) * self.window
        if start != self.window_start:
            self.window_start, self.used, self.refusals = start, 0, 0

    def charge(self, weight: int, now: float) -> int:
        """Add ``weight``; return the weight used in this window, or raise RateLimitedError."""
        if now < self.banned_until:
            raise RateLimitedError(self._ban_msg(), 418, math.ceil(self.banned_until - now))
        self._roll(now)
        if self.used + weight <= self.limit:
            self.used += weight
            return self.used
        self.refusals += 1
        if self.refusals > self.ban_after:
            self.banned_until = now + self.ban_seconds
            raise RateLimitedError(self._ban_msg(), 418, math.ceil(self.ban_seconds))
        retry = max(1, math.ceil(self.window_start + self.window - now))
        msg = (
            f"Too much request weight used; current limit is {self.limit} request weight per "
            f"{self.window:g} SECOND. Please use WebSocket Streams for live updates to avoid polling the API."
        )
        raise RateLimitedError(msg, 429, retry)

    def used_now(self, now: float) -> int:
        """Weight used in the current window."""
        self._roll(now)
        return self.used

    def _ban_msg(self) -> str:
        until = int(self.banned_until * 1000)
        return (
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
