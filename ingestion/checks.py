"""Checks of a well-formed frame against its connection and the clock (pure).

``parse`` decides whether a frame is well-formed on its own; these checks decide whether it
belongs where and when it arrived. ``Flow`` dead-letters a frame for which one returns a reason.

Rules:
  1. On a combined connection (``Link.combined``) every event comes in a ``{"stream", "data"}``
     envelope, and its stream is one the connection subscribed (``!serverShutdown`` aside).
     Control replies come bare; whether one is expected is the flow's to decide.
  2. A trade's or aggTrade's trade time and event time lie within ``window`` us of its
     receipt time (``INGESTION_TIME_WINDOW_S``); bookTicker carries no times.
  3. A REST row confirms a frame only when it is the same trade, compared exactly (ids and
     times as integers, prices and quantities as decimals, never floats).
"""

from __future__ import annotations

from decimal import Decimal

from binance_pipeline.common.events import TradeMessage
from ingestion.links import Link
from ingestion.models import ControlReply
from ingestion.parse import SHUTDOWN_STREAM, Parsed


def misplaced_in(link: Link, framed: tuple[str | None, Parsed], window: int) -> str | None:
    """Why a well-formed frame (``parse.Framed``, or ``parse.decode``'s pair) does not belong on
    this connection now, or None (Rules 1-2)."""
    stream, item = framed
    if type(item) is ControlReply:
        return None
    if stream is None:
        return "bare payload without the combined-stream envelope" if link.combined else None
    if stream not in link.streams and stream != SHUTDOWN_STREAM:
        return f"stream {stream[:60]!r} was not subscribed on this connection"
    if isinstance(item, dict) and item["type"] != "bookTicker":
        return out_of_window(item, window)
    return None


def out_of_window(msg: TradeMessage, window: int) -> str | None:
    """Rule 2."""
    at, trade_time, event_time = msg["received_at"], msg["trade_time"], msg["event_time"]
    if trade_time is not None and abs(trade_time - at) > window:
        return _outside("trade time", trade_time, at, window)
    if event_time is not None and abs(event_time - at) > window:
        return _outside("event time", event_time, at, window)
    return None


def _outside(name: str, value: int, at: int, window: int) -> str:
    return (f"{name} {value} us is {(value - at) / 1e6:+.0f} s from the receipt time "
            f"(window {window / 1e6:g} s)")  # fmt: skip


def same_trade(found: TradeMessage | None, msg: TradeMessage) -> bool:
    """REST's row is the frame's trade: same id, price, quantity and trade time (exactly)."""
    return (
        found is not None and found["id"] == msg["id"] and found["trade_time"] == msg["trade_time"]
        and Decimal(found["price"]) == Decimal(msg["price"]) and Decimal(found["qty"]) == Decimal(msg["qty"])
    )  # fmt: skip
