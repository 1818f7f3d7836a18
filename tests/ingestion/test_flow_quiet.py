"""The pure Flow's Rule 8: a stream quiet since a reconnect is compared with REST's latest id."""

from __future__ import annotations

from collections import defaultdict

from ingestion.actions import Action, AskLatest, Backfill, PublishEvent, PublishGap
from ingestion.flow import Flow, Tallies
from tests.ingestion.test_flow import T0, WINDOW_US, trade

KEY = ("trade", "BTCUSDT")
QUIET_US = 5_000_000


def cut_after(last: int) -> Flow:
    """A flow that published ids up to ``last``, then lost its connection at T0."""
    flow = Flow(Tallies(defaultdict(int), defaultdict(int)), WINDOW_US, QUIET_US)
    flow.seed(KEY, 0)
    flow.attach("c1", ["btcusdt@trade"])
    for ident in range(1, last + 1):
        flow.receive("c1", trade(ident), T0)
    flow.retire("c1")
    flow.interrupt([KEY], T0, "reconnect", T0)
    flow.attach("c2", ["btcusdt@trade"])
    flow.take_actions()
    return flow


def asks(actions: list[Action]) -> list[AskLatest]:
    return [a for a in actions if isinstance(a, AskLatest)]


def test_quiet_stream_is_asked_about_once_after_the_quiet_time() -> None:
    """No event QUIET_US after the cut: one AskLatest, not before, not twice."""
    flow = cut_after(10)
    flow.tick(T0 + QUIET_US - 1)
    assert asks(flow.take_actions()) == []
    flow.tick(T0 + QUIET_US)
    assert asks(flow.take_actions()) == [AskLatest("BTCUSDT", "trade")]
    flow.tick(T0 + 2 * QUIET_US)
    assert asks(flow.take_actions()) == []


def test_repeated_cuts_do_not_postpone_the_question() -> None:
    """Reconnects every second of a feed that stays quiet: the first cut starts the clock."""
    flow = cut_after(10)
    for second in range(1, 5):
        flow.interrupt([KEY], T0 + second * 1_000_000, "reconnect", T0 + second * 1_000_000)
    flow.tick(T0 + QUIET_US)
    assert asks(flow.take_actions()) == [AskLatest("BTCUSDT", "trade")]


def test_latest_id_beyond_the_last_opens_the_gap_and_its_backfill() -> None:
    """REST's latest id 15 after last 10: gap 11-15 (reason reconnect), backfilled; 16 then flows."""
    flow = cut_after(10)
    flow.tick(T0 + QUIET_US)
    flow.take_actions()
    flow.latest_known(KEY, 15, T0 + QUIET_US + 1)
    actions = flow.take_actions()
    assert [type(a) for a in actions] == [PublishGap, Backfill]
    record = actions[0].record  # type: ignore[union-attr]
    assert (record["first_id"], record["last_id"], record["reason"]) == (11, 15, "reconnect")
    flow.receive("c2", trade(16), T0 + QUIET_US + 2)
    after = flow.take_actions()
    assert [type(a) for a in after] == [PublishEvent]  # contiguous: no second gap


def test_an_event_first_makes_the_question_moot() -> None:
    """An event before the quiet time reveals the gap itself: no AskLatest, a late answer is ignored."""
    flow = cut_after(10)
    flow.receive("c2", trade(13), T0 + 1_000)
    gaps = [a for a in flow.take_actions() if isinstance(a, PublishGap)]
    assert [(g.record["first_id"], g.record["last_id"]) for g in gaps] == [(11, 12)]
    flow.tick(T0 + QUIET_US)
    assert asks(flow.take_actions()) == []
    flow.latest_known(KEY, 20, T0 + QUIET_US)
    assert flow.take_actions() == []


def test_nothing_new_in_rest_or_no_answer_opens_nothing() -> None:
    """REST's latest id is the last published one, or REST failed: no gap."""
    for latest in (10, None):
        flow = cut_after(10)
        flow.tick(T0 + QUIET_US)
        flow.take_actions()
        flow.latest_known(KEY, latest, T0 + QUIET_US)
        assert flow.take_actions() == []


def test_stream_without_a_baseline_is_not_asked_about() -> None:
    """A stream cut before its first event has nothing to compare REST's latest id with."""
    flow = Flow(Tallies(defaultdict(int), defaultdict(int)), WINDOW_US, QUIET_US)
    flow.interrupt([KEY], T0, "reconnect", T0)
    flow.tick(T0 + QUIET_US)
    assert asks(flow.take_actions()) == []
