"""The pure Flow's resume seam: a stream armed from the frontier starts at its stored baseline."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from ingestion.actions import Action, Backfill, PublishEvent, PublishGap, VerifyJump
from ingestion.flow import Flow, Tallies
from ingestion.frontier import FrontierEntry, Resumer

T0 = 1_800_000_000_000_000
HOUR_US = 3_600_000_000
KEY = ("trade", "BTCUSDT")


def frame(ident: int) -> bytes:
    data: dict[str, Any] = {"e": "trade", "E": T0, "s": "BTCUSDT", "t": ident, "p": "67000.5",
                            "q": "0.001", "T": T0, "m": True}  # fmt: skip
    return orjson.dumps({"stream": "btcusdt@trade", "data": data})


def resumed(last_id: int, first_id: int, written_at: int = T0 - 1_000_000) -> tuple[Flow, list[Action]]:
    """A flow armed with a frontier entry (last id ``last_id``) receives id ``first_id``."""
    flow = Flow(Tallies(defaultdict(int), defaultdict(int)), 600_000_000)
    entry = FrontierEntry("trade", "BTCUSDT", last_id, T0 - 2_000_000, written_at=written_at)
    flow.arm(Resumer({KEY: entry}, HOUR_US))
    flow.attach("c1", ["btcusdt@trade"])
    flow.receive("c1", frame(first_id), T0)
    return flow, flow.take_actions()


def test_contiguous_first_id_is_published_without_a_rest_check() -> None:
    """The frontier seeds the baseline: the first id after it needs no VerifyJump and opens no gap."""
    flow, actions = resumed(100, 101)
    assert [type(a) for a in actions] == [PublishEvent]
    assert flow.resume is None  # disarmed once every key made first contact


def test_restart_gap_is_opened_and_backfilled_before_the_event() -> None:
    """Ids missed while no instance ran become an open restart gap, handed to backfill, then the event."""
    _, actions = resumed(100, 150)
    assert [type(a) for a in actions] == [PublishGap, Backfill, PublishEvent]
    gap = actions[0]
    assert isinstance(gap, PublishGap) and gap.counts == "detected"
    assert gap.record["reason"] == "restart" and gap.record["status"] == "open"
    assert (gap.record["first_id"], gap.record["last_id"]) == (101, 149)
    assert not any(isinstance(a, VerifyJump) for a in actions)


def test_stale_frontier_gap_is_recorded_unrepairable_and_not_backfilled() -> None:
    """A frontier older than the max age gives an unrepairable restart gap, counted detected and resolved."""
    _, actions = resumed(100, 150, written_at=T0 - 2 * HOUR_US)
    assert [type(a) for a in actions] == [PublishGap, PublishEvent]
    gap = actions[0]
    assert isinstance(gap, PublishGap) and gap.counts == "settled"
    assert gap.record["status"] == "unrepairable"


def test_unarmed_stream_still_asks_rest_for_its_first_id() -> None:
    """Without a frontier entry the first id is verified against REST (flow Rule 6 unchanged)."""
    flow = Flow(Tallies(defaultdict(int), defaultdict(int)), 600_000_000)
    flow.attach("c1", ["btcusdt@trade"])
    flow.receive("c1", frame(7), T0)
    assert [type(a) for a in flow.take_actions()] == [VerifyJump]
