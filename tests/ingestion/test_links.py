"""ingestion/links.py: a rollover replacement's hand-off buffer (Rule 2)."""

from __future__ import annotations

from ingestion.links import Handoff


def test_drain_returns_what_was_held_in_order_and_stops_buffering() -> None:
    handoff = Handoff(buffering=True)
    handoff.hold({"e": "trade", "t": 7}, b"seven", ("trade", "BTCUSDT"), 7)  # type: ignore[arg-type]
    handoff.hold({"e": "trade", "t": 8}, b"eight", ("trade", "BTCUSDT"), 8)  # type: ignore[arg-type]
    assert handoff.first_ids == {("trade", "BTCUSDT"): 7}
    held = handoff.drain()
    assert [raw for _msg, raw in held] == [b"seven", b"eight"]
    assert handoff.buffering is False
    assert handoff.buffer == [] and handoff.first_ids == {}
