"""The audit's pure core (db.store.audit) on hand-made scan results: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from db.store.audit import (
    UNEXPLAINED,
    AggMismatch,
    Anomaly,
    Duplicate,
    GapSpan,
    Hole,
    StreamAudit,
    duplicates_of,
    explain,
    holes_of,
    is_complete,
    mismatches_of,
    repair_targets,
)

T0 = datetime(2026, 1, 2, tzinfo=UTC)
T1 = T0 + timedelta(seconds=5)


def _anomaly(first_missing: int, last_missing: int) -> Anomaly:
    return Anomaly(first_missing - 1, T0, last_missing + 1, T1)


def _pieces(holes: list[Hole]) -> list[tuple[int, int, int, str, str | None, str | None]]:
    return [(h.first_id, h.last_id, h.missing, h.explanation, h.gap_id, h.reason) for h in holes]


def test_an_uncovered_hole_is_one_unexplained_piece_with_its_neighbours_times() -> None:
    """A hole no gap covers is one piece: ids, count, the two rows' times, no gap."""
    assert explain("trade", _anomaly(11, 14), []) == [
        Hole("trade", 11, 14, 4, T0, T1, UNEXPLAINED, None, None)
    ]


def test_a_hole_is_split_where_gap_records_start_and_end() -> None:
    """Pieces follow the gap records' edges; each names its gap, id and reason."""
    gaps = [GapSpan("g1", 12, 13, "open", "r1"), GapSpan("g2", 15, 30, "repaired", "r2")]
    assert _pieces(explain("trade", _anomaly(10, 16), gaps)) == [
        (10, 11, 2, UNEXPLAINED, None, None),
        (12, 13, 2, "open", "g1", "r1"),
        (14, 14, 1, UNEXPLAINED, None, None),
        (15, 16, 2, "repaired", "g2", "r2"),
    ]


def test_a_gap_covering_the_whole_hole_and_more_explains_it_whole() -> None:
    """A gap wider than the hole on both sides gives one piece, with no cut outside the hole."""
    gaps = [GapSpan("g", 1, 100, "unrepairable", "rest")]
    assert _pieces(explain("trade", _anomaly(10, 12), gaps)) == [(10, 12, 3, "unrepairable", "g", "rest")]


def test_a_gap_ending_on_the_hole_s_last_id_makes_no_empty_piece() -> None:
    """Cuts at the hole's own edges add no piece; a gap starting at the first id makes one."""
    gaps = [GapSpan("g", 10, 12, "open", "r")]
    assert _pieces(explain("trade", _anomaly(10, 12), gaps)) == [(10, 12, 3, "open", "g", "r")]
    gaps = [GapSpan("g", 11, 12, "open", "r")]
    assert _pieces(explain("trade", _anomaly(10, 12), gaps)) == [
        (10, 10, 1, UNEXPLAINED, None, None),
        (11, 12, 2, "open", "g", "r"),
    ]


def test_when_gaps_overlap_open_wins_then_unrepairable_then_repaired() -> None:
    """Rule 2's precedence decides which gap explains a piece covered by several."""
    rep, unr, opn = (GapSpan("a", 10, 12, "repaired", "x"), GapSpan("b", 10, 12, "unrepairable", "y"),
                     GapSpan("c", 10, 12, "open", "z"))  # fmt: skip
    assert _pieces(explain("s", _anomaly(10, 12), [rep, unr, opn])) == [(10, 12, 3, "open", "c", "z")]
    assert _pieces(explain("s", _anomaly(10, 12), [rep, unr])) == [(10, 12, 3, "unrepairable", "b", "y")]
    assert _pieces(explain("s", _anomaly(10, 12), [rep])) == [(10, 12, 3, "repaired", "a", "x")]
    odd = GapSpan("d", 10, 12, "weird", "w")  # a status outside Rule 2's order explains nothing
    assert _pieces(explain("s", _anomaly(10, 12), [odd])) == [(10, 12, 3, UNEXPLAINED, None, None)]


def test_adjacent_pieces_of_the_same_explanation_and_gap_are_merged() -> None:
    """Two gap records' edges inside one gap's span do not split it; different gaps stay apart."""
    gaps = [GapSpan("g", 10, 20, "open", "r"), GapSpan("h", 13, 14, "repaired", "q")]
    assert _pieces(explain("s", _anomaly(10, 16), gaps)) == [(10, 16, 7, "open", "g", "r")]
    gaps = [GapSpan("g", 10, 12, "open", "r"), GapSpan("h", 13, 16, "open", "q")]
    assert _pieces(explain("s", _anomaly(10, 16), gaps)) == [
        (10, 12, 3, "open", "g", "r"),
        (13, 16, 4, "open", "h", "q"),
    ]
    gaps = [GapSpan("g", 12, 12, "open", "r")]  # unexplained, open, unexplained: no merge across
    assert _pieces(explain("s", _anomaly(10, 14), gaps)) == [
        (10, 11, 2, UNEXPLAINED, None, None),
        (12, 12, 1, "open", "g", "r"),
        (13, 14, 2, UNEXPLAINED, None, None),
    ]


def test_holes_of_skips_duplicates_and_passes_only_the_gaps_touching_each_hole() -> None:
    """Only anomalies with missing ids are holes; a gap outside a hole cannot explain it."""
    anomalies = [Anomaly(5, T0, 5, T0), Anomaly(5, T0, 6, T0), _anomaly(10, 11), _anomaly(20, 20)]
    gaps = [GapSpan("g", 10, 11, "open", "r"), GapSpan("far", 20, 20, "repaired", "q")]
    assert _pieces(holes_of("trade", anomalies, gaps)) == [
        (10, 11, 2, "open", "g", "r"),
        (20, 20, 1, "repaired", "far", "q"),
    ]
    assert {h.stream for h in holes_of("trade", anomalies, gaps)} == {"trade"}
    touching_edges = [GapSpan("lo", 1, 9, "open", "a"), GapSpan("hi", 12, 19, "open", "b")]
    assert _pieces(holes_of("trade", [_anomaly(10, 11)], touching_edges)) == [
        (10, 11, 2, UNEXPLAINED, None, None)
    ]


def test_holes_of_keeps_a_gap_that_reaches_into_the_hole_from_either_side() -> None:
    """A gap ending on the first missing id, or starting on the last, explains that piece."""
    gaps = [GapSpan("lo", 1, 10, "open", "a"), GapSpan("hi", 12, 19, "repaired", "b")]
    assert _pieces(holes_of("t", [_anomaly(10, 12)], gaps)) == [
        (10, 10, 1, "open", "lo", "a"),
        (11, 11, 1, UNEXPLAINED, None, None),
        (12, 12, 1, "repaired", "hi", "b"),
    ]


def test_duplicates_are_the_anomalies_whose_next_id_is_the_same() -> None:
    """An id stored twice is a duplicate with its time; a hole is not."""
    anomalies = [Anomaly(7, T0, 7, T1), _anomaly(10, 11)]
    assert duplicates_of("agg", anomalies) == [Duplicate("agg", 7, T0)]


def _stream(holes: int = 0, duplicates: int = 0) -> StreamAudit:
    return StreamAudit("trade", 10, 1, 10, holes, holes, duplicates, False)


def test_a_range_is_complete_only_with_no_hole_duplicate_or_mismatch() -> None:
    """Rule 3: any hole, duplicate or disagreeing aggTrade makes the range incomplete."""
    mismatch = AggMismatch(T0, 1, 1, 2, Decimal(1), Decimal(2), 2, 2, "quantity")
    assert is_complete([_stream(), _stream()], []) is True
    assert is_complete([], []) is True
    assert is_complete([_stream(), _stream(holes=1)], []) is False
    assert is_complete([_stream(duplicates=1), _stream()], []) is False
    assert is_complete([_stream()], [mismatch]) is False


def test_repair_targets_merge_the_pieces_of_one_hole() -> None:
    """Adjacent pieces of one stream become one unexplained target spanning both times."""
    t2 = T1 + timedelta(seconds=1)
    a = Hole("trade", 10, 11, 2, T0, T1, "open", "g", "r")
    b = Hole("trade", 12, 14, 3, T1, t2, "repaired", "h", "q")
    c = Hole("trade", 20, 20, 1, T0, t2, UNEXPLAINED, None, None)
    other = Hole("agg", 21, 22, 2, T0, t2, "open", "k", "z")
    assert repair_targets([a, b, c, other]) == [
        Hole("trade", 10, 14, 5, T0, t2, UNEXPLAINED, None, None),
        c,
        other,
    ]
    same_ids_other_stream = Hole("agg", 12, 13, 2, T0, t2, "open", "k", "z")
    assert repair_targets([a, same_ids_other_stream]) == [a, same_ids_other_stream]
    assert repair_targets([]) == []


def _agg(agg_id: int, first: int | None, last: int | None, qty: str = "1", trades: str = "1",
         found: int | None = None, time: datetime = T0) -> tuple[datetime, int, int | None, int | None,
                                                                    Decimal, Decimal, int]:  # fmt: skip
    n = found if found is not None else (last - first + 1 if first is not None and last is not None else 0)
    return (time, agg_id, first, last, Decimal(qty), Decimal(trades), n)


def test_an_agg_matching_its_trades_is_no_mismatch() -> None:
    """Same count and quantity: nothing to report."""
    assert mismatches_of([_agg(1, 1, 3), _agg(2, 4, 4)], []) == []


def test_each_kind_of_disagreement_is_named() -> None:
    """Quantity, missing trades, no trade ids and uncovered trades, with their figures."""
    aggs = [
        _agg(1, 1, 3, qty="2", trades="3"),
        _agg(2, 4, 6, found=2),
        _agg(3, None, None, qty="5", trades="0"),
    ]
    uncovered = [(T1, 7, 9, Decimal("4"), 3)]
    assert mismatches_of(aggs, uncovered) == [
        AggMismatch(T0, 3, None, None, Decimal(5), Decimal(0), 0, None, "no_trade_ids"),
        AggMismatch(T0, 1, 1, 3, Decimal(2), Decimal(3), 3, 3, "quantity"),
        AggMismatch(T0, 2, 4, 6, Decimal(1), Decimal(1), 2, 3, "trades_missing"),
        AggMismatch(T1, None, 7, 9, None, Decimal(4), 3, None, "not_covered"),
    ]


def test_an_agg_with_one_null_trade_id_names_no_trade_ids() -> None:
    """first_id or last_id null alone is enough for no_trade_ids."""
    got = mismatches_of([_agg(1, 1, None), _agg(2, None, 2)], [])
    assert [(m.agg_id, m.problem) for m in got] == [(2, "no_trade_ids"), (1, "no_trade_ids")]


def test_overlap_is_judged_against_the_greatest_last_id_so_far() -> None:
    """Aggs are walked by first id; one starting at or before an earlier last id overlaps."""
    aggs = [_agg(3, 2, 2), _agg(1, 1, 5), _agg(4, 5, 6), _agg(5, 7, 8)]
    got = mismatches_of(aggs, [])
    assert [(m.agg_id, m.problem, m.trades_expected) for m in got] == [(3, "overlap", 1), (4, "overlap", 2)]


def test_overlap_precedes_missing_trades_and_quantity() -> None:
    """An overlapping agg that also lacks trades and disagrees on quantity is an overlap."""
    aggs = [_agg(1, 1, 5), _agg(2, 5, 9, qty="1", trades="2", found=1)]
    assert [m.problem for m in mismatches_of(aggs, [])] == ["overlap"]
    aggs = [_agg(1, 1, 5, qty="1", trades="2", found=1)]
    assert [m.problem for m in mismatches_of(aggs, [])] == ["trades_missing"]


def test_an_agg_after_an_id_less_one_is_judged_from_scratch() -> None:
    """An agg without trade ids does not move the overlap mark."""
    aggs = [_agg(1, None, None), _agg(2, 1, 2), _agg(3, 3, 4)]
    assert [(m.agg_id, m.problem) for m in mismatches_of(aggs, [])] == [(1, "no_trade_ids")]


def test_ties_on_first_id_are_walked_by_agg_id() -> None:
    """Two aggs with the same first id: the lower agg id comes first, the other overlaps it."""
    aggs = [_agg(9, 1, 2), _agg(8, 1, 1)]
    assert [(m.agg_id, m.problem) for m in mismatches_of(aggs, [])] == [(9, "overlap")]


def test_mismatches_are_sorted_by_time_then_first_id() -> None:
    """The report is in time order, then by first id, an id-less mismatch first."""
    later = T0 + timedelta(seconds=1)
    aggs = [
        _agg(1, 5, 6, qty="9", time=T0),
        _agg(2, 1, 2, qty="9", time=later),
        _agg(3, 3, 4, qty="9", time=T0),
    ]
    uncovered = [(T0, 1, 1, Decimal(1), 1)]
    got = mismatches_of(aggs, uncovered)
    assert [(m.time, m.first_id) for m in got] == [(T0, 1), (T0, 3), (T0, 5), (later, 1)]


def test_unexplained_pieces_cut_by_an_unknown_status_merge_back() -> None:
    """A gap of an unknown status cuts the hole, but the unexplained pieces merge back, stream kept."""
    gaps = [GapSpan("odd", 12, 13, "weird", "w")]
    assert explain("trade", _anomaly(10, 16), gaps) == [
        Hole("trade", 10, 16, 7, T0, T1, UNEXPLAINED, None, None)
    ]


def test_merged_pieces_keep_their_stream_and_gap() -> None:
    """Pieces merged under one gap are a hole of the same stream, gap and reason."""
    gaps = [GapSpan("g", 10, 20, "open", "r"), GapSpan("h", 13, 14, "repaired", "q")]
    assert explain("aggTrade", _anomaly(10, 16), gaps) == [
        Hole("aggTrade", 10, 16, 7, T0, T1, "open", "g", "r")
    ]


def test_a_no_trade_ids_mismatch_keeps_the_id_it_has() -> None:
    """With only one of first_id/last_id null, the other is reported as stored."""
    got = mismatches_of([_agg(1, 4, None), _agg(2, None, 7)], [])
    assert sorted((m.agg_id, m.first_id, m.last_id) for m in got) == [(1, 4, None), (2, None, 7)]


def test_aggs_are_walked_by_first_id_whatever_their_time() -> None:
    """The overlap is the agg that comes later in trade ids, even when it is earlier in time."""
    aggs = [_agg(1, 5, 6, time=T0), _agg(2, 1, 5, time=T1)]
    assert [(m.agg_id, m.problem) for m in mismatches_of(aggs, [])] == [(1, "overlap")]


def test_trade_id_zero_sorts_before_one() -> None:
    """First id 0 is walked (and reported) before first id 1, not tied with it."""
    aggs = [_agg(1, 1, 1), _agg(2, 0, 0)]
    assert mismatches_of(aggs, []) == []
    got = mismatches_of([_agg(1, 1, 1, qty="9")], [(T0, 0, 0, Decimal(1), 1)])
    assert [(m.first_id, m.problem) for m in got] == [(0, "not_covered"), (1, "quantity")]
