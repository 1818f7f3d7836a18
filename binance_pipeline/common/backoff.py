"""Retry policy as data: a jittered exponential backoff generator.

Rule: the generator only computes delays; callers sleep. ``reset()`` after a success (for a
connection: after it has been stable for a while) starts again from the first delay.
"""

from __future__ import annotations

import random


class Backoff:
    """Full-jitter exponential backoff: delay n is uniform in [initial*2^n/2, min(cap, initial*2^n)]."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        if initial <= 0 or cap < initial:
            raise ValueError("need 0 < initial <= cap")
        self.initial, self.cap = initial, cap
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.initial * (2 ** min(self.attempt, 32)))
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
