"""ingestion/checks.py: why a well-formed frame does not belong on its connection, word for word."""

from __future__ import annotations

from typing import Any, cast

from binance_pipeline.common.events import TradeMessage
from binance_pipeline.testing import events
from ingestion.checks import misplaced_in, out_of_window
from ingestion.links import Link
from ingestion.models import ControlReply
from ingestion.parse import Framed

AT = 1_723_100_000_000_000
WINDOW = 60_000_000  # 60 s


def trade(**changes: Any) -> TradeMessage:
    """The kit's trade 1 of BTCUSDT, traded and received at AT."""
    times = {"trade_time": AT, "event_time": AT, "received_at": AT}
    return cast(TradeMessage, events.trade(1, "BTCUSDT", **{**times, **changes}))


def link(combined: bool = True) -> Link:
    return Link(id="c1", streams=frozenset({"btcusdt@trade"}), combined=combined)


def test_a_control_reply_always_belongs() -> None:
    assert misplaced_in(link(), Framed(None, ControlReply(id=1)), WINDOW) is None


def test_a_bare_payload_is_misplaced_only_on_a_combined_connection() -> None:
    bare = Framed(None, trade())
    assert misplaced_in(link(), bare, WINDOW) == "bare payload without the combined-stream envelope"
    assert misplaced_in(link(combined=False), bare, WINDOW) is None


def test_an_unsubscribed_stream_is_named_cut_to_60_characters() -> None:
    name = "x" * 100
    assert misplaced_in(link(), Framed(name, trade()), WINDOW) == (
        f"stream {'x' * 60!r} was not subscribed on this connection")


def test_the_window_is_inclusive_and_the_reason_gives_seconds() -> None:
    assert out_of_window(trade(trade_time=AT + WINDOW), WINDOW) is None
    assert out_of_window(trade(trade_time=AT - WINDOW), WINDOW) is None
    assert out_of_window(trade(trade_time=AT - 90_000_000), WINDOW) == (
        f"trade time {AT - 90_000_000} us is -90 s from the receipt time (window 60 s)")


def test_the_event_time_is_checked_too_and_named() -> None:
    assert out_of_window(trade(event_time=AT + 120_000_000), WINDOW) == (
        f"event time {AT + 120_000_000} us is +120 s from the receipt time (window 60 s)")
    assert out_of_window(trade(event_time=None), WINDOW) is None


def test_a_trade_on_its_stream_is_checked_against_the_window() -> None:
    far = trade(trade_time=AT + WINDOW + 1)
    assert misplaced_in(link(), Framed("btcusdt@trade", far), WINDOW) == (
        f"trade time {AT + WINDOW + 1} us is +60 s from the receipt time (window 60 s)")
    assert misplaced_in(link(), Framed("btcusdt@trade", trade()), WINDOW) is None


def test_the_seconds_are_rounded_from_exact_microseconds() -> None:
    assert out_of_window(trade(trade_time=AT + 61_500_000), WINDOW) == (
        f"trade time {AT + 61_500_000} us is +62 s from the receipt time (window 60 s)")
