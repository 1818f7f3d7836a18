"""The audit's shortcut, pure (db.store.audit_cover): whole minutes, agreeing minutes, the id walk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from db.store import audit_cover as ac

D = Decimal
M = datetime(2024, 5, 1, 12, 7, tzinfo=UTC)


def cov(ids: list[int], qty: str = "1", bucket: datetime = M) -> ac.Coverage:
    """A trade minute of these ids (each of quantity ``qty``, weight 1)."""
    q = D(qty)
    return ac.Coverage(bucket, len(ids), q * len(ids), min(ids), max(ids), D(sum(ids)),
                       D(sum((i & 0xFFFFF) ** 2 for i in ids)), D(len(ids)), min(ids), max(ids), D(sum(ids)),
                       D(len(ids)), q * len(ids))


def test_whole_minutes_are_those_inside_the_range() -> None:
    """Partial minutes at either edge are left out; a range inside one minute has none."""
    assert ac.whole_minutes(M, M + timedelta(minutes=3)) == (M, M + timedelta(minutes=3))
    assert ac.whole_minutes(M + timedelta(seconds=1), M + timedelta(minutes=3, seconds=59)) == (
        M + timedelta(minutes=1), M + timedelta(minutes=3))
    assert ac.whole_minutes(M + timedelta(seconds=1), M + timedelta(seconds=59)) is None
    assert ac.whole_minutes(M + timedelta(seconds=1), M + timedelta(minutes=2)) == (
        M + timedelta(minutes=1), M + timedelta(minutes=2))


def test_a_minute_of_consecutive_ids_is_whole() -> None:
    """n ids from id_min to id_max, each once: whole."""
    assert ac.is_whole(cov(list(range(100, 120))))
    assert ac.is_whole(cov([7]))
    assert ac.is_whole(cov([-2, -1, 0, 1]))  # across a multiple of 2^20
    assert ac.is_whole(cov(list(range(2**20 - 3, 2**20 + 5))))
    assert ac.is_whole(cov(list(range(5 * 2**20 - 7, 5 * 2**20 + 2**21))))


def test_a_hole_or_a_duplicate_makes_a_minute_not_whole() -> None:
    """A hole, a duplicate, and a duplicate that takes a hole's place are all seen."""
    assert not ac.is_whole(cov([1, 2, 4]))
    assert not ac.is_whole(cov([1, 2, 2, 3]))
    assert not ac.is_whole(cov([1, 2, 2, 4]))  # count and bounds alone would call it whole
    assert not ac.is_whole(cov([1, 1, 4, 4]))  # and the id sum alone too (1+1+4+4 = 1+2+3+4)


@given(st.lists(st.integers(1_048_500, 1_048_600) | st.integers(0, 80), min_size=1, max_size=30))
def test_whole_means_each_id_of_its_span_once_for_up_to_two_swaps(ids: list[int]) -> None:
    """For any multiset of ids with at most two duplicates between two multiples of 2^20, whole iff
    it is a run of distinct ids."""
    if len(ids) - len(set(ids)) > 2 or len({i >> 20 for i in ids}) > 1:
        return
    run = sorted(ids) == list(range(min(ids), max(ids) + 1))
    assert ac.is_whole(cov(ids)) == run


def test_aggs_naming_exactly_the_minute_s_trades_agree() -> None:
    """Trades 10..13 against aggTrades naming 10..13 with the same quantities and weights agree."""
    trades = cov([10, 11, 12, 13])
    aggs = ac.Coverage(M, 2, D(4), 500, 501, D(1001), D(0), D(4), 10, 13, D(46), D(4), D(4))
    assert ac.agree(trades, aggs)


def test_any_differing_sum_disagrees() -> None:
    """Each of the seven compared sums on its own makes the minute disagree."""
    trades = cov([10, 11, 12, 13])
    good = ac.Coverage(M, 2, D(4), 500, 501, D(1001), D(0), D(4), 10, 13, D(46), D(4), D(4))
    for change in ({"tid_n": D(5)}, {"volume": D("4.1")}, {"tid_min": 9}, {"tid_max": 14},
                   {"tid_sum": D(47)}, {"tid_tw": D(5)}, {"qty_tw": D(3)}):
        assert not ac.agree(trades, ac.Coverage(**{**good.__dict__, **change}))


def piece(i: int, t: int) -> ac.Piece:
    return ac.Piece(i, i, M + timedelta(seconds=t), None)


def run(lo: int, hi: int, minute: int) -> ac.Piece:
    return ac.Piece(lo, hi, None, M + timedelta(minutes=minute))


def test_the_walk_reports_where_ids_do_not_follow_on() -> None:
    """Runs and raw rows in id order: holes between them and duplicates among raw rows."""
    pieces = [run(20, 29, 1), piece(5, 1), piece(6, 2), run(7, 15, 0), piece(30, 200), piece(30, 201),
              piece(33, 202)]
    steps = ac.walk(pieces)
    assert steps is not None
    assert [(a.hi, b.lo) for a, b in steps] == [(15, 20), (30, 30), (30, 33)]
    assert steps[1][0].time == M + timedelta(seconds=200)  # duplicates in time order


def test_the_walk_gives_up_when_a_run_overlaps() -> None:
    """An id of a whole minute stored again elsewhere: None (the caller scans raw)."""
    assert ac.walk([run(10, 20, 0), piece(15, 90)]) is None
    assert ac.walk([run(10, 20, 0), piece(10, 90)]) is None
    assert ac.walk([run(10, 20, 0), run(20, 25, 1)]) is None
    assert ac.walk([run(10, 20, 0), run(21, 25, 1)]) == []


def test_a_run_is_clipped_to_the_scan_s_id_bounds() -> None:
    """Only ids lo_id..hi_id count; a minute wholly outside gives nothing."""
    c = cov(list(range(100, 160)))
    assert ac.run_of(c, 110, 1000) == ac.Piece(110, 159, None, M)
    assert ac.run_of(c, 0, 120) == ac.Piece(100, 120, None, M)
    assert ac.run_of(c, 200, 300) is None


def test_adjacent_minutes_merge_into_one_interval() -> None:
    """Minutes 0, 1, 2 and 5 make two intervals."""
    minutes = [M + timedelta(minutes=k) for k in (5, 1, 0, 2)]
    assert ac.intervals(minutes) == [(M, M + timedelta(minutes=3)),
                                     (M + timedelta(minutes=5), M + timedelta(minutes=6))]
