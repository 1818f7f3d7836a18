"""The query results' pure arithmetic (db.service.results): ratios, SMA, buckets, rollup split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from db.service.results import (
    BUCKET_ORIGIN_MINUTE,
    RATIO_PLACES,
    bucket_start,
    completeness_of,
    exact_ratio,
    moving_average,
    rollup_split,
    vwap,
)

D = Decimal
T = datetime(2026, 5, 6, 7, 0, tzinfo=UTC)  # a whole hour


def test_exact_ratio_rounds_half_to_even_at_twelve_places() -> None:
    """Rule 2: the exact quotient, rounded half-to-even, written with exactly 12 places."""
    assert RATIO_PLACES == 12
    assert exact_ratio(D(2), D(3)) == D("0.666666666667")
    assert str(exact_ratio(D(1), D(4))) == "0.250000000000"
    assert exact_ratio(D("0.0000000000005"), D(1)) == D(0)  # half, to the even 0
    assert exact_ratio(D("0.0000000000015"), D(1)) == D("0.000000000002")  # half, to the even 2
    assert exact_ratio(D(1), D(8), places=2) == D("0.12")
    assert str(exact_ratio(D(1), D(8), places=2)) == "0.12"


def test_exact_ratio_keeps_every_digit_of_a_large_value() -> None:
    """A 100-digit context: no digit of a large price is lost to rounding."""
    big = D("99999999999999999999.123456789012")
    assert exact_ratio(big, D(1)) == big
    assert str(exact_ratio(big, D(1))) == "99999999999999999999.123456789012"


def test_vwap_is_the_exact_ratio_and_none_without_volume() -> None:
    """Quote volume over volume; no volume gives None, not a division error."""
    assert vwap(D("300.5"), D(3)) == D("100.166666666667")
    assert vwap(D(5), D(0)) is None


def test_moving_average_waits_for_a_full_window() -> None:
    """None until ``window`` closes exist, then the mean of the last ``window``."""
    closes = [D(1), D(2), D(3), D(4), D(6)]
    assert moving_average(closes, 3) == [None, None, D(2), D(3), D("4.333333333333")]
    assert moving_average(closes, 1) == closes
    assert moving_average([], 2) == []


def test_moving_average_is_none_while_a_missing_close_is_in_the_window() -> None:
    """A None close blanks every window that holds it, and only those."""
    closes = [D(1), None, D(3), D(5), D(7), D(9)]
    assert moving_average(closes, 2) == [None, None, None, D(4), D(6), D(8)]
    assert moving_average([None, D(2), D(4)], 2) == [None, None, D(3)]


def test_moving_average_subtracts_the_close_leaving_the_window() -> None:
    """The running sum drops the oldest close exactly."""
    closes = [D("0.1"), D("0.2"), D("0.3"), D("0.4")]
    assert moving_average(closes, 2) == [None, D("0.15"), D("0.25"), D("0.35")]


def test_bucket_start_counts_whole_widths_from_the_origin() -> None:
    """The bucket holding a time starts a whole number of widths after the origin."""
    width = timedelta(minutes=5)
    origin = datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert bucket_start(datetime(2026, 1, 1, 0, 13, 59, tzinfo=UTC), width, origin) == origin + 2 * width
    assert bucket_start(origin + width, width, origin) == origin + width
    assert bucket_start(origin - timedelta(seconds=1), width, origin) == origin - width
    assert BUCKET_ORIGIN_MINUTE == datetime(2000, 1, 3, tzinfo=UTC)


def test_rollup_split_uses_hours_minutes_and_raw_edges() -> None:
    """[start, end) cut into raw edges, whole minutes and whole hours, disjoint and covering."""
    start = T - timedelta(minutes=2, seconds=30)  # 06:57:30
    end = T + timedelta(hours=2, minutes=3, seconds=15)  # 09:03:15
    m0, h1 = T - timedelta(minutes=2), T + timedelta(hours=2)
    m1 = T + timedelta(hours=2, minutes=3)
    assert rollup_split(start, end) == {
        "a0": start, "a1": m0, "m0": m0, "h0": T, "h1": h1, "m1": m1, "b0": m1, "b1": end,
    }  # fmt: skip


def test_rollup_split_without_hours_uses_minutes_only() -> None:
    """hours=False: the hour piece is empty at the last whole minute."""
    start, end = T - timedelta(minutes=2, seconds=30), T + timedelta(hours=2, minutes=3, seconds=15)
    got = rollup_split(start, end, hours=False)
    m1 = T + timedelta(hours=2, minutes=3)
    assert (got["m0"], got["h0"], got["h1"], got["m1"]) == (T - timedelta(minutes=2), m1, m1, m1)


def test_rollup_split_of_whole_minutes_has_no_raw_edges() -> None:
    """Edges on whole minutes give empty raw pieces; no whole hour leaves the hour piece empty."""
    start, end = T + timedelta(minutes=1), T + timedelta(minutes=4)
    assert rollup_split(start, end) == {
        "a0": start, "a1": start, "m0": start, "h0": end, "h1": end, "m1": end, "b0": end, "b1": end,
    }  # fmt: skip


def test_rollup_split_of_exact_hours_is_all_hours() -> None:
    """start and end on whole hours: every row comes from the hourly rollup."""
    end = T + timedelta(hours=3)
    got = rollup_split(T, end)
    assert (got["a0"], got["a1"], got["m0"], got["h0"], got["h1"], got["m1"], got["b0"], got["b1"]) == (
        T,
        T,
        T,
        T,
        end,
        end,
        end,
        end,
    )


def test_rollup_split_inside_one_minute_is_all_raw() -> None:
    """No whole minute fits: everything is the raw edge [start, end)."""
    start, end = T + timedelta(seconds=10), T + timedelta(seconds=50)
    assert rollup_split(start, end) == {
        "a0": start, "a1": end, "m0": start, "h0": start, "h1": start, "m1": start, "b0": start, "b1": start,
    }  # fmt: skip


def test_rollup_split_of_an_empty_or_inverted_range_is_empty() -> None:
    """end <= start: one empty raw piece at start."""
    got = rollup_split(T + timedelta(minutes=5), T)
    assert got == dict.fromkeys(("a0", "a1", "m0", "h0", "h1", "m1", "b0", "b1"), T + timedelta(minutes=5))
    assert rollup_split(T, T) == dict.fromkeys(("a0", "a1", "m0", "h0", "h1", "m1", "b0", "b1"), T)


def test_rollup_split_of_exactly_one_whole_minute() -> None:
    """m0 == m1 is still a (empty) minute split, not the all-raw case."""
    start, end = T + timedelta(seconds=30), T + timedelta(minutes=1, seconds=30)
    got = rollup_split(start, end)
    minute = T + timedelta(minutes=1)
    assert (got["a1"], got["m0"], got["m1"], got["b0"], got["b1"]) == (minute, minute, minute, minute, end)


def test_rollup_split_with_no_whole_hour_inside_keeps_the_hour_cut() -> None:
    """Minutes across an hour mark with no whole hour: the empty hour piece sits at that mark."""
    start, end = T - timedelta(minutes=1, seconds=30), T + timedelta(minutes=1, seconds=30)
    got = rollup_split(start, end)
    assert (got["m0"], got["h0"], got["h1"], got["m1"]) == (
        T - timedelta(minutes=1),
        T,
        T,
        T + timedelta(minutes=1),
    )


def test_completeness_of_puts_open_gaps_first() -> None:
    """Open gaps outrank unrepairable ones, which outrank repaired ones; no gap record: complete."""
    assert completeness_of(1, 5, 5) == "open gaps"
    assert completeness_of(0, 5, 1) == "unrepairable gaps"
    assert completeness_of(0, 1, 0) == "repaired"
    assert completeness_of(0, 0, 0) == "complete"
