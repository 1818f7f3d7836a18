"""ingestion.records: every gap record ingestion can build is one the worker's decoder accepts."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from hypothesis import given
from hypothesis import strategies as st

from binance_pipeline.common.events import CUT_MARKER, TEXT_MAX, TEXT_RE, GapMessage, bounded_text, encode
from binance_pipeline.common.settings import STREAM_TYPES
from consumer.decode import GAP_COLUMNS, GAPS, decode
from ingestion.errors import BackfillError
from ingestion.records import id_gap, resolve, time_gap

REASON = GAP_COLUMNS.index("reason")
SYMBOLS = st.sampled_from(["BTCUSDT", "ETHUSDT", "1000SATSUSDT"])
IDS = st.integers(0, 2**62)
TIMES = st.integers(0, 2**52)


def stored_reason(record: GapMessage) -> str:
    """The reason column of the row the worker's decoder makes of ``record`` (raises if refused)."""
    row, _ = decode(GAPS, encode(record))
    assert isinstance(row, tuple)
    return str(row[REASON])


def rest_unreachable() -> str:
    """The ``why`` backfill writes when REST refuses connections (its BackfillError text, quoted)."""
    key = ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)")
    exc = aiohttp.ClientConnectorError(key, refused)
    return f"REST failed from id 1001: {BackfillError(f'{exc!r} after 5 attempt(s)')}"


@given(reason=st.text(), why=st.text(), symbol=SYMBOLS, first=IDS, span=st.integers(0, 10**6),
       now=TIMES, status=st.sampled_from(["repaired", "unrepairable"]))
def test_any_id_gap_text_makes_a_record_the_worker_accepts(
    reason: str, why: str, symbol: str, first: int, span: int, now: int, status: str
) -> None:
    """An id gap, open and resolved, with any reason and any exception text, decodes in the worker."""
    opened = id_gap(symbol, "trade", first, first + span, reason, now)
    closed = resolve(opened, status, now + 1, span, why)  # type: ignore[arg-type]
    assert stored_reason(opened) == opened["reason"]
    assert stored_reason(closed) == closed["reason"]


@given(reason=st.text(), why=st.text(), stream=st.sampled_from(STREAM_TYPES), start=TIMES,
       end=st.none() | TIMES, status=st.sampled_from(["open", "unrepairable"]))
def test_any_time_gap_text_makes_a_record_the_worker_accepts(
    reason: str, why: str, stream: str, start: int, end: int | None, status: str
) -> None:
    """A time gap, and the record closing it, with any reason and any why, decodes in the worker."""
    opened = time_gap("BTCUSDT", stream, start, end, reason, status, start)  # type: ignore[arg-type]
    assert stored_reason(opened) == opened["reason"]
    assert stored_reason(resolve(opened, "unrepairable", start + 1, None, why))


def test_rest_unreachable_reason_is_cut_with_the_marker() -> None:
    """The REST-unreachable reason (over 200 characters) is cut to 200, ending with the marker."""
    why = rest_unreachable()
    assert len(why) > TEXT_MAX
    closed = resolve(id_gap("BTCUSDT", "trade", 1001, 1050, "reconnect", 1), "unrepairable", 2, 50, why)
    assert closed["reason"] == f"reconnect: {why}"[: TEXT_MAX - len(CUT_MARKER)] + CUT_MARKER
    assert stored_reason(closed) == closed["reason"]


@pytest.mark.parametrize(
    ("text", "bounded"),
    [
        ("stream", "stream"),
        ("", "?"),
        ("line\nbreak\ttab", "line?break?tab"),
        ("a\\b é", "a?b ?"),
        ("x" * TEXT_MAX, "x" * TEXT_MAX),
        ("y" * (TEXT_MAX + 1), "y" * (TEXT_MAX - len(CUT_MARKER)) + CUT_MARKER),
    ],
)
def test_bounded_text_keeps_valid_text_and_repairs_the_rest(text: str, bounded: str) -> None:
    """Valid text is kept as it is; other characters become "?", long text is cut with the marker."""
    assert bounded_text(text) == bounded
    assert TEXT_RE.fullmatch(bounded)


@given(st.text())
def test_bounded_text_always_matches_the_contract_pattern(text: str) -> None:
    """Whatever the input, the output is 1-200 printable ASCII characters without backslash."""
    assert TEXT_RE.fullmatch(bounded_text(text))
