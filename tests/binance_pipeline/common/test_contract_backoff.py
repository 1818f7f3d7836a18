"""binance_pipeline.common.backoff: the production path (no rng given), the exact draws, and the bounds."""

from __future__ import annotations

import random

import pytest

from binance_pipeline.common.backoff import Backoff


def test_without_an_rng_delays_are_jittered_in_their_band() -> None:
    """Production code passes no rng: delays still come, each in its exponential band."""
    backoff = Backoff(0.5, 4.0)
    delays = [backoff.next_delay() for _ in range(6)]
    bands = [(0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (2.0, 4.0), (2.0, 4.0)]
    assert all(low <= d <= high for d, (low, high) in zip(delays, bands, strict=True))
    assert backoff.attempt == 6


def test_the_given_rng_draws_every_delay() -> None:
    """A delay is rng.uniform(ceiling / 2, ceiling), so a seeded rng replays the same delays."""
    backoff, twin = Backoff(1.0, 8.0, random.Random(42)), random.Random(42)
    assert [backoff.next_delay() for _ in range(5)] == [
        twin.uniform(c / 2, c) for c in (1.0, 2.0, 4.0, 8.0, 8.0)
    ]


def test_delays_stop_doubling_after_32_attempts() -> None:
    """Under a huge cap the ceiling stays at initial * 2**32 instead of growing without end."""
    backoff = Backoff(1.0, 2.0**40, random.Random(0))
    for _ in range(40):
        delay = backoff.next_delay()
    assert 2.0**31 <= delay <= 2.0**32


def test_a_cap_equal_to_the_initial_delay_is_allowed() -> None:
    """initial == cap is a constant band [initial/2, initial]."""
    backoff = Backoff(2.0, 2.0, random.Random(3))
    assert all(1.0 <= backoff.next_delay() <= 2.0 for _ in range(5))


@pytest.mark.parametrize(("initial", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.999)])
def test_a_non_positive_initial_or_a_cap_below_it_is_rejected(initial: float, cap: float) -> None:
    """The bounds must satisfy 0 < initial <= cap."""
    with pytest.raises(ValueError, match=r"^need 0 < initial <= cap$"):
        Backoff(initial, cap)


def test_reset_returns_to_attempt_zero() -> None:
    """reset() sets the attempt count back to zero."""
    backoff = Backoff(1.0, 60.0, random.Random(1))
    backoff.next_delay()
    backoff.reset()
    assert backoff.attempt == 0
