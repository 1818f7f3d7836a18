"""ingestion.flow's contract: the exact actions each input queues and the log lines an operator reads.

Each test names one behaviour of the module's Rules (its docstring): dead letters carry their
connection, frame, reason, receipt time and (type, symbol); gap records are the ones
``ingestion.records`` builds; the tallies count; the rollover and REST-check boundaries hold.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import orjson
import pytest

from ingestion.actions import (
    Action,
    AskLatest,
    Backfill,
    DeadLetter,
    PublishEvent,
    PublishGap,
    Reply,
    VerifyJump,
)
from ingestion.flow import LOG_EVERY_US, UNKNOWN, Flow, Tallies, key_of_stream
from ingestion.frontier import FrontierEntry, Resumer
from ingestion.records import id_gap, resolve, time_gap
from tests.ingestion.test_flow import T0, WINDOW_US, book, published, trade

LOG = "ingestion.flow"
TRADE, AGG, BOOK = ("trade", "BTCUSDT"), ("aggTrade", "BTCUSDT"), ("bookTicker", "BTCUSDT")
STREAMS = ("btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker")
HOUR_US = 3_600_000_000


def make(seed: int | None = 0) -> tuple[Flow, Tallies]:
    """A flow with connection c1 on STREAMS; the trade baseline seeded at ``seed`` (None: unseeded)."""
    tallies = Tallies(defaultdict(int), defaultdict(int))
    flow = Flow(tallies, WINDOW_US)
    if seed is not None:
        flow.seed(TRADE, seed)
    flow.attach("c1", STREAMS)
    return flow, tallies


def agg(ident: int, at: int = T0) -> bytes:
    data = {"e": "aggTrade", "E": at, "s": "BTCUSDT", "a": ident, "p": "1.5", "q": "2", "f": ident,
            "l": ident, "T": at, "m": True}  # fmt: skip
    return orjson.dumps({"stream": "btcusdt@aggTrade", "data": data})


def feed(flow: Flow, conn: str, frames: list[bytes], at: int = T0) -> list[Action]:
    for raw in frames:
        flow.receive(conn, raw, at)
    return flow.take_actions()


def of(kind: type[Any], actions: list[Action]) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOG]


def found_row(raw: bytes, **changes: Any) -> Any:
    """REST's row for the trade in ``raw`` (as ``rest`` returns it), with ``changes``."""
    data = orjson.loads(raw)["data"]
    return {"id": data["t"], "price": data["p"], "qty": data["q"], "trade_time": data["T"], **changes}


# ------------------------------------------------------------------ Rule 2: dead letters
def test_a_binary_frame_is_dead_lettered_with_its_connection_time_and_unknown_key() -> None:
    flow, _ = make()
    flow.receive("c1", trade(1), T0 + 3, binary=True)
    assert flow.take_actions() == [
        DeadLetter("c1", trade(1), "binary frame: the exchange sends text frames", T0 + 3, UNKNOWN)
    ]


def test_a_frame_parse_rejects_is_dead_lettered_under_its_streams_key() -> None:
    """The stream named by the frame gives the key even though its payload was refused."""
    flow, _ = make()
    bad = trade(1).replace(b'"p":"1.5"', b'"p":"0"')
    assert feed(flow, "c1", [bad], T0 + 3) == [
        DeadLetter("c1", bad, "invalid trade: p: Value error, must be positive", T0 + 3, TRADE)
    ]


def test_a_misplaced_event_is_dead_lettered_under_its_own_type_and_symbol() -> None:
    """A bare trade payload on a combined connection: keyed by the trade, not by the missing stream."""
    flow, _ = make()
    bare = orjson.dumps(orjson.loads(trade(1))["data"])
    assert feed(flow, "c1", [bare], T0 + 3) == [
        DeadLetter("c1", bare, "bare payload without the combined-stream envelope", T0 + 3, TRADE)
    ]


def test_a_misplaced_shutdown_notice_is_keyed_by_its_stream_name() -> None:
    """No event to key it by: the stream's name gives (type, SYMBOL), or unknown when there is none."""
    flow, _ = make()
    named = orjson.dumps({"stream": "btcusdt@serverShutdown", "data": {"e": "serverShutdown", "E": T0}})
    bare = orjson.dumps({"e": "serverShutdown", "E": T0})
    assert feed(flow, "c1", [named, bare], T0 + 3) == [
        DeadLetter("c1", named, "stream 'btcusdt@serverShutdown' was not subscribed on this connection",
                   T0 + 3, ("serverShutdown", "BTCUSDT")),
        DeadLetter("c1", bare, "bare payload without the combined-stream envelope", T0 + 3, UNKNOWN),
    ]  # fmt: skip
    assert not flow.shutdown_noticed("c1")


def test_a_reply_to_no_pending_request_is_dead_lettered_with_its_id_cut_at_20_characters() -> None:
    flow, _ = make()
    raw = orjson.dumps({"result": None, "id": "0123456789abcdefghijKLMN"})
    assert feed(flow, "c1", [raw], T0 + 3) == [
        DeadLetter("c1", raw, "control reply with id '0123456789abcdefghij' matches no pending request",
                   T0 + 3, UNKNOWN)
    ]  # fmt: skip


def test_a_request_given_up_no_longer_matches_its_reply() -> None:
    """request_done forgets the id: its late reply is dead-lettered; other connections are untouched."""
    flow, _ = make()
    flow.attach("c2", STREAMS)
    for conn in ("c1", "c2"):
        flow.request_sent(conn, 5)
    flow.request_done("c1", 5)
    flow.request_done("gone", 5)  # an unknown connection: nothing to forget
    flow.request_sent("gone", 6)
    raw = b'{"result":null,"id":5}'
    [dead] = feed(flow, "c1", [raw], T0)
    assert isinstance(dead, DeadLetter)
    assert dead.reason == "control reply with id '5' matches no pending request"
    [reply] = feed(flow, "c2", [raw], T0)
    assert isinstance(reply, Reply) and reply.conn_id == "c2"


def test_dead_letters_are_counted_in_a_warning_at_most_every_five_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first is logged whenever it comes, then one line per LOG_EVERY_US with the running count."""
    caplog.set_level(logging.WARNING, LOG)
    flow, _ = make()
    for at in (0, LOG_EVERY_US - 1, LOG_EVERY_US, 2 * LOG_EVERY_US - 1, 2 * LOG_EVERY_US):
        flow.receive("c1", b"x", at, binary=True)
    line = "c1: frame dead-lettered (%d so far): binary frame: the exchange sends text frames"
    assert messages(caplog) == [(logging.WARNING, line % n) for n in (1, 3, 5)]
    assert len(flow.take_actions()) == 5


# ------------------------------------------------------------------ tallies
def test_received_and_duplicate_events_are_tallied_per_stream() -> None:
    """Every accepted frame counts as received (buffered ones too); repeats count as duplicates."""
    flow, tallies = make()
    feed(flow, "c1", [trade(1), trade(2), trade(2), trade(2), book(7)])
    flow.attach("c2", STREAMS, buffering=True)
    feed(flow, "c2", [trade(2)])
    assert dict(tallies.received) == {TRADE: 5, BOOK: 1}
    assert dict(tallies.duplicates) == {TRADE: 2}


# ------------------------------------------------------------------ Rule 3: gap records
def test_an_id_jump_publishes_its_gap_record_then_hands_the_same_record_to_backfill(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cause "stream" when no interruption explains it, detected at the revealing event's receipt."""
    caplog.set_level(logging.WARNING, LOG)
    flow, _ = make()
    actions = feed(flow, "c1", [trade(1), trade(5)], T0 + 7)
    record = id_gap("BTCUSDT", "trade", 2, 4, "stream", T0 + 7)
    assert actions[1:3] == [PublishGap(record, "detected"), Backfill(record)]
    assert messages(caplog) == [
        (logging.WARNING, "gap BTCUSDT/trade/ids/2-4: 3 ids missing (stream); backfilling from REST")
    ]


def test_a_book_ticker_window_opens_at_the_cut_and_closes_at_the_next_book_ticker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only a bookTicker event of that symbol closes it (a trade does not), unrepairable, ending then."""
    caplog.set_level(logging.INFO, LOG)
    flow, _ = make()
    flow.interrupt([BOOK], T0, "reconnect", T0 + 1)
    flow.interrupt([BOOK], T0 + 2, "reconnect", T0 + 3)  # the window is open already
    record = time_gap("BTCUSDT", "bookTicker", T0, None, "reconnect", "open", T0 + 1)
    assert flow.take_actions() == [PublishGap(record, "detected")]
    assert published(feed(flow, "c1", [trade(1)], T0 + 1_000_000)) == [1]
    end = T0 + 1_000_000_000
    actions = feed(flow, "c1", [book(9)], end)
    why = "bookTicker has no REST backfill"
    closed = {**resolve(record, "unrepairable", end, None, why), "end_time": end}
    assert actions[0] == PublishGap(closed, "resolved") and published(actions[1:]) == [9]
    assert messages(caplog)[-1] == (
        logging.INFO, f"gap {record['gap_id']} closed: bookTicker resumed after 1000.000 s"
    )  # fmt: skip


def test_a_quiet_streams_gap_is_detected_when_rest_answers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOG)
    flow, _ = make()
    feed(flow, "c1", [trade(1), trade(2)])
    flow.interrupt([TRADE], T0, "reconnect", T0)
    flow.latest_known(TRADE, 9, T0 + 6)
    record = id_gap("BTCUSDT", "trade", 3, 9, "reconnect", T0 + 6)
    assert flow.take_actions() == [PublishGap(record, "detected"), Backfill(record)]
    assert messages(caplog)[0] == (
        logging.WARNING, "BTCUSDT trade: quiet since it was cut (reconnect); REST's latest id is 9"
    )  # fmt: skip


def test_lost_ids_and_book_tickers_both_become_gaps_in_one_tick(caplog: pytest.LogCaptureFixture) -> None:
    """Ids: an open gap and its backfill; a bookTicker window: unrepairable, with the count lost."""
    caplog.set_level(logging.WARNING, LOG)
    flow, _ = make()
    flow.lost("BTCUSDT", "trade", 7, T0, "producer_overflow", T0)
    flow.lost("BTCUSDT", "bookTicker", None, T0 + 5, "producer_overflow", T0)
    flow.lost("BTCUSDT", "bookTicker", None, T0 + 8, "producer_overflow", T0)
    now = T0 + 1_000_000
    flow.tick(now)
    ids = id_gap("BTCUSDT", "trade", 7, 7, "producer_overflow", now)
    window = {**time_gap("BTCUSDT", "bookTicker", T0 + 5, T0 + 8, "producer_overflow", "unrepairable", now),
              "missing": 2}  # fmt: skip
    assert flow.take_actions() == [PublishGap(ids, "detected"), Backfill(ids), PublishGap(window, "detected")]
    assert messages(caplog)[-1] == (
        logging.WARNING, f"gap {window['gap_id']}: 2 events lost (producer_overflow), not repairable"
    )  # fmt: skip


# ------------------------------------------------------------------ Rule 6: jumps checked by REST
def test_an_unconfirmed_jump_is_dead_lettered_as_its_connection_received_it() -> None:
    """The suspect's own connection, frame and receipt time; REST's missing row is the reason."""
    flow, _ = make()
    feed(flow, "c1", [trade(1)])
    flow.attach("c2", STREAMS)
    jump = trade(500_000, T0 + 4)
    [check] = feed(flow, "c2", [jump], T0 + 4)
    flow.jump_checked(check.token, None, False)
    reason = "implausible id jump to 500000 not confirmed: REST has no such trade"
    assert flow.take_actions() == [DeadLetter("c2", jump, reason, T0 + 4, TRADE)]


def test_a_jump_rest_holds_with_other_values_is_dead_lettered() -> None:
    flow, _ = make()
    feed(flow, "c1", [trade(1)])
    [check] = feed(flow, "c1", [trade(500_000)])
    flow.jump_checked(check.token, found_row(trade(500_000), price="9.99"), False)
    [dead] = flow.take_actions()
    reason = "implausible id jump to 500000 not confirmed: REST has other values for this id"
    assert dead == DeadLetter("c1", trade(500_000), reason, T0, TRADE)


def test_an_answer_to_no_pending_check_changes_nothing() -> None:
    flow, _ = make()
    feed(flow, "c1", [trade(1)])
    flow.jump_checked(99, None, True)
    assert flow.take_actions() == []
    assert published(feed(flow, "c1", [trade(2)])) == [2]


def test_later_jumps_wait_behind_a_pending_check_in_order_in_order_ids_do_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One missing id is already a jump that waits; each follower keeps its connection and frame."""
    caplog.set_level(logging.INFO, LOG)
    flow, _ = make()
    flow.attach("c2", STREAMS)
    feed(flow, "c1", [trade(1)])
    actions = feed(flow, "c1", [trade(500_000), trade(2)])
    [check] = of(VerifyJump, actions)
    assert published(actions) == [2]
    far = trade(700_000)
    assert feed(flow, "c2", [trade(4), far]) == []  # 4 (one id missing) and 700000 wait
    flow.jump_checked(check.token, None, False)
    actions = flow.take_actions()
    assert [type(a) for a in actions] == [DeadLetter, PublishGap, Backfill, PublishEvent, VerifyJump]
    assert published(actions) == [4]
    [again] = of(VerifyJump, actions)
    flow.jump_checked(again.token, None, False)
    reason = "implausible id jump to 700000 not confirmed: REST has no such trade"
    assert flow.take_actions() == [DeadLetter("c2", far, reason, T0, TRADE)]
    assert (logging.WARNING, "BTCUSDT trade: id 700000 is 699996 ahead of 4, more than the stream's pace "
                             "allows; asking REST") in messages(caplog)  # fmt: skip


def test_a_first_id_is_checked_before_it_sets_the_baseline(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOG)
    flow, _ = make(seed=None)
    [check] = feed(flow, "c1", [trade(7)])
    assert check == VerifyJump(check.token, "BTCUSDT", "trade", 7)
    assert messages(caplog) == [
        (logging.INFO, "BTCUSDT trade: first id 7 sets the baseline; asking REST first")
    ]


def test_a_jump_rest_cannot_check_is_accepted_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOG)
    flow, _ = make()
    feed(flow, "c1", [trade(1)])
    [check] = feed(flow, "c1", [trade(500_000)])
    caplog.clear()
    flow.jump_checked(check.token, None, True)
    assert published(flow.take_actions()) == [500_000]
    assert messages(caplog)[0] == (
        logging.WARNING, "BTCUSDT trade: REST could not check id 500000; accepting it"
    )  # fmt: skip


def test_the_pace_allows_exactly_2000_missing_ids_right_after_the_last_one() -> None:
    """pace Rule 2 with no rate measured yet: JUMP_FLOOR + JUMP_FACTOR * MIN_RATE * 1 = 2000."""
    flow, _ = make()
    actions = feed(flow, "c1", [trade(1), trade(2002)])
    assert published(actions) == [1, 2002] and of(VerifyJump, actions) == []
    flow, _ = make()
    actions = feed(flow, "c1", [trade(1), trade(2003)])
    assert published(actions) == [1] and [(v.ident) for v in of(VerifyJump, actions)] == [2003]


def test_a_fill_does_not_reset_the_streams_pace() -> None:
    """A late id inside a hole is published, but the time since the last in-order id still counts."""
    flow, _ = make()
    feed(flow, "c1", [trade(1), trade(5)], T0)
    two_s = T0 + 2_000_000
    assert published(feed(flow, "c1", [trade(3, two_s)], two_s)) == [3]
    actions = feed(flow, "c1", [trade(3_500, two_s)], two_s)  # 3494 missing: plausible after 2 s
    assert published(actions) == [3_500] and of(VerifyJump, actions) == []


# ------------------------------------------------------------------ Rule 4: rollover
def test_overlap_ignores_streams_the_old_connection_never_saw_and_book_ticker_holes() -> None:
    """A stream with no sequencer yet and a bookTicker update ids apart do not hold the rollover."""
    flow, _ = make()
    feed(flow, "c1", [trade(1), trade(2), trade(3), trade(4), trade(5), book(10)])
    flow.attach("c2", STREAMS, buffering=True)
    feed(flow, "c2", [agg(100), book(50), trade(5)])
    assert flow.overlapped("c2") is True


def test_overlap_needs_every_trade_stream_joined_exactly() -> None:
    """last = first - 1 joins; last = first - 2 is a hole, even when another stream overlaps."""
    flow, _ = make()
    feed(flow, "c1", [trade(1), trade(2), trade(3), trade(4), book(50)])
    flow.attach("c2", STREAMS, buffering=True)
    feed(flow, "c2", [trade(5), book(50)])
    assert flow.overlapped("c2") is True
    flow, _ = make()
    feed(flow, "c1", [trade(1), trade(2), trade(3), book(50)])
    flow.attach("c2", STREAMS, buffering=True)
    feed(flow, "c2", [trade(5), book(50)])
    assert flow.overlapped("c2") is False


def test_no_overlap_without_a_link_or_before_its_first_event() -> None:
    flow, _ = make()
    assert flow.overlapped("gone") is False
    flow.attach("c2", STREAMS, buffering=True)
    assert flow.overlapped("c2") is False
    assert (flow.buffered("gone"), flow.release("gone")) == (0, 0)
    flow.retire("gone")  # forgetting an unknown connection is harmless
    assert flow.take_actions() == []


def test_a_released_jump_keeps_the_replacements_frame_and_connection() -> None:
    flow, _ = make()
    feed(flow, "c1", [trade(1)])
    flow.attach("c2", STREAMS, buffering=True)
    jump = trade(500_000)
    assert feed(flow, "c2", [jump]) == []
    assert flow.release("c2") == 1
    [check] = flow.take_actions()
    flow.jump_checked(check.token, None, False)
    [dead] = flow.take_actions()
    assert isinstance(dead, DeadLetter) and (dead.conn_id, dead.raw) == ("c2", jump)


def test_accept_sequences_a_stream_seen_for_the_first_time() -> None:
    flow, _ = make()
    msg: Any = {"type": "bookTicker", "symbol": "ETHUSDT", "update_id": 3, "received_at": T0}
    flow.accept(msg, ("bookTicker", "ETHUSDT"))
    flow.accept(msg, ("bookTicker", "ETHUSDT"))
    assert flow.take_actions() == [PublishEvent(msg)]


# ------------------------------------------------------------------ serverShutdown
def test_a_shutdown_notice_is_remembered_per_connection_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOG)
    flow, _ = make()
    flow.attach("c2", STREAMS)
    assert not flow.shutdown_noticed("c1")
    notice = orjson.dumps({"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": T0}})
    assert feed(flow, "c1", [notice]) == []
    assert (flow.shutdown_noticed("c1"), flow.shutdown_noticed("c2"), flow.shutdown_noticed("gone")) == (
        True, False, False,
    )  # fmt: skip
    assert messages(caplog) == [(logging.INFO, f"c1: serverShutdown received (event time {T0})")]


# ------------------------------------------------------------------ Rule 7: resume
def resumed(last_id: int, first: bytes, last_time: int = T0 - 2_000_000) -> Flow:
    flow = Flow(Tallies(defaultdict(int), defaultdict(int)), WINDOW_US)
    entry = FrontierEntry("trade", "BTCUSDT", last_id, last_time, written_at=T0 - 1_000_000)
    flow.arm(Resumer({TRADE: entry}, HOUR_US))
    flow.attach("c1", STREAMS)
    flow.receive("c1", first, T0)
    return flow


@pytest.mark.parametrize(
    ("first", "level", "note"),
    [
        (101, logging.INFO, "resumed at 101, contiguous with the frontier 100"),
        (150, logging.WARNING, "restart gap of 49 ids (101-149): backfilling"),
    ],
)
def test_first_contact_logs_its_note_quietly_only_when_contiguous(
    caplog: pytest.LogCaptureFixture, first: int, level: int, note: str
) -> None:
    caplog.set_level(logging.INFO, LOG)
    resumed(100, trade(first))
    assert messages(caplog)[0] == (level, f"BTCUSDT trade: {note}")


def test_ids_going_back_while_time_went_forward_drop_the_frontier(caplog: pytest.LogCaptureFixture) -> None:
    """The trade time is compared with the frontier's: the first id is then checked like an unseeded one."""
    caplog.set_level(logging.WARNING, LOG)
    flow = resumed(100, trade(90, T0))
    assert [type(a) for a in flow.take_actions()] == [VerifyJump]
    assert messages(caplog) == [
        (logging.WARNING, "BTCUSDT trade: ids went backwards (90 <= frontier 100) while time went forward: "
                          "the exchange's history is not the one the frontier describes; frontier dropped")
    ]  # fmt: skip


def test_resume_at_without_an_armed_resumer_does_nothing() -> None:
    flow, _ = make()
    flow.resume_at(TRADE, 5, T0, T0)
    assert flow.take_actions() == [] and flow.resume is None
    assert published(feed(flow, "c1", [trade(1)])) == [1]


def test_a_quiet_stream_is_asked_about_only_after_the_quiet_time() -> None:
    flow, _ = make()
    feed(flow, "c1", [trade(1)])
    flow.interrupt([TRADE], T0, "reconnect", T0)
    flow.tick(T0 + 4_999_999)
    flow.tick(T0 + 5_000_000)
    assert flow.take_actions() == [AskLatest("BTCUSDT", "trade")]


# ------------------------------------------------------------------ key_of_stream
@pytest.mark.parametrize(
    ("stream", "key"),
    [
        ("btcusdt@trade", ("trade", "BTCUSDT")),
        (None, ("unknown", "unknown")),
        ("", ("unknown", "unknown")),
        ("btcusdt", ("unknown", "BTCUSDT")),
        ("@trade", ("trade", "unknown")),
        ("btcusdt@depth@100ms", ("depth@100ms", "BTCUSDT")),
    ],
)
def test_key_of_stream_splits_at_the_first_at_sign(stream: str | None, key: tuple[str, str]) -> None:
    assert key_of_stream(stream) == key
