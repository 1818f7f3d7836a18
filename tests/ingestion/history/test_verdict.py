"""The history import's closing verdict: the database audit's answer, worded per symbol and stream."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest

from db.store import audit as au
from ingestion.history.errors import AuditError
from ingestion.history.run import Series
from ingestion.history.verdict import StreamVerdict, audit_import, verdicts
from tests.db.store.audit_tape import T0, Tape, synthetic

SPAN = (int(T0.timestamp() * 1_000_000), int((T0 + timedelta(minutes=10)).timestamp() * 1_000_000))


def _hole(stream: str, first: int, last: int, why: str = "unexplained") -> au.Hole:
    return au.Hole(stream, first, last, last - first + 1, T0, T0, why, None, None)


def _answer(holes: list[au.Hole], mismatches: int = 0) -> au.Audit:
    streams = [au.StreamAudit("trade", 190, 1000, 1199, 1, 10, 0, False),
               au.StreamAudit("aggTrade", 100, 500, 599, 0, 0, 1, False)]  # fmt: skip
    bad = [au.AggMismatch(T0, 501, 1002, 1003, Decimal(1), Decimal(2), 2, 2, "quantity")] * mismatches
    return au.Audit("BTCUSDT", T0, T0, False, streams, holes, [], True, bad)


def test_clean_line_is_worded_as_before() -> None:
    """A stream with rows, no hole and no duplicate reads 'CLEAN (every id once, no hole)'."""
    v = StreamVerdict("BTCUSDT", "trade", 105_829, 660536989, 660642817, 0, 0)
    assert v.clean
    assert v.line() == "BTCUSDT trade: 105,829 rows, ids 660536989..660642817: CLEAN (every id once, no hole)"


def test_a_stream_without_rows_is_not_clean() -> None:
    """No row written (the worker never got there) is not a clean range."""
    assert not StreamVerdict("BTCUSDT", "trade", 0, None, None, 0, 0).clean


def test_holes_split_by_gap_records_show_as_one() -> None:
    """The audit's pieces of one hole (split by gap records) are shown as the hole they make."""
    trade, agg = verdicts(_answer([_hole("trade", 1010, 1014), _hole("trade", 1015, 1019, "repaired")]))
    assert trade.holes == [(1010, 1019)] and not trade.clean
    assert trade.line() == ("BTCUSDT trade: 190 rows, ids 1000..1199: NOT CLEAN (10 missing in 1010-1019, "
                            "0 duplicated)")  # fmt: skip
    assert agg.line() == "BTCUSDT aggTrade: 100 rows, ids 500..599: NOT CLEAN (0 missing, 1 duplicated)"


def test_trade_agg_disagreements_count_on_the_aggtrade_line() -> None:
    """aggTrades that disagree with their trades make the aggTrade line NOT CLEAN and are counted there."""
    trade, agg = verdicts(_answer([], mismatches=2))
    assert trade.mismatches == 0 and agg.mismatches == 2
    assert agg.line().endswith("NOT CLEAN (0 missing, 1 duplicated, 2 disagreeing with their trades)")


def _series(stream: str, first: int, last: int, rows: int) -> Series:
    return Series("BTCUSDT", stream, first, last, rows)


def test_the_database_audit_judges_the_written_range(db_url: str) -> None:
    """A complete tape is CLEAN; once a hole is cut, NOT CLEAN with that hole (as db.query audit finds)."""
    tape = Tape(db_url)
    tape.insert(synthetic(200))
    series = [_series("trade", 1000, 1199, 200), _series("aggTrade", 500, 599, 100)]
    clean = audit_import(db_url, 60_000, series, SPAN, 5.0)
    assert [(v.stream, v.rows, v.clean) for v in clean] == [("trade", 200, True), ("aggTrade", 100, True)]
    tape.hole("trade", 1010, 1014)
    trade, agg = audit_import(db_url, 60_000, series, SPAN, 0.0)
    assert (trade.missing, trade.holes, trade.clean) == (5, [(1010, 1014)], False)
    assert agg.mismatches > 0 and not agg.clean  # the aggTrades over the lost trades disagree


def test_waits_for_the_worker_then_reports_the_missing_table(db_url: str) -> None:
    """No trades table: waited for like missing rows, then the audit is unavailable (AuditError)."""
    started = time.monotonic()
    with pytest.raises(AuditError):
        audit_import(db_url, 60_000, [_series("trade", 1000, 1199, 200)], SPAN, 1.0)
    assert time.monotonic() - started >= 1.0
