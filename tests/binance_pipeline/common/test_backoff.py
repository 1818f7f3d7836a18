"""Backoff: jittered exponential delays from the initial delay to the cap, reset after success."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from binance_pipeline.common.backoff import Backoff


@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=1, max_value=60))
def test_delays_stay_within_their_exponential_band(seed: int, steps: int) -> None:
    """Delay n lies in [c/2, c] with c = min(cap, initial * 2^n)."""
    b = Backoff(1.0, 60.0, random.Random(seed))
    for n in range(steps):
        ceiling = min(60.0, 2.0**n)
        assert ceiling / 2 <= b.next_delay() <= ceiling


def test_reset_starts_again_from_the_first_delay() -> None:
    """After reset the next delay is back in the first band."""
    b = Backoff(1.0, 60.0, random.Random(1))
    for _ in range(10):
        b.next_delay()
    b.reset()
    assert 0.5 <= b.next_delay() <= 1.0


def test_invalid_bounds_are_rejected() -> None:
    """A cap below the initial delay is a programming error."""
    with pytest.raises(ValueError, match="initial"):
        Backoff(5.0, 1.0)
