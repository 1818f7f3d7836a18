"""ingestion.models' helpers: epoch times normalised to microseconds, zero decimals found."""

from __future__ import annotations

from ingestion.models import MS_BELOW, is_positive, to_us


def test_to_us_scales_milliseconds_and_keeps_microseconds() -> None:
    """Rule 3: below 10^14 a time is milliseconds (times 1000); from 10^14 on it is microseconds."""
    assert MS_BELOW == 10**14
    assert to_us(1_700_000_000_123) == 1_700_000_000_123_000
    assert to_us(MS_BELOW - 1) == (MS_BELOW - 1) * 1000
    assert to_us(MS_BELOW) == MS_BELOW
    assert to_us(1_700_000_000_123_456) == 1_700_000_000_123_456


def test_is_positive_is_false_only_for_zero() -> None:
    """ "0", "0.00000000" and "000" are zero; any other digit makes it positive."""
    assert [is_positive(s) for s in ("0", "0.00000000", "000", "0.0")] == [False] * 4
    assert [is_positive(s) for s in ("0.00000001", "10", "1.0", "100.00")] == [True] * 4
