"""Gap records of the contract (pure): what was lost, why, and what became of it.

Rules:
  1. A gap's ``gap_id`` is stable (``binance_pipeline.common.events.id_gap_id`` / ``time_gap_id``): the record
     that opens a gap and the one that resolves it share it, so readers keep the most advanced
     status.
  2. ``resolve`` copies the opening record and changes only status, ``repaired_at``, and, for
     an unrepairable gap, ``missing`` (ids still missing) and ``reason`` (why).
  3. Valid by construction: every ``reason`` goes through ``bounded_text`` here, where records
     are made, so whatever text it quotes (an exception's repr, a REST body) the record is one
     the worker's decoder accepts (binance_pipeline/common/events.py Rule 5).
"""

from __future__ import annotations

from binance_pipeline.common.events import (
    CONTRACT_VERSION,
    GapMessage,
    GapStatus,
    bounded_text,
    id_gap_id,
    time_gap_id,
)


def id_gap(symbol: str, stream: str, first: int, last: int, reason: str, now: int) -> GapMessage:
    """An open gap of ids ``first..last`` of a trade or aggTrade stream."""
    return {
        "v": CONTRACT_VERSION, "type": "gap", "gap_id": id_gap_id(symbol, stream, first, last),
        "symbol": symbol, "stream": stream, "kind": "ids", "first_id": first, "last_id": last,
        "start_time": None, "end_time": None, "missing": last - first + 1, "reason": bounded_text(reason),
        "status": "open", "detected_at": now, "repaired_at": None,
    }  # fmt: skip


def time_gap(
    symbol: str, stream: str, start: int, end: int | None, reason: str, status: GapStatus, now: int
) -> GapMessage:
    """A window ``start..end`` (us) in which a stream delivered nothing we kept."""
    return {
        "v": CONTRACT_VERSION, "type": "gap", "gap_id": time_gap_id(symbol, stream, start),
        "symbol": symbol, "stream": stream, "kind": "time", "first_id": None, "last_id": None,
        "start_time": start, "end_time": end, "missing": None, "reason": bounded_text(reason),
        "status": status, "detected_at": now, "repaired_at": None,
    }  # fmt: skip


def resolve(
    record: GapMessage, status: GapStatus, now: int, missing: int | None = None, why: str = ""
) -> GapMessage:
    """The record that closes ``record`` (Rule 2)."""
    closed: GapMessage = {**record, "status": status}
    if status == "repaired":
        closed["repaired_at"] = now
    else:
        closed["missing"] = missing if missing is not None else record["missing"]
        closed["reason"] = bounded_text(f"{record['reason']}: {why}" if why else record["reason"])
    return closed
