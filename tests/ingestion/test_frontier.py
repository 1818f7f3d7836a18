"""The frontier's pure rules: merge of acknowledgements, losses and gaps; first contact; pickup."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_pipeline.common.events import GapMessage
from ingestion.frontier import FrontierBook, FrontierEntry, decode_entry, encode_entry, first_contact
from ingestion.records import id_gap, resolve, time_gap
from ingestion.unfinished import close_at_stop, plan_pickup

T = ("trade", "BTCUSDT")
B = ("bookTicker", "BTCUSDT")
HOUR = 3_600_000_000


def gap(first: int, last: int, reason: str = "stream") -> GapMessage:
    return id_gap("BTCUSDT", "trade", first, last, reason, 1)


def test_acked_only_moves_up() -> None:
    """An acknowledged backfill row (a lower id) never moves the frontier back."""
    book = FrontierBook()
    book.acked(T, 100, 7)
    book.acked(T, 40, 3)
    entry = book.snapshot(T, 9)
    assert (entry.last_id, entry.last_time, entry.written_at) == (100, 7, 9)


def test_a_loss_holds_the_frontier_until_its_gap_is_published() -> None:
    """Ids Kafka refused are never claimed: the frontier stays below them until a gap covers them."""
    book = FrontierBook()
    book.acked(T, 10, 1)
    book.lost(T, 11)
    book.lost(T, 12)
    book.acked(T, 13, 2)
    assert book.snapshot(T, 0).last_id == 10
    book.gap_published(gap(11, 12, "producer_overflow"))
    entry = book.snapshot(T, 0)
    assert entry.last_id == 13 and list(entry.open_gaps) == [gap(11, 12)["gap_id"]]


def test_an_open_gap_leaves_only_when_its_resolution_is_acknowledged() -> None:
    """Queuing the 'repaired' record is not enough: its acknowledgement removes the gap."""
    book = FrontierBook()
    opened = gap(5, 9)
    book.gap_published(opened)
    repaired = resolve(opened, "repaired", 2)
    book.gap_published(repaired)
    book.gap_acked(opened)
    assert book.open_gaps() == [opened]
    book.gap_acked(repaired)
    assert book.open_gaps() == []


def test_due_throttles_writes_and_beats_the_heart() -> None:
    """A changed entry is written at most once per interval; an unchanged one at each heartbeat."""
    book = FrontierBook(interval_us=100, heartbeat_us=10_000)
    book.acked(T, 1, 1)
    assert [e.last_id for e in book.due(now=50, mono=1_000)] == [1]
    book.acked(T, 2, 2)
    assert book.due(now=60, mono=1_050) == []
    assert [e.last_id for e in book.due(now=70, mono=1_100)] == [2]
    assert book.due(now=80, mono=5_000) == []
    assert [e.written_at for e in book.due(now=90, mono=11_100)] == [90]
    book.mark_dirty(T)
    assert len(book.due(now=95, mono=11_101)) == 1


def test_entry_round_trips_and_garbage_is_refused() -> None:
    """An entry survives encoding; a record that is not one raises ValueError."""
    entry = FrontierEntry("trade", "BTCUSDT", 42, 7, {gap(1, 2)["gap_id"]: gap(1, 2)}, 99)
    assert decode_entry(encode_entry(entry)) == entry
    for raw in (b"not json", b"{}", b'{"type": "trade"}'):
        with pytest.raises(ValueError, match="not a frontier record"):
            decode_entry(raw)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["ack", "lose", "cover"]), min_size=1, max_size=120))
def test_frontier_never_claims_an_id_outside_kafka_and_gaps(ops: list[str]) -> None:
    """Whatever the order of acks, losses and gap records, every id up to last_id is acked or in a gap."""
    book = FrontierBook()
    acked: set[int] = set()
    uncovered: list[int] = []
    for ident, op in enumerate(ops, start=1):
        if op == "ack":
            acked.add(ident)
            book.acked(T, ident, ident)
        else:
            uncovered.append(ident)
            book.lost(T, ident)
        if op == "cover" and uncovered:
            book.gap_published(gap(uncovered[0], uncovered[-1], "producer_overflow"))
            uncovered = []
    entry = book.snapshot(T, 0)
    in_gaps = {i for g in entry.open_gaps.values()
               for i in range(g["first_id"] or 0, (g["last_id"] or -1) + 1)}
    for ident in range(1, (entry.last_id or 0) + 1):
        assert ident in acked or ident in in_gaps, ident


# ------------------------------------------------------------------ first contact
def entry_at(last_id: int | None, last_time: int = 1_000, written_at: int = 1_000) -> FrontierEntry:
    return FrontierEntry("trade", "BTCUSDT", last_id, last_time, {}, written_at)


def test_first_contact_contiguous_resumes_silently() -> None:
    """The next id after the frontier: baseline = frontier, no gap."""
    out = first_contact(entry_at(100), 101, 2_000, 3_000, HOUR)
    assert (out.baseline, out.record) == (100, None)


def test_first_contact_hole_opens_a_restart_gap() -> None:
    """Missing ids open a 'restart' gap for exactly them; the sequencer starts after them."""
    out = first_contact(entry_at(100), 151, 2_000, 3_000, HOUR)
    assert out.baseline == 150 and out.record is not None
    r = out.record
    assert (r["first_id"], r["last_id"], r["missing"]) == (101, 150, 50)
    assert (r["reason"], r["status"]) == ("restart", "open")


def test_first_contact_beyond_max_age_is_recorded_unrepairable() -> None:
    """A frontier older than the bound: the gap is recorded as unrepairable, saying why, not skipped."""
    out = first_contact(entry_at(100, written_at=0), 151, 2 * HOUR, 2 * HOUR, HOUR)
    assert out.record is not None and out.record["status"] == "unrepairable"
    assert out.record["reason"].startswith("restart: frontier is 2.0 h old, beyond RESUME_MAX_AGE_S=3600")
    assert out.record["missing"] == 50 and out.baseline == 150


def test_first_contact_ids_going_backwards_drop_the_frontier() -> None:
    """Ids at or below the frontier with a later time: another history; no baseline, said plainly."""
    out = first_contact(entry_at(100, last_time=1_000), 5, 2_000, 3_000, HOUR)
    assert out.baseline is None and out.record is None and "went backwards" in out.note
    same = first_contact(entry_at(100, last_time=1_000), 99, 900, 3_000, HOUR)
    assert same.baseline == 100 and same.record is None


def test_first_contact_without_a_frontier_starts_fresh() -> None:
    """No last id known: the first id is the baseline, as before."""
    assert first_contact(entry_at(None), 7, 1, 1, HOUR).baseline is None


# ------------------------------------------------------------------ unfinished business
def test_pickup_finishes_what_the_last_instance_left_open() -> None:
    """Owned keys: id gaps backfilled again, windows closed with an end, resumes armed; others left."""
    window = time_gap("BTCUSDT", "bookTicker", 500, None, "reconnect", "open", 1)
    other = id_gap("XRPUSDT", "aggTrade", 3, 4, "stream", 1)
    entries = [
        FrontierEntry("trade", "BTCUSDT", 100, 9, {gap(50, 60)["gap_id"]: gap(50, 60)}, 1),
        FrontierEntry("bookTicker", "BTCUSDT", None, 400, {window["gap_id"]: window}, 1),
        FrontierEntry("bookTicker", "ETHUSDT", None, 700, {}, 1),
        FrontierEntry("aggTrade", "XRPUSDT", 4, 1, {other["gap_id"]: other}, 1),
    ]
    captured = [T, B, ("bookTicker", "ETHUSDT")]
    plan = plan_pickup(entries, captured, now=9_000)
    assert [g["gap_id"] for g in plan.id_gaps] == [gap(50, 60)["gap_id"]]
    assert plan.foreign_open == [other]
    assert [e.key for e in plan.owned] == [T, B, ("bookTicker", "ETHUSDT")]
    assert len(plan.closed) == 1
    closed = plan.closed[0]
    assert closed["gap_id"] == window["gap_id"]
    assert (closed["status"], closed["end_time"]) == ("unrepairable", 9_000)
    assert sorted(plan.windows) == [(B, 9_000), (("bookTicker", "ETHUSDT"), 700)]
    assert list(plan.resume) == [T]


def test_clean_stop_closes_time_gaps_and_leaves_id_gaps_open() -> None:
    """At a clean stop every open window gets an end time and a final status; id gaps wait."""
    window = time_gap("BTCUSDT", "bookTicker", 500, None, "reconnect", "open", 1)
    closed = close_at_stop([window, gap(1, 2)], 8_000)
    assert [(c["gap_id"], c["status"], c["end_time"]) for c in closed] == [
        (window["gap_id"], "unrepairable", 8_000)
    ]


def test_closing_a_window_keeps_its_count_and_says_why() -> None:
    """The closed record: unrepairable, the reason extended, missing kept, ended no earlier than it began."""
    window = time_gap("BTCUSDT", "bookTicker", 500, None, "reconnect", "open", 1)
    window["missing"] = 12
    closed = close_at_stop([window], 8_000)[0]
    assert closed == {**window, "status": "unrepairable", "end_time": 8_000, "missing": 12,
                      "reason": "reconnect: closed at shutdown: no bookTicker kept since start_time "
                                "(a quiet feed, or a loss)"}
    late = time_gap("BTCUSDT", "bookTicker", 10_000, None, "reconnect", "open", 1)
    assert close_at_stop([late], 9_000)[0]["end_time"] == 10_000


def test_pickup_closes_windows_saying_so_and_sorts_id_gaps() -> None:
    """A foreign entry first stops nothing; id gaps are ordered by symbol, stream and first id."""
    window = time_gap("BTCUSDT", "bookTicker", 500, None, "restart", "open", 1)
    foreign = FrontierEntry("aggTrade", "XRPUSDT", 4, 1, {}, 1)
    owned = FrontierEntry("trade", "BTCUSDT", 100, 9, {gap(70, 80)["gap_id"]: gap(70, 80),
                                                       gap(50, 60)["gap_id"]: gap(50, 60)}, 1)
    book = FrontierEntry("bookTicker", "BTCUSDT", None, 400, {window["gap_id"]: window}, 1)
    plan = plan_pickup([foreign, owned, book], [T, B], now=9_000)
    assert [(g["first_id"], g["last_id"]) for g in plan.id_gaps] == [(50, 60), (70, 80)]
    assert plan.resume == {T: owned}
    assert plan.closed[0]["reason"] == "restart: closed by the next instance at start"
