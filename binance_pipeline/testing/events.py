"""Builders of valid events, one place for every test and benchmark: the pipeline's messages (as
``binance_pipeline/common/events.py`` defines them) and the raw Binance frames ingestion reads.

Rule 1: pure. Values in, dicts or bytes out; no clock is read (times derive from ``T0_US`` and the
        ids, or are passed in), so the same call always builds the same event.
Rule 2: every builder takes ``**overrides`` applied last, so a test states only what it changes.
Rule 3: distinct ids give distinct rows: ``trade(i)`` for different ``i`` never collide.
"""

from __future__ import annotations

from typing import Any

import orjson

T0_US = 1_700_000_000_000_000  # 2023-11-14 22:13:20 UTC, in microseconds
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


def encode(message: dict[str, Any]) -> bytes:
    """A message as the stages put it on a topic (compact JSON)."""
    return orjson.dumps(message)


def trade(i: int, symbol: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Trade message number ``i``; the symbol cycles through ``SYMBOLS`` unless given."""
    msg: dict[str, Any] = {
        "v": 1, "type": "trade", "symbol": symbol or SYMBOLS[i % len(SYMBOLS)], "id": i,
        "price": f"{60000 + i % 1000}.{i % 97:02d}000000", "qty": "0.00100000",
        "first_id": None, "last_id": None, "trade_time": T0_US + i * 1000,
        "event_time": T0_US + i * 1000 + 7, "buyer_maker": bool(i & 1), "best_match": True,
        "received_at": T0_US + i * 1000 + 800, "source": "stream",
    }  # fmt: skip
    return {**msg, **overrides}


def agg_trade(i: int, symbol: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Aggregate trade message number ``i``, covering trade ids ``3i .. 3i+2``."""
    base = trade(i, symbol)
    return {**base, "type": "aggTrade", "first_id": 3 * i, "last_id": 3 * i + 2, "best_match": False,
            **overrides}  # fmt: skip


def book(i: int, symbol: str = "BTCUSDT", **overrides: Any) -> dict[str, Any]:
    """bookTicker message with update id ``i``."""
    msg: dict[str, Any] = {
        "v": 1, "type": "bookTicker", "symbol": symbol, "update_id": i, "bid_price": "100.10",
        "bid_qty": "1.5", "ask_price": "100.20", "ask_qty": "2.5", "received_at": T0_US + i,
        "source": "stream",
    }  # fmt: skip
    return {**msg, **overrides}


def gap(gap_id: str = "BTCUSDT/trade/ids/1001", status: str = "open", **overrides: Any) -> dict[str, Any]:
    """Gap message of 50 missing trade ids (1001-1050); repaired 5 s after detection unless open."""
    msg: dict[str, Any] = {
        "v": 1, "type": "gap", "gap_id": gap_id, "symbol": "BTCUSDT", "stream": "trade", "kind": "ids",
        "first_id": 1001, "last_id": 1050, "start_time": None, "end_time": None, "missing": 50,
        "reason": "stream", "status": status, "detected_at": T0_US,
        "repaired_at": None if status == "open" else T0_US + 5_000_000,
    }  # fmt: skip
    return {**msg, **overrides}


# --- raw Binance frames (event times in microseconds, as ingestion subscribes to them)
def trade_frame(ident: int, symbol: str = "BTCUSDT", at: int = T0_US, **overrides: Any) -> dict[str, Any]:
    """The ``data`` of a ``<symbol>@trade`` frame."""
    return {"e": "trade", "E": at, "s": symbol, "t": ident, "p": f"{67000 + ident % 1000}.50", "q": "0.010",
            "T": at, "m": ident % 2 == 0, **overrides}  # fmt: skip


def agg_trade_frame(ident: int, symbol: str = "BTCUSDT", at: int = T0_US, **overrides: Any) -> dict[str, Any]:
    """The ``data`` of a ``<symbol>@aggTrade`` frame, covering trade ids ``3 ident .. 3 ident+2``."""
    return {"e": "aggTrade", "E": at, "s": symbol, "a": ident, "p": f"{67000 + ident % 1000}.50",
            "q": "0.030", "f": 3 * ident, "l": 3 * ident + 2, "T": at, "m": ident % 2 == 0,
            **overrides}  # fmt: skip


def book_frame(ident: int, symbol: str = "BTCUSDT", **overrides: Any) -> dict[str, Any]:
    """The ``data`` of a ``<symbol>@bookTicker`` frame (Binance's carries no event type)."""
    return {"u": ident, "s": symbol, "b": "1", "B": "1", "a": "2", "A": "1", **overrides}


def combined(data: dict[str, Any], stream: str | None = None) -> bytes:
    """``data`` wrapped as a combined-stream frame; the stream name follows from the data unless given."""
    if stream is None:
        stream = f"{str(data['s']).lower()}@{data.get('e', 'bookTicker')}"
    return orjson.dumps({"stream": stream, "data": data})
