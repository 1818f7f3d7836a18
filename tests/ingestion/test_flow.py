"""Flow and the watch decision without sockets: frames and times in, actions out."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from ingestion.actions import Action, Backfill, DeadLetter, PublishEvent, PublishGap, Reply, VerifyJump
from ingestion.flow import Flow, Tallies
from ingestion.watch import KEEP, Decision, Limits, WatchState, decide

T0 = 1_800_000_000_000_000  # us
STREAMS = ("btcusdt@trade", "btcusdt@bookTicker")


def trade(ident: int, at: int = T0) -> bytes:
    data = {"e": "trade", "E": at, "s": "BTCUSDT", "t": ident, "p": "1.5", "q": "2", "T": at, "m": True}
    return orjson.dumps({"stream": "btcusdt@trade", "data": data})


def book(ident: int) -> bytes:
    data = {"u": ident, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}
    return orjson.dumps({"stream": "btcusdt@bookTicker", "data": data})


WINDOW_US = 600_000_000


def new_flow() -> Flow:
    """A flow whose trade baseline is seeded at 0, as from a stored frontier (no REST check)."""
    flow = Flow(Tallies(defaultdict(int), defaultdict(int)), WINDOW_US)
    flow.seed(("trade", "BTCUSDT"), 0)
    return flow


def published(actions: list[Action]) -> list[int]:
    out = []
    for a in actions:
        if isinstance(a, PublishEvent):
            msg: Any = a.msg
            out.append(msg["update_id"] if msg["type"] == "bookTicker" else msg["id"])
    return out


def feed(flow: Flow, conn: str, frames: list[bytes], at: int = T0) -> list[Action]:
    for raw in frames:
        flow.receive(conn, raw, at)
    return flow.take_actions()


def test_events_are_published_once_and_gaps_open_then_backfill() -> None:
    """New ids are published, repeats dropped, a jump opens a gap record before its backfill job."""
    flow = new_flow()
    flow.attach("c1", STREAMS)
    actions = feed(flow, "c1", [trade(1), trade(2), trade(2), trade(5)])
    assert published(actions) == [1, 2, 5]
    gap_at = next(i for i, a in enumerate(actions) if isinstance(a, PublishGap))
    assert isinstance(actions[gap_at + 1], Backfill)
    gap = actions[gap_at]
    assert isinstance(gap, PublishGap) and (gap.record["first_id"], gap.record["last_id"]) == (3, 4)


def test_replacement_buffers_until_overlapped_then_release_drops_the_overlap() -> None:
    """A buffering replacement publishes nothing; once the old one catches up, release dedupes."""
    flow = new_flow()
    flow.attach("old", STREAMS)
    feed(flow, "old", [trade(i) for i in range(1, 6)])
    flow.attach("new", STREAMS, buffering=True)
    assert feed(flow, "new", [trade(i) for i in range(4, 10)]) == []
    assert flow.buffered("new") == 6 and flow.overlapped("new")
    flow.retire("old")
    assert feed(flow, "old", [trade(6)]) == []  # a retired connection's frames are ignored
    assert flow.release("new") == 6
    actions = flow.take_actions()
    assert published(actions) == [6, 7, 8, 9]
    assert not any(isinstance(a, PublishGap) for a in actions)


def test_not_overlapped_while_old_connection_lags_behind() -> None:
    """A hole between what the old connection delivered and the replacement's first id is no overlap."""
    flow = new_flow()
    flow.attach("old", STREAMS)
    feed(flow, "old", [trade(1), trade(2)])
    flow.attach("new", STREAMS, buffering=True)
    feed(flow, "new", [trade(5), trade(6)])
    assert not flow.overlapped("new")
    feed(flow, "old", [trade(3), trade(4)])
    assert not flow.overlapped("new")  # joined (4 = 5 - 1) but nothing overlaps yet
    feed(flow, "old", [trade(5)])
    assert flow.overlapped("new")


def test_interrupt_then_reconnect_attributes_the_gap_and_records_book_window() -> None:
    """interrupt() opens a bookTicker time gap; the next id jump carries the cause."""
    flow = new_flow()
    flow.attach("c1", STREAMS)
    feed(flow, "c1", [trade(1), book(10)])
    flow.interrupt([("trade", "BTCUSDT"), ("bookTicker", "BTCUSDT")], T0, "reconnect", T0 + 1)
    [window] = flow.take_actions()
    assert isinstance(window, PublishGap) and window.record["kind"] == "time"
    flow.attach("c2", STREAMS)
    actions = feed(flow, "c2", [trade(4), book(20)], T0 + 5)
    gaps = [a.record for a in actions if isinstance(a, PublishGap)]
    assert [(g["kind"], g["reason"], g["status"]) for g in gaps] == [
        ("ids", "reconnect", "open"), ("time", "reconnect: bookTicker has no REST backfill", "unrepairable"),
    ]  # fmt: skip


def test_bad_frame_is_dead_lettered_and_reply_routed() -> None:
    """A malformed frame becomes a DeadLetter with a reason; a control reply goes to its pending request."""
    flow = new_flow()
    flow.attach("c1", STREAMS)
    flow.request_sent("c1", 1)
    actions = feed(flow, "c1", [b"{nope", b'{"result":null,"id":1}', b'{"result":null,"id":1}'])
    dead, reply, again = actions
    assert isinstance(dead, DeadLetter) and dead.reason.startswith("invalid JSON")
    assert isinstance(reply, Reply) and reply.conn_id == "c1" and reply.reply.id == 1
    assert isinstance(again, DeadLetter) and "matches no pending request" in again.reason


def test_losses_become_gaps_after_a_quiet_period() -> None:
    """Lost ids are folded into one range and opened as a gap once no loss came for a second."""
    flow = new_flow()
    for i in (7, 8, 9):
        flow.lost("BTCUSDT", "trade", i, T0, "producer_overflow", T0)
    flow.tick(T0 + 500_000)
    assert flow.take_actions() == []
    flow.tick(T0 + 1_000_000)
    gap, job = flow.take_actions()
    assert isinstance(gap, PublishGap) and gap.record["gap_id"] == "BTCUSDT/trade/ids/7-9"
    assert isinstance(job, Backfill)


LIMITS = Limits(stall_s=10, rollover_s=100, stable_s=30)


def state(**kw: Any) -> WatchState:
    base: dict[str, Any] = {"ended": None, "last_frame_at": T0, "opened_at": 0.0, "shutdown_notice": False,
                            "stable": False}  # fmt: skip
    return WatchState(**{**base, **kw})


def test_watch_decision_rules_in_order() -> None:
    """ended > stalled > serverShutdown > age > stable > keep."""
    assert decide(state(), T0 + 1, 5.0, LIMITS) == KEEP
    assert decide(state(ended="closed 1006", shutdown_notice=True), T0 + 11_000_001, 500, LIMITS) == Decision(
        "replace", "closed 1006"
    )
    assert decide(state(shutdown_notice=True), T0 + 10_000_001, 500, LIMITS).why.startswith("stalled")
    assert decide(state(shutdown_notice=True), T0 + 10_000_000, 500, LIMITS) == Decision(
        "rollover", "serverShutdown"
    )
    assert decide(state(), T0, 100.0, LIMITS) == Decision("rollover", "age")
    assert decide(state(), T0, 30.0, LIMITS) == Decision("stable")
    assert decide(state(stable=True), T0, 30.0, LIMITS) == KEEP


def test_why_1_a_duplicate_key_far_ahead_silences_nothing() -> None:
    """Issue 16 'Why' 1: a trade repeating "t" 500,000 ahead is dead-lettered; the next 5 trades publish."""
    flow = new_flow()
    flow.attach("c1", STREAMS)
    poison = trade(3).replace(b'"t":3,', b'"t":3,"t":500003,')
    actions = feed(flow, "c1", [trade(1), trade(2), poison] + [trade(i) for i in range(3, 8)])
    assert published(actions) == [1, 2, 3, 4, 5, 6, 7]
    assert [a.reason for a in actions if isinstance(a, DeadLetter)] == ["duplicate key 't' in a JSON object"]
    assert not any(isinstance(a, PublishGap) for a in actions)


def test_implausible_jump_waits_for_rest_then_is_dead_lettered_or_accepted() -> None:
    """A far jump is held for REST: in-order trades flow meanwhile; unconfirmed it is dead-lettered,
    confirmed it opens the gap it reveals."""
    flow = new_flow()
    flow.attach("c1", STREAMS)
    actions = feed(flow, "c1", [trade(1), trade(500_000), trade(2), trade(3)])
    assert published(actions) == [1, 2, 3]
    [check] = [a for a in actions if isinstance(a, VerifyJump)]
    assert (check.stream, check.symbol, check.ident) == ("trade", "BTCUSDT", 500_000)
    flow.jump_checked(check.token, None, False)
    [dead] = flow.take_actions()
    assert isinstance(dead, DeadLetter) and "not confirmed: REST has no such trade" in dead.reason
    actions = feed(flow, "c1", [trade(600_000)])
    [check] = [a for a in actions if isinstance(a, VerifyJump)]
    row: Any = orjson.loads(trade(600_000))["data"]
    found: Any = {"id": 600_000, "price": row["p"], "qty": row["q"], "trade_time": row["T"]}
    flow.jump_checked(check.token, found, False)
    gap, job, event = flow.take_actions()
    assert isinstance(gap, PublishGap) and (gap.record["first_id"], gap.record["last_id"]) == (4, 599_999)
    assert isinstance(job, Backfill) and published([event]) == [600_000]


def test_a_late_id_inside_an_open_gap_is_published_once() -> None:
    """A fill is published (not dropped as a duplicate), and only once."""
    flow = new_flow()
    flow.attach("c1", STREAMS)
    actions = feed(flow, "c1", [trade(1), trade(5), trade(3), trade(3), trade(6)])
    assert published(actions) == [1, 5, 3, 6]
