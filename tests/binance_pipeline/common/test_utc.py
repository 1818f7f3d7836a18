"""binance_pipeline/common/utc.py: instants as integer microseconds, converted exactly both ways."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from binance_pipeline.common.utc import EPOCH, at_us, day_start_us, us_of


def test_the_epoch_is_utc_midnight_1970() -> None:
    assert EPOCH == datetime(1970, 1, 1, tzinfo=UTC) and EPOCH.utcoffset() == timedelta(0)


def test_a_known_instant_both_ways() -> None:
    moment = datetime(2024, 8, 8, 12, 30, 1, 123456, tzinfo=UTC)
    assert us_of(moment) == 1_723_120_201_123_456
    assert at_us(1_723_120_201_123_456) == moment and at_us(0).tzinfo is UTC
    assert at_us(-1) == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_another_zone_is_the_same_instant() -> None:
    moment = datetime(2024, 8, 8, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    assert us_of(moment) == us_of(datetime(2024, 8, 8, 12, 30, tzinfo=UTC))


def test_a_day_starts_at_its_utc_midnight() -> None:
    assert day_start_us(date(2024, 8, 8)) == 1_723_075_200_000_000
    assert type(day_start_us(date(1970, 1, 2))) is int and day_start_us(date(1970, 1, 2)) == 86_400_000_000


@given(st.integers(min_value=-6 * 10**16, max_value=6 * 10**16))  # years 69 .. 3871
def test_round_trip_is_exact(us: int) -> None:
    assert us_of(at_us(us)) == us
