"""A live SUBSCRIBE/UNSUBSCRIBE (universe seam) changes which streams the flow accepts on that link."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from ingestion.actions import DeadLetter, PublishEvent
from ingestion.flow import Flow, Tallies

T0 = 1_800_000_000_000_000


def frame(symbol: str, ident: int) -> bytes:
    data: dict[str, Any] = {"e": "trade", "E": T0, "s": symbol, "t": ident, "p": "1.5", "q": "2",
                            "T": T0, "m": False}  # fmt: skip
    return orjson.dumps({"stream": f"{symbol.lower()}@trade", "data": data})


def test_subscribed_stream_is_accepted_and_unsubscribed_one_rejected() -> None:
    """ETH frames: dead-lettered before restream adds ethusdt@trade, published after, rejected once gone."""
    flow = Flow(Tallies(defaultdict(int), defaultdict(int)), 600_000_000)
    flow.seed(("trade", "ETHUSDT"), 0)
    flow.attach("c1", ["btcusdt@trade"])
    flow.receive("c1", frame("ETHUSDT", 1), T0)
    [before] = flow.take_actions()
    assert isinstance(before, DeadLetter) and "was not subscribed" in before.reason
    flow.restream("c1", ["btcusdt@trade", "ethusdt@trade"])
    flow.receive("c1", frame("ETHUSDT", 1), T0)
    [after] = flow.take_actions()
    assert isinstance(after, PublishEvent)
    flow.restream("c1", ["btcusdt@trade"])
    flow.receive("c1", frame("ETHUSDT", 2), T0)
    [gone] = flow.take_actions()
    assert isinstance(gone, DeadLetter)
