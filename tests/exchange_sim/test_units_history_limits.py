"""Unit sniffing, history queries and rate limiters (pure)."""

from __future__ import annotations

import pytest

from exchange_sim.errors import RateLimitedError
from exchange_sim.faults import DropRule, Faults
from exchange_sim.history import IdSeries
from exchange_sim.market import spec_for
from exchange_sim.ratelimit import SlidingWindow, WeightLimiter
from exchange_sim.synthetic import SyntheticSymbol
from exchange_sim.units import epoch_to_us, float_seconds_to_us, fmt8, quote_qty


def test_epoch_units_are_sniffed() -> None:
    """Seconds, ms, us and ns epochs all map to the same microsecond value."""
    assert epoch_to_us(1723161254) == 1723161254_000000
    assert epoch_to_us(1723161254087) == 1723161254_087000
    assert epoch_to_us(1723161254087891) == 1723161254_087891
    assert epoch_to_us(1723161254087891268) == 1723161254_087891
    assert float_seconds_to_us("1617566591.326123") == 1617566591_326123


def test_number_formatting() -> None:
    """fmt8 and quote_qty are exact."""
    assert fmt8(6_701_235_000_000) == "67012.35000000"
    assert fmt8(5) == "0.00000005"
    assert quote_qty("0.2312", "2619.4") == "605.60528000"


def series() -> IdSeries:
    s = IdSeries(cap=1000)
    for i in range(100):
        s.append(500 + i, 1_000_000 + i * 10, (500 + i,))
    return s


def test_history_queries() -> None:
    """fromId, time range, end-only range and recent return ascending bounded rows."""
    s = series()
    assert [r[0] for r in s.from_id(590, 5)] == [590, 591, 592, 593, 594]
    assert [r[0] for r in s.from_id(598, 5)] == [598, 599]
    assert [r[0] for r in s.time_range(1_000_100, 1_000_130, 10)] == [510, 511, 512, 513]
    assert [r[0] for r in s.time_range(None, 1_000_130, 2)] == [512, 513]
    assert [r[0] for r in s.recent(3)] == [597, 598, 599]
    assert not s.append(599, 0, (599,))


def test_history_cap() -> None:
    """Past the cap the oldest rows go and queries still bisect correctly."""
    s = IdSeries(cap=10)
    for i in range(100):
        s.append(i, i, (i,))
    assert 10 <= len(s) <= 11
    assert s.from_id(0, 1)[0][0] == s.ids[0]


def test_sliding_window() -> None:
    """At most `limit` hits per window."""
    w = SlidingWindow(5, 1.0)
    assert all(w.hit(0.1 * i) for i in range(5))
    assert not w.hit(0.5)
    assert w.hit(1.45)


def test_weight_limiter_429_then_418() -> None:
    """Over the limit: 429 with Retry-After to the window end, then 418 after ban_after refusals."""
    lim = WeightLimiter(limit=100, window=60, ban_after=2, ban_seconds=120)
    assert lim.charge(50, 600.0) == 50
    assert lim.charge(50, 601.0) == 100
    for _ in range(2):
        with pytest.raises(RateLimitedError) as info:
            lim.charge(4, 610.0)
        assert (info.value.status, info.value.retry_after) == (429, 50)
    with pytest.raises(RateLimitedError) as info:
        lim.charge(4, 611.0)
    assert (info.value.status, info.value.retry_after) == (418, 120)
    with pytest.raises(RateLimitedError) as info:
        lim.charge(1, 700.0)
    assert info.value.status == 418
    assert lim.charge(1, 731.0) == 1


def test_drop_rule_share() -> None:
    """share 0.5 over 10 events drops exactly 5, every second one."""
    rule = DropRule(0.5, 10)
    assert [rule.take() for _ in range(10)] == [False, True] * 5


def test_faults_copies() -> None:
    """Drops and duplicates touch only their symbol and only `count` events."""
    faults = Faults()
    events = []
    gen = SyntheticSymbol(spec_for("BTCUSDT"), 1, None)
    while len(events) < 10:
        events.extend(gen.step(1))
    faults.drops["BTCUSDT"] = DropRule(1.0, 3)
    faults.duplicates["BTCUSDT"] = 2
    assert [faults.copies(e) for e in events[:7]] == [0, 0, 0, 2, 2, 1, 1]
