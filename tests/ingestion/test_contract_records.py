"""ingestion.records: the exact gap records the worker reads (every key, every value)."""

from __future__ import annotations

from datetime import UTC, datetime

from binance_pipeline.common.events import GapMessage, encode
from consumer.decode import GAP_COLUMNS, GAPS, decode
from ingestion.records import id_gap, resolve, time_gap

OPEN_IDS: GapMessage = {
    "v": 1, "type": "gap", "gap_id": "BTCUSDT/trade/ids/1001-1050", "symbol": "BTCUSDT",
    "stream": "trade", "kind": "ids", "first_id": 1001, "last_id": 1050, "start_time": None,
    "end_time": None, "missing": 50, "reason": "stream", "status": "open", "detected_at": 7,
    "repaired_at": None,
}  # fmt: skip


def test_id_gap_is_the_contract_record_key_for_key() -> None:
    """An id gap has exactly the contract's keys: ids, count missing, open, no times."""
    assert id_gap("BTCUSDT", "trade", 1001, 1050, "stream", now=7) == OPEN_IDS


def test_time_gap_is_the_contract_record_key_for_key() -> None:
    """A time gap carries its window and status, and no ids and no count."""
    record = time_gap("ETHUSDT", "bookTicker", 100, 250, "reconnect", "unrepairable", 9)
    assert record == {
        "v": 1, "type": "gap", "gap_id": "ETHUSDT/bookTicker/time/100", "symbol": "ETHUSDT",
        "stream": "bookTicker", "kind": "time", "first_id": None, "last_id": None,
        "start_time": 100, "end_time": 250, "missing": None, "reason": "reconnect",
        "status": "unrepairable", "detected_at": 9, "repaired_at": None,
    }  # fmt: skip


def test_a_single_missing_id_counts_one() -> None:
    """first == last is one missing id, not zero."""
    assert id_gap("BTCUSDT", "aggTrade", 5, 5, "stream", 1)["missing"] == 1


def test_repaired_changes_only_status_and_repaired_at() -> None:
    """Resolving as repaired keeps every other key of the opening record."""
    assert resolve(OPEN_IDS, "repaired", 99) == {**OPEN_IDS, "status": "repaired", "repaired_at": 99}


def test_unrepairable_keeps_missing_and_reason_when_not_told_otherwise() -> None:
    """Without a new count or a why, an unrepairable record keeps the opening missing and reason."""
    assert resolve(OPEN_IDS, "unrepairable", 99) == {**OPEN_IDS, "status": "unrepairable"}


def test_unrepairable_with_a_count_and_a_why() -> None:
    """The new count replaces missing, the why is appended to the reason; repaired_at stays null."""
    closed = resolve(OPEN_IDS, "unrepairable", 99, missing=0, why="REST has no ids below 1020")
    assert closed == {
        **OPEN_IDS,
        "status": "unrepairable",
        "missing": 0,
        "reason": "stream: REST has no ids below 1020",
    }


def test_resolve_leaves_the_opening_record_unchanged() -> None:
    """The closing record is a copy: the open one still says open."""
    record = id_gap("BTCUSDT", "trade", 1, 2, "stream", 3)
    resolve(record, "repaired", 4)
    assert record["status"] == "open" and record["repaired_at"] is None


def test_the_worker_decodes_every_record_kind_into_its_row() -> None:
    """Records written by ingestion decode to gaps rows with every column in place."""
    opened = id_gap("BTCUSDT", "trade", 1001, 1050, "stream", 1_700_000_000_000_000)
    window = time_gap("BTCUSDT", "bookTicker", 1_000_000, None, "reconnect", "open", 2_000_000)
    row, detected = decode(GAPS, encode(resolve(opened, "repaired", 1_700_000_001_000_000)))
    assert detected == 1_700_000_000_000_000
    assert dict(zip(GAP_COLUMNS, row, strict=True)) == {
        "gap_id": "BTCUSDT/trade/ids/1001-1050", "symbol": "BTCUSDT", "stream": "trade",
        "kind": "ids", "first_id": 1001, "last_id": 1050, "start_time": None, "end_time": None,
        "missing": 50, "reason": "stream", "status": "repaired",
        "detected_at": datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        "repaired_at": datetime(2023, 11, 14, 22, 13, 21, tzinfo=UTC),
    }  # fmt: skip
    row, _ = decode(GAPS, encode(window))
    assert row[6:8] == (datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), None) and row[10] == "open"


def test_gap_records_share_their_id() -> None:
    """Opening and resolving records share the stable gap_id; unrepairable says why."""
    rec = id_gap("BTCUSDT", "trade", 1001, 1050, "stream", now=7)
    assert rec["gap_id"] == "BTCUSDT/trade/ids/1001-1050" and rec["missing"] == 50 and rec["status"] == "open"
    fixed = resolve(rec, "repaired", 9)
    assert (fixed["gap_id"], fixed["status"], fixed["repaired_at"]) == (rec["gap_id"], "repaired", 9)
    lost = resolve(rec, "unrepairable", 9, 20, "REST no longer has ids 1001-1020")
    assert lost["missing"] == 20 and lost["reason"] == "stream: REST no longer has ids 1001-1020"
    window = time_gap("BTCUSDT", "bookTicker", 100, None, "reconnect", "open", 5)
    assert window["gap_id"] == "BTCUSDT/bookTicker/time/100" and window["kind"] == "time"
