"""ingestion.frontier's contract: the exact frontier record, the book's rules, first contact's verdicts.

Each test names one behaviour of the module's Rules (its docstring); the formats (record bytes,
record key, log notes, gap records) are asserted exactly.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_pipeline.common.events import GAP_FIELDS, GapMessage
from ingestion.frontier import (
    FRONTIER_VERSION,
    FrontierBook,
    FrontierEntry,
    Resume,
    Resumer,
    decode_entry,
    encode_entry,
    first_contact,
    record_key,
)
from ingestion.records import id_gap, resolve, time_gap
from ingestion.unfinished import plan_pickup

T = ("trade", "BTCUSDT")
A = ("aggTrade", "ETHUSDT")
B = ("bookTicker", "BTCUSDT")
HOUR = 3_600_000_000


def gap(first: int, last: int, key: tuple[str, str] = T) -> GapMessage:
    return id_gap(key[1], key[0], first, last, "producer_overflow", 1)


# ------------------------------------------------------------------ the record
def test_the_record_key_is_symbol_slash_type() -> None:
    """The compacted topic's key of (type, symbol) is b"SYMBOL/type"."""
    assert record_key(("aggTrade", "ETHUSDT")) == b"ETHUSDT/aggTrade"


def test_the_record_format_is_version_1_with_every_key_in_order() -> None:
    """A frontier record is compact JSON: v=1, type, symbol, last_id, last_time, open gaps, written_at."""
    assert FRONTIER_VERSION == 1
    entry = FrontierEntry("trade", "BTCUSDT", 42, 7, {}, 99)
    assert encode_entry(entry) == (
        b'{"v":1,"type":"trade","symbol":"BTCUSDT","last_id":42,"last_time":7,"open":[],"written_at":99}'
    )


def test_an_empty_entry_is_written_with_nulls() -> None:
    """An entry that never saw an acknowledgement says so with nulls, not zeros."""
    entry = FrontierEntry("bookTicker", "ETHUSDT")
    assert (entry.last_id, entry.last_time, entry.open_gaps, entry.written_at) == (None, None, {}, 0)
    assert entry.key == ("bookTicker", "ETHUSDT")
    assert encode_entry(entry) == (
        b'{"v":1,"type":"bookTicker","symbol":"ETHUSDT","last_id":null,"last_time":null,'
        b'"open":[],"written_at":0}'
    )


def test_a_frontier_record_round_trips_every_key() -> None:
    """Decoding an encoded entry gives it back, open gaps keyed by their gap_id."""
    window = time_gap("BTCUSDT", "trade", 500, None, "reconnect", "open", 3)
    gaps = {gap(1, 2)["gap_id"]: gap(1, 2), window["gap_id"]: window}
    entry = FrontierEntry("trade", "BTCUSDT", 42, 7, gaps, 99)
    back = decode_entry(encode_entry(entry))
    assert back == entry
    assert list(back.open_gaps) == ["BTCUSDT/trade/ids/1-2", "BTCUSDT/trade/time/500"]
    assert type(back.written_at) is int


ENTRY = b'{"type":"trade","symbol":"X","last_id":1,"last_time":1,"open":[],"written_at":1}'


def with_open_gap(**change: Any) -> bytes:
    """ENTRY with one open gap, changed by ``change``."""
    return ENTRY.replace(b'"open":[]', b'"open":[' + orjson.dumps({**gap(1, 2), **change}) + b"]")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"{}", "no stream type and symbol"),
        (b"[]", "not a JSON object"),
        (b"7", "not a JSON object"),
        (ENTRY.replace(b'"type":"trade"', b'"type":["trade"]'), "no stream type and symbol"),
        (ENTRY.replace(b'"symbol":"X"', b'"symbol":7'), "no stream type and symbol"),
        (ENTRY.replace(b'"last_id":1', b'"last_id":"1"'), "last_id and last_time must be integers or null"),
        (ENTRY.replace(b'"last_time":1', b'"last_time":true'), "last_id and last_time"),
        (ENTRY.replace(b',"written_at":1', b""), "written_at must be an integer"),
        (ENTRY.replace(b'"written_at":1', b'"written_at":null'), "written_at must be an integer"),
        (ENTRY.replace(b'"written_at":1', b'"written_at":1e400'), "not JSON"),
        (ENTRY.replace(b'"open":[]', b'"open":7'), "open a list"),
        (ENTRY.replace(b'"open":[]', b'"open":[{}]'), "open gap: missing field v"),
        (ENTRY.replace(b'"open":[]', b'"open":[[1]]'), "open gap: not a JSON object"),
        (with_open_gap(first_id=None), "open gap: an id gap without first_id and last_id"),
        (with_open_gap(reason=""), "open gap: field reason does not follow the contract"),
        (with_open_gap(reason="x" * 201), "open gap: field reason does not follow the contract"),
    ],
)
def test_a_record_that_is_not_a_frontier_is_a_value_error_saying_why(raw: bytes, why: str) -> None:
    """Garbage, a wrong type, a null write time, a bad open gap: ValueError 'not a frontier record: why'."""
    with pytest.raises(ValueError, match=r"^not a frontier record: ") as info:
        decode_entry(raw)
    assert why in str(info.value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=8,
)
KEYS = st.sampled_from(["type", "symbol", "last_id", "last_time", "open", "written_at", *GAP_FIELDS])


@given(st.binary())
def test_any_bytes_decode_to_an_entry_or_a_value_error(raw: bytes) -> None:
    """decode_entry on arbitrary bytes returns an entry or raises ValueError, nothing else (Rule 6)."""
    with contextlib.suppress(ValueError):
        decode_entry(raw)


@pytest.mark.slow  # a large property run (about 6 s)
@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, JSON), st.lists(st.dictionaries(KEYS, JSON), max_size=3))
def test_any_json_shaped_record_is_an_entry_the_resume_can_use_or_a_value_error(
    fields: dict[str, Any], gaps: list[dict[str, Any]]
) -> None:
    """Near-miss records (right keys, any JSON values) never escape as anything but ValueError."""
    base = orjson.loads(encode_entry(FrontierEntry("trade", "BTCUSDT", 42, 7, {}, 99)))
    try:
        entry = decode_entry(orjson.dumps({**base, **fields, "open": [{**gap(1, 2), **g} for g in gaps]}))
    except ValueError:
        return
    plan_pickup([entry], [entry.key], now=10**15)  # what the next instance does with it: no error


# ------------------------------------------------------------------ the book: Rules 1-3
def test_the_book_never_changes_the_entries_it_was_seeded_with() -> None:
    """Seed entries are copied: acknowledgements and resolved gaps leave the caller's objects alone."""
    opened = gap(5, 9)
    seed = FrontierEntry("trade", "BTCUSDT", 4, 1, {opened["gap_id"]: opened}, 0)
    book = FrontierBook([seed])
    book.acked(T, 20, 2)
    book.gap_acked(resolve(opened, "repaired", 3))
    assert seed == FrontierEntry("trade", "BTCUSDT", 4, 1, {opened["gap_id"]: opened}, 0)
    assert book.snapshot(T, 5) == FrontierEntry("trade", "BTCUSDT", 20, 2, {}, 5)


def test_a_new_key_starts_an_entry_of_that_type_and_symbol() -> None:
    """The first event of an unseen (type, symbol) starts its own entry, with its id and time."""
    book = FrontierBook()
    book.acked(A, 3, 30)
    assert book.snapshot(A, 8) == FrontierEntry("aggTrade", "ETHUSDT", 3, 30, {}, 8)


def test_acknowledging_the_same_id_again_changes_nothing() -> None:
    """A repeated id keeps the first time and does not make the entry due again (Rule 1)."""
    book = FrontierBook(interval_us=100)
    book.acked(T, 100, 7)
    assert len(book.due(0, 1_000)) == 1
    book.acked(T, 100, 9)
    assert book.due(0, 2_000) == []
    assert book.snapshot(T, 0).last_time == 7


def test_booktickers_move_the_time_forward_only() -> None:
    """A bookTicker (no id) moves last_time up; an equal or older time changes nothing."""
    book = FrontierBook(interval_us=100)
    book.acked(B, None, 500)
    assert [(e.last_id, e.last_time) for e in book.due(0, 1_000)] == [(None, 500)]
    book.acked(B, None, 500)
    book.acked(B, None, 400)
    assert book.due(0, 2_000) == []
    book.acked(B, None, 501)
    assert [(e.last_id, e.last_time) for e in book.due(0, 3_000)] == [(None, 501)]


def test_an_acknowledgement_without_id_or_time_changes_nothing() -> None:
    """Nothing to record: the entry exists but claims nothing and is not dirty."""
    book = FrontierBook(interval_us=100, heartbeat_us=10**9)
    book.acked(B, None, None)
    assert book.snapshot(B, 0) == FrontierEntry("bookTicker", "BTCUSDT", None, None, {}, 0)
    assert book.due(0, 1_000) == []


def test_a_clean_stop_settles_the_time_not_the_ids() -> None:
    """settle_time moves last_time to the stop (if later) and leaves last_id where it was."""
    book = FrontierBook()
    book.acked(T, 100, 7)
    book.settle_time(T, 50)
    book.settle_time(T, 40)
    assert (book.snapshot(T, 0).last_id, book.snapshot(T, 0).last_time) == (100, 50)


def test_a_loss_before_any_acknowledgement_claims_nothing() -> None:
    """Events lost before the first acknowledgement: the frontier still has no last_id (Rule 2)."""
    book = FrontierBook()
    book.lost(T, 11)
    assert book.snapshot(T, 0).last_id is None


def test_a_booktickers_loss_holds_nothing() -> None:
    """A lost bookTicker (no id) cannot be held; its time frontier is unaffected."""
    book = FrontierBook()
    book.acked(B, None, 500)
    book.lost(B, None)
    assert book.snapshot(B, 0) == FrontierEntry("bookTicker", "BTCUSDT", None, 500, {}, 0)


def test_each_lost_run_is_released_by_the_gap_that_covers_it() -> None:
    """Separate runs of losses hold the frontier below the lowest uncovered one, one gap at a time."""
    book = FrontierBook()
    book.acked(T, 10, 1)
    book.lost(T, 11)
    book.acked(T, 12, 2)
    book.lost(T, 13)
    book.lost(T, 14)
    book.acked(T, 15, 3)
    assert book.snapshot(T, 0).last_id == 10
    book.gap_published(gap(13, 14))
    assert book.snapshot(T, 0).last_id == 10
    book.gap_published(gap(11, 11))
    assert book.snapshot(T, 0).last_id == 15


def test_a_gap_covering_part_of_a_run_of_losses_releases_none_of_it() -> None:
    """Contiguous losses are one run: a gap over some of its ids leaves the frontier below the run."""
    book = FrontierBook()
    book.acked(T, 10, 1)
    for ident in (11, 12, 13):
        book.lost(T, ident)
    book.acked(T, 14, 2)
    book.gap_published(gap(11, 12))
    book.gap_published(gap(12, 13))
    assert book.snapshot(T, 0).last_id == 10
    book.gap_published(gap(11, 13))
    assert book.snapshot(T, 0).last_id == 14


def test_only_an_open_gap_record_enters_the_open_set() -> None:
    """Publishing a resolved record (repaired, unrepairable) opens nothing and changes nothing (Rule 3)."""
    book = FrontierBook(interval_us=100, heartbeat_us=10**9)
    book.gap_published(resolve(gap(1, 2), "repaired", 5))
    book.gap_published(resolve(gap(3, 4), "unrepairable", 5))
    assert book.open_gaps() == []
    assert book.due(0, 1_000) == []


def test_an_open_gap_is_tracked_under_its_stream_and_symbol_and_makes_the_entry_due() -> None:
    """The gap goes into the entry of (its stream, its symbol), which is written at the next due."""
    book = FrontierBook(interval_us=100)
    opened = gap(3, 4, A)
    book.gap_published(opened)
    assert book.open_gaps() == [opened]
    assert [(e.key, list(e.open_gaps)) for e in book.due(7, 1_000)] == [(A, ["ETHUSDT/aggTrade/ids/3-4"])]


def test_a_time_gap_is_tracked_without_touching_lost_ids() -> None:
    """An open time window (no ids) joins the open set; lost ids stay held."""
    book = FrontierBook()
    book.acked(T, 10, 1)
    book.lost(T, 11)
    book.acked(T, 12, 2)
    window = time_gap("BTCUSDT", "trade", 500, None, "reconnect", "open", 1)
    book.gap_published(window)
    entry = book.snapshot(T, 0)
    assert (entry.last_id, list(entry.open_gaps)) == (10, ["BTCUSDT/trade/time/500"])


def test_acknowledging_a_resolution_closes_the_gap_and_makes_the_entry_due() -> None:
    """The resolved gap leaves the open set and the entry is written again (Rule 3)."""
    book = FrontierBook(interval_us=100, heartbeat_us=10**9)
    opened = gap(5, 9)
    book.gap_published(opened)
    book.due(0, 1_000)
    book.gap_acked(resolve(opened, "unrepairable", 2))
    assert [(e.key, e.open_gaps) for e in book.due(0, 2_000)] == [(T, {})]


def test_acknowledging_an_unknown_resolution_changes_nothing() -> None:
    """A resolution of a gap the book does not hold (or of a key it never saw) creates nothing."""
    book = FrontierBook(interval_us=100, heartbeat_us=10**9)
    book.acked(T, 1, 1)
    book.due(0, 1_000)
    book.gap_acked(resolve(gap(5, 9), "repaired", 2))
    book.gap_acked(resolve(gap(5, 9, A), "repaired", 2))
    assert book.due(0, 2_000) == []
    assert [e.key for e in book.everything(0, 3_000)] == [T]


def test_a_snapshot_is_not_changed_by_later_events() -> None:
    """The entry handed to the writer is a copy: a gap closed afterwards is still in it."""
    book = FrontierBook()
    opened = gap(5, 9)
    book.gap_published(opened)
    taken = book.snapshot(T, 1)
    book.gap_acked(resolve(opened, "repaired", 2))
    assert list(taken.open_gaps) == [opened["gap_id"]]
    assert book.snapshot(T, 2).open_gaps == {}


# ------------------------------------------------------------------ writing: Rule 4
def test_by_default_a_change_is_written_after_half_a_second_and_everything_every_minute() -> None:
    """Defaults: interval 500 ms, heartbeat 60 s (monotonic us), boundaries included."""
    book = FrontierBook()
    book.acked(T, 1, 1)
    assert book.due(0, 499_999) == []
    assert len(book.due(0, 500_000)) == 1
    assert book.due(0, 500_000 + 59_999_999) == []
    assert [e.written_at for e in book.due(77, 500_000 + 60_000_000)] == [77]


def test_a_change_waits_exactly_one_interval_after_the_last_write() -> None:
    """Changed again just after a write: not due before interval_us has passed, due at it."""
    book = FrontierBook(interval_us=100, heartbeat_us=10_000)
    book.acked(T, 1, 1)
    assert len(book.due(0, 1_000)) == 1
    book.acked(T, 2, 2)
    assert book.due(0, 1_099) == []
    assert [e.last_id for e in book.due(0, 1_100)] == [2]
    assert book.due(0, 11_099) == []
    assert len(book.due(0, 11_100)) == 1


def test_everything_writes_every_entry_and_restarts_the_clocks() -> None:
    """At shutdown every entry is returned, dirty or not; none is due again until its heartbeat."""
    book = FrontierBook(interval_us=100, heartbeat_us=10_000)
    book.acked(T, 1, 1)
    book.acked(B, None, 5)
    book.due(0, 1_000)
    book.acked(T, 2, 2)
    assert [(e.key, e.last_id, e.written_at) for e in book.everything(42, 1_010)] == [
        (T, 2, 42), (B, None, 42)
    ]
    assert book.due(0, 11_009) == []
    assert len(book.due(0, 11_010)) == 2


def test_a_failed_write_is_due_again_without_waiting_an_interval() -> None:
    """mark_dirty: the entry goes out at the next due even right after the write that failed."""
    book = FrontierBook(interval_us=100, heartbeat_us=10_000)
    book.acked(T, 1, 1)
    assert len(book.due(0, 100)) == 1
    book.mark_dirty(T)
    assert len(book.due(0, 100)) == 1
    book.mark_dirty(("trade", "XRPUSDT"))  # unknown: nothing to rewrite, nothing created
    assert [e.key for e in book.everything(0, 200)] == [T]


# ------------------------------------------------------------------ first contact: Rule 5
def entry_at(last_id: int | None, last_time: int | None = 1_000, written_at: int = 1_000) -> FrontierEntry:
    return FrontierEntry("trade", "BTCUSDT", last_id, last_time, {}, written_at)


def test_without_a_frontier_the_stream_starts_fresh_silently() -> None:
    """No last_id: no baseline, no record, no note."""
    assert first_contact(entry_at(None), 7, 1, 1, HOUR) == Resume(None, None, "")


def test_the_next_id_resumes_contiguously_with_its_note() -> None:
    """first_id = last_id + 1: baseline = last_id, no gap, one exact log line."""
    assert first_contact(entry_at(100), 101, 2_000, 3_000, HOUR) == Resume(
        100, None, "resumed at 101, contiguous with the frontier 100"
    )


def test_an_id_already_seen_at_an_earlier_or_equal_time_resumes() -> None:
    """Ids at or below the frontier with no later time are an overlap, not another history."""
    assert first_contact(entry_at(100, last_time=1_000), 100, 1_000, 3_000, HOUR).baseline == 100
    assert first_contact(entry_at(100, last_time=1_000), 90, 999, 3_000, HOUR).baseline == 100
    assert first_contact(entry_at(100, last_time=None), 90, 5_000, 3_000, HOUR).baseline == 100


def test_ids_going_backwards_while_time_goes_forward_drop_the_frontier() -> None:
    """The frontier's own id at a later time is already another history: dropped, said exactly."""
    assert first_contact(entry_at(100, last_time=1_000), 100, 1_001, 3_000, HOUR) == Resume(
        None, None,
        "ids went backwards (100 <= frontier 100) while time went forward: the exchange's history "
        "is not the one the frontier describes; frontier dropped",
    )


def test_a_hole_of_one_id_opens_a_restart_gap_for_exactly_it() -> None:
    """first_id = last_id + 2: the one missing id is an open 'restart' gap; the sequencer starts after it."""
    out = first_contact(entry_at(100), 102, 2_000, 3_000, HOUR)
    assert out == Resume(101, {
        "v": 1, "type": "gap", "gap_id": "BTCUSDT/trade/ids/101-101", "symbol": "BTCUSDT",
        "stream": "trade", "kind": "ids", "first_id": 101, "last_id": 101, "start_time": None,
        "end_time": None, "missing": 1, "reason": "restart", "status": "open", "detected_at": 3_000,
        "repaired_at": None,
    }, "restart gap of 1 ids (101-101): backfilling")  # fmt: skip


def test_a_frontier_exactly_max_age_old_is_still_backfilled() -> None:
    """The age (now - written_at) bound is inclusive: written max_age_us ago still opens a gap to backfill."""
    out = first_contact(entry_at(100, written_at=5 * HOUR), 151, 2_000, 6 * HOUR, HOUR)
    assert out.record is not None and out.record["status"] == "open"
    assert out.note == "restart gap of 50 ids (101-150): backfilling"


def test_a_frontier_older_than_max_age_records_the_hole_unrepairable_saying_why() -> None:
    """One microsecond past the bound: an unrepairable record and note with the age and the setting."""
    out = first_contact(entry_at(100, written_at=HOUR), 151, 2_000, 2 * HOUR + 1, HOUR)
    why = "frontier is 1.0 h old, beyond RESUME_MAX_AGE_S=3600; not backfilled"
    assert out == Resume(150, {
        "v": 1, "type": "gap", "gap_id": "BTCUSDT/trade/ids/101-150", "symbol": "BTCUSDT",
        "stream": "trade", "kind": "ids", "first_id": 101, "last_id": 150, "start_time": None,
        "end_time": None, "missing": 50, "reason": f"restart: {why}", "status": "unrepairable",
        "detected_at": 2 * HOUR + 1, "repaired_at": None,
    }, f"restart gap of 50 ids unrepairable: {why}")  # fmt: skip


def test_the_unrepairable_note_gives_hours_to_one_decimal_and_the_setting_in_seconds() -> None:
    """2.25 h old with a 90 min bound reads '2.2 h' (rounded) and '5400'; 1.5 s reads '1.5'."""
    out = first_contact(entry_at(100, written_at=0), 102, 1, 8_100_000_000, 5_400_000_000)
    assert out.note.endswith("frontier is 2.2 h old, beyond RESUME_MAX_AGE_S=5400; not backfilled")
    out = first_contact(entry_at(100, written_at=0), 102, 1, 8_100_000_000, 1_500_000)
    assert "beyond RESUME_MAX_AGE_S=1.5;" in out.note


def test_the_resumer_uses_each_armed_key_once_with_its_max_age() -> None:
    """Resumer.first_contact is first_contact on the armed entry; the key is then disarmed."""
    armed = {T: entry_at(100, written_at=0)}
    resumer = Resumer(armed, max_age_us=HOUR)
    expected = first_contact(armed[T], 151, 2_000, HOUR + 1, HOUR)
    assert resumer.first_contact(T, 151, 2_000, HOUR + 1) == expected
    assert resumer.pending == {} and list(armed) == [T]
    with pytest.raises(KeyError):
        resumer.first_contact(T, 152, 2_001, HOUR + 2)
    later = Resumer({T: entry_at(100, last_time=1_000)}, max_age_us=HOUR)
    assert later.first_contact(T, 90, 1_001, 3_000).note.startswith("ids went backwards (90 <= frontier 100)")


@pytest.mark.parametrize(("value", "why"), [
    (b"[1]", "not a JSON object"),
    (b'{"type": "depth", "symbol": "BTCUSDT"}', "no stream type and symbol"),
    (b'{"type": "trade", "symbol": "BTCUSDT", "last_id": "5", "last_time": null}',
     "last_id and last_time must be integers or null"),
    (b'{"type": "trade", "symbol": "BTCUSDT", "last_id": 5, "last_time": null, "written_at": 1, "open": {}}',
     "written_at must be an integer and open a list"),
])
def test_a_value_that_is_not_an_entry_says_why(value: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=rf"^not a frontier record: {re.escape(why)}$"):
        decode_entry(value)
