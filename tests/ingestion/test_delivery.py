"""The delivery core, without Kafka: each input in, the decisions out (``ingestion.delivery``)."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from binance_pipeline.kafka.codes import Kind
from ingestion.delivery import (
    FATAL_RENEWALS,
    FATAL_WINDOW_S,
    OTHERWISE,
    OUTCOMES,
    UNANSWERED_S,
    DeliveryCore,
    GapAcked,
    GapQueued,
    Limits,
    Lost,
    Verdict,
    lost_of,
    verdict,
)
from ingestion.replay import Pending

TRADES, BOOK, GAPS, DEAD = "t.trades", "t.book", "t.gaps", "t.dead"
ROLES = {TRADES: "event", BOOK: "event", GAPS: "gap", DEAD: "dead_letter"}
LIMITS = Limits(hold_max=3, stall_s=5.0, window_s=30.0, window_max=100)


def core(now: float = 0.0, limits: Limits = LIMITS) -> DeliveryCore:
    c = DeliveryCore(dict(ROLES), limits, now)  # type: ignore[arg-type]
    c.topics_created()
    return c


def event(ident: int, kind: str = "trade", symbol: str = "BTCUSDT") -> Pending:
    body = {"type": kind, "symbol": symbol, "id": ident, "received_at": 1_000 + ident}
    if kind == "bookTicker":
        body.pop("id")
    return (BOOK if kind == "bookTicker" else TRADES, symbol, orjson.dumps(body), 1 + ident, None)


def gap(n: int) -> Pending:
    return (GAPS, "BTCUSDT", orjson.dumps({"gap_id": f"g{n}"}), n, None)


def dead(n: int) -> Pending:
    return (DEAD, None, b"junk", n, [("reason", b"bad")])


# ---------------------------------------------------------------------- the table (Rule 2)
def test_the_outcome_table_gives_each_kind_and_role_its_fate() -> None:
    """Every kind of failure against every role: the one table, spelled out."""
    expected = {
        Kind.PRODUCER_LOST: ("again", "again", "again"),
        Kind.FATAL: ("again", "again", "again"),
        Kind.TOPIC_MISSING: ("hold", "resend", "resend"),
        Kind.PARTITION_MISSING: ("hold", "resend", "resend"),
        Kind.NO_ANSWER: ("lost", "resend", "drop"),
        Kind.NO_LEADER: ("lost", "resend", "drop"),
        Kind.OTHER: ("lost", "resend", "drop"),
        Kind.ALREADY_EXISTS: ("lost", "resend", "drop"),
    }
    for kind, fates in expected.items():
        got = tuple(verdict(kind, role).value for role in ("event", "gap", "dead_letter"))
        assert got == fates, kind
    assert set(OUTCOMES) == {Kind.PRODUCER_LOST, Kind.FATAL, Kind.TOPIC_MISSING, Kind.PARTITION_MISSING}
    assert OTHERWISE == (Verdict.LOST, Verdict.RESEND, Verdict.DROP)


def test_a_gap_record_is_never_dropped_whatever_the_failure() -> None:
    """Rule 1: no kind of failure loses a gap record; it waits in pending, in order."""
    c = core()
    for n, kind in enumerate(Kind):
        c.failed(kind, gap(n), "x", 1.0)
    assert [item[3] for item in c.pending] == list(range(len(Kind)))
    assert not [r for r in c.take_reports() if isinstance(r, Lost)]


def test_an_event_failed_for_good_is_reported_lost_with_its_ids() -> None:
    """Rule 1: a failed event is a ``Lost`` report (id for trades, none for bookTicker)."""
    c = core()
    assert c.failed(Kind.NO_ANSWER, event(7), "delivery to t.trades failed: timed out", 2.0) is Verdict.LOST
    assert c.failed(Kind.OTHER, event(8, "bookTicker", "ETHUSDT"), "x", 2.0) is Verdict.LOST
    assert c.take_reports() == [
        Lost("BTCUSDT", "trade", 7, 1_007, "delivery_failed"),
        Lost("ETHUSDT", "bookTicker", None, 1_008, "delivery_failed"),
    ]
    assert c.failures == 2 and not c.pending
    assert c.last_trouble == (2.0, "x")


def test_a_dead_letter_failed_for_good_is_dropped_and_counted() -> None:
    c = core()
    assert c.failed(Kind.OTHER, dead(1), "boom", 3.0) is Verdict.DROP
    assert not c.pending and not c.take_reports() and c.failures == 1


# ---------------------------------------------------------------------- topics lost (Rule 4)
def test_a_missing_topic_holds_events_up_to_the_bound_then_reports_them_lost() -> None:
    """The topic-missing window: events held while it lasts; past ``hold_max`` each is lost."""
    c = core()
    for i in range(3):
        assert c.failed(Kind.TOPIC_MISSING, event(i), "missing", 1.0) is Verdict.HOLD
    assert c.failed(Kind.TOPIC_MISSING, event(3), "missing", 1.0) is Verdict.LOST
    assert [item[3] for item in c.pending] == [1, 2, 3]
    assert c.take_reports() == [Lost("BTCUSDT", "trade", 3, 1_003, "delivery_failed")]
    assert not c.topics_ready and c.ever_lost and c.losses == 4 and c.lost_because == "missing"


def test_a_produce_refused_for_a_missing_topic_loses_the_topics_once_noticed() -> None:
    c = core()
    assert c.refused(Kind.TOPIC_MISSING, TRADES, "Local: Unknown topic")
    assert c.refusal == "topic_missing" and not c.topics_ready and c.retire_due
    assert c.lost_because == "topic t.trades does not exist on the broker"
    assert c.hold(event(1)) and c.hold(event(2)) and c.hold(event(3))
    assert not c.hold(event(4)) and len(c.pending) == 3


def test_a_refusal_of_another_kind_is_not_the_cores_to_judge() -> None:
    c = core()
    assert not c.refused(Kind.OTHER, TRADES, "x")
    assert c.topics_ready and c.losses == 0 and c.refusal == "producer_overflow"


def test_a_fatal_refusal_asks_for_a_new_producer() -> None:
    c = core()
    assert c.refused(Kind.FATAL, TRADES, "fenced")
    assert c.refusal == "producer_fatal" and c.fatal_seen == "fenced" and c.topics_ready


def test_topics_created_again_reopen_publishing() -> None:
    c = core()
    c.refused(Kind.TOPIC_MISSING, TRADES, "x")
    c.creating("broker says no")
    assert c.readiness(1.0, 0, None) == "topics missing on the broker; recreating them"
    c.topics_created()
    assert c.topics_ready and c.refusal == "producer_overflow" and c.topic_error == "broker says no"


def test_a_second_sign_of_loss_keeps_the_first_cut() -> None:
    """Rule 5: the cut is the first sign of a lost log since the last replay."""
    c = core(now=4.0)
    c.lose_topics("a")
    c.cut_now()
    assert c.cut == 4.0 and not c.retire_due
    c.lose_topics("b")
    assert not c.retire_due and c.cut == 4.0 and c.losses == 2


def test_missing_names_the_topics_the_broker_lacks_in_order() -> None:
    assert core().missing({TRADES, DEAD, "other"}) == [BOOK, GAPS]


def test_acks_stall_only_with_ready_topics_something_queued_and_the_wait_past_stall_s() -> None:
    c = core(now=0.0)
    assert not c.acks_stalled(5.0, 1)  # not past the limit
    assert c.acks_stalled(5.1, 1)
    assert not c.acks_stalled(5.1, 0)  # nothing to acknowledge
    c.emptied(3.0)
    assert not c.acks_stalled(8.0, 1) and c.acks_stalled(8.1, 1)  # measured from the later of both
    c.lose_topics("x")
    assert not c.acks_stalled(100.0, 1)


# ---------------------------------------------------------------------- refusals and reports
def test_an_event_refused_for_overflow_is_reported_with_the_trouble_named() -> None:
    c = core()
    lost = Lost("BTCUSDT", "trade", 9, 10, "producer_overflow")
    c.refused_event(lost, 2.0, 12)
    assert c.take_reports() == [lost] and c.take_reports() == []
    assert c.last_trouble == (2.0, "producer buffer full (12 events refused so far)")
    c2 = core()
    c2.refused_event(Lost("BTCUSDT", "trade", 9, 10, "topic_missing"), 2.0, 1)
    assert c2.last_trouble is None  # a held-too-many loss is not a full buffer


def test_gap_records_are_reported_when_queued_and_when_acknowledged_in_order() -> None:
    c = core()
    record = {"gap_id": "g1", "symbol": "BTCUSDT"}
    c.gap_queued(record, gap(1))  # type: ignore[arg-type]
    c.gap_acked(orjson.dumps(record))
    assert c.take_reports() == [GapQueued(record), GapAcked(record)]  # type: ignore[arg-type]
    assert list(c.pending) == [gap(1)]


def test_lost_of_reads_the_encoded_event() -> None:
    assert lost_of(event(5)[2], "r") == Lost("BTCUSDT", "trade", 5, 1_005, "r")
    assert lost_of(event(5, "bookTicker")[2], "r").ident is None


# ---------------------------------------------------------------------- retiring (Rules 5-6)
def test_a_retired_producers_messages_come_back_once_as_the_window_kept_them() -> None:
    """Purged messages re-enter pending with the window's copy (headers, timestamp); values the
    replay sends already are skipped, one per copy."""
    c = core()
    kept = dead(5)
    c.window.append(1.0, kept)
    c.window.append(1.0, event(1))
    c.retiring(Counter({event(1)[2]: 1}))
    rebuilt = (DEAD, None, b"junk", 99, None)  # the report lacks the headers
    assert c.failed(Kind.PRODUCER_LOST, rebuilt, "purged", 2.0) is Verdict.AGAIN
    assert c.failed(Kind.PRODUCER_LOST, event(1), "purged", 2.0) is Verdict.AGAIN  # the replay has it
    assert c.failed(Kind.FATAL, event(2), "fatal", 2.0) is Verdict.AGAIN  # not in the window: as reported
    c.retired()
    assert list(c.pending) == [kept, event(2)]
    assert c.failures == 0 and c.last_trouble is None and not c.take_reports()


def test_identical_dead_letters_each_come_back_once() -> None:
    c = core()
    first, second = dead(1), (DEAD, None, b"junk", 1, [("reason", b"other")])
    c.window.extend([(1.0, first), (1.0, second)])
    c.retiring(None)
    for _ in range(3):
        c.failed(Kind.PRODUCER_LOST, (DEAD, None, b"junk", 7, None), "purged", 2.0)
    assert list(c.pending) == [first, second, (DEAD, None, b"junk", 7, None)]


def test_outside_a_retirement_a_purged_message_is_queued_as_reported() -> None:
    c = core()
    c.failed(Kind.PRODUCER_LOST, event(3), "purged", 1.0)
    assert list(c.pending) == [event(3)]


# ---------------------------------------------------------------------- replay (Rule 5)
def test_new_ids_after_our_cut_send_the_window_before_the_cut_again() -> None:
    c = core(now=0.0)
    c.window.extend([(1.0, event(1)), (2.0, event(2)), (3.0, gap(3)), (6.0, event(6))])
    c.lose_topics("missing")
    c.served(5.0)
    c.cut_now()
    again, retire = c.ids_seen([TRADES], True, 7.0)
    assert again == [event(1), event(2)]
    assert retire is None  # our producer was retired at the cut already
    assert [item for _, item in c.window] == [gap(3), event(6)]
    assert c.cut is None


def test_new_ids_another_client_made_replay_from_when_brokers_were_down() -> None:
    """The topics came back before we saw them missing: the cut is when all brokers were last seen
    down (if after the last confirmation), and our producer is retired now."""
    c = core(now=0.0)
    c.ids_seen([], True, 1.0)  # confirmed at 1.0
    c.window.extend([(2.0, event(2)), (4.0, event(4))])
    c.broker_error(3.0, True, None, None)
    c.pending.append(gap(9))
    again, retire = c.ids_seen([TRADES], True, 5.0)
    assert again == [event(2)]
    assert retire == Counter({event(2)[2]: 1, gap(9)[2]: 1})


def test_new_ids_with_no_outage_seen_replay_the_whole_window() -> None:
    c = core(now=0.0)
    c.broker_error(0.5, True, None, None)  # down before the last confirmation: says nothing
    c.ids_seen([], True, 1.0)
    c.window.extend([(2.0, event(2)), (4.0, event(4))])
    again, retire = c.ids_seen([TRADES], True, 5.0)
    assert again == [event(2), event(4)] and retire is not None


def test_unchanged_ids_confirm_the_log_and_let_old_messages_go() -> None:
    c = core(now=0.0)
    c.window.extend([(1.0, event(1)), (40.0, event(40))])
    c.cut = 0.5
    assert c.ids_seen([], True, 35.0) == ([], None)
    assert c.confirmed_at == 35.0 and c.cut is None
    assert c.evict() == 1 and [item for _, item in c.window] == [event(40)]


def test_a_partial_answer_or_lost_topics_confirm_nothing() -> None:
    c = core(now=0.0)
    c.window.append(1.0, event(1))
    c.cut = 0.5
    c.ids_seen([], False, 50.0)
    assert c.confirmed_at == 0.0 and c.cut == 0.5
    c.lose_topics("x")
    c.ids_seen([], True, 50.0)
    assert c.confirmed_at == 0.0 and c.evict() == 0 and len(c.window) == 1


def test_the_window_keeps_at_most_window_max_messages() -> None:
    c = core(limits=Limits(3, 5.0, 30.0, 2))
    c.window.extend([(1.0, event(1)), (2.0, event(2)), (3.0, event(3))])
    assert [item for _, item in c.window] == [event(2), event(3)]
    off = core(limits=Limits(3, 5.0, 30.0, 0))  # INGESTION_REPLAY_MAX_MESSAGES=0: no window
    off.window.append(1.0, event(1))
    assert len(off.window) == 0


# ---------------------------------------------------------------------- renewals (Rule 7)
def test_a_fatal_error_renews_the_producer_up_to_the_budget_then_is_final() -> None:
    c = core()
    for i in range(FATAL_RENEWALS):
        c.fatal_error("boom")
        assert c.renew("boom", float(i)) and c.fatal_seen is None
    assert not c.renew("boom", FATAL_WINDOW_S - 0.1)
    assert c.fatal == "boom"
    assert c.readiness(1.0, 0, None) == "fatal producer error: boom"


def test_renewals_older_than_the_window_free_the_budget() -> None:
    c = core()
    for i in range(FATAL_RENEWALS):
        c.renew("boom", float(i))
    assert c.renew("boom", FATAL_WINDOW_S)  # the first renewal is FATAL_WINDOW_S old now
    assert c.fatal is None


# ---------------------------------------------------------------------- readiness (Rule 3)
def test_readiness_names_each_reason() -> None:
    c = DeliveryCore(dict(ROLES), LIMITS, 0.0)  # type: ignore[arg-type]
    assert c.readiness(0.0, 0, None) == "topics not created yet"
    c.creating("timed out")
    assert c.readiness(0.0, 0, None) == "topics not created yet: timed out"
    c.topics_created()
    assert c.readiness(0.0, 0, None) is None
    assert c.readiness(5.0, 3, None) is None  # not past stall_s
    assert c.readiness(5.5, 3, None) == "3 messages unacknowledged for 5.5 s"
    c.acks[0] += 1
    c.served(5.5)
    assert c.readiness(5.5, 3, None) is None


def test_readiness_is_off_while_the_broker_answers_no_id_request() -> None:
    c = core(now=0.0)
    assert c.readiness(10.0, 0, 10.0 - UNANSWERED_S) is None
    assert c.readiness(10.0, 0, 10.0 - UNANSWERED_S - 0.5) == "broker unreachable: no answer for 6 s"
    slow = core(now=0.0, limits=Limits(3, 9.0, 30.0, 10))  # a longer stall_s is the bound then
    assert slow.readiness(10.0, 0, 2.0) is None and slow.readiness(10.0, 0, 0.5) is not None


def test_readiness_is_off_while_all_brokers_are_down_until_an_ack() -> None:
    c = core(now=0.0)
    c.acks[0] += 1  # served before the error: does not undo it
    c.broker_error(1.0, True, None, None)
    c.served(1.0)
    assert c.readiness(20.0, 0, None) == "all brokers down"
    assert c.down_at == 1.0
    c.acks[0] += 1
    c.served(20.0)
    assert c.readiness(20.0, 0, None) is None and c.last_ack == 20.0


def test_readiness_reports_recent_trouble_for_stall_s() -> None:
    c = core(now=0.0)
    c.broker_error(1.0, False, None, "SASL authentication failed")
    assert c.readiness(2.0, 0, None) == "SASL authentication failed (1.0 s ago)"
    assert c.readiness(6.0, 0, None) is None
    c.broker_error(7.0, False, "fenced", None)
    assert c.fatal_seen == "fenced" and c.readiness(7.5, 0, None) is None


def test_delivery_failures_are_logged_first_then_once_per_period() -> None:
    c = core()
    c.failed(Kind.OTHER, dead(1), "x", 0.0)
    assert c.log_due(0.0, 5.0)
    c.failed(Kind.OTHER, dead(2), "x", 1.0)
    assert not c.log_due(1.0, 5.0)
    assert not c.log_due(4.9, 5.0)
    assert c.log_due(5.0, 5.0)


@pytest.mark.parametrize("kind", [Kind.TOPIC_MISSING, Kind.PARTITION_MISSING])
def test_the_empty_broker_sequence_loses_nothing(kind: Kind) -> None:
    """An empty broker: deliveries fail (topic missing), the topics come back with new ids; every
    event is held and sent again, none reported lost, and the window's older ones are replayed."""
    c = core(now=0.0)
    c.window.extend([(1.0, event(1)), (1.0, event(2))])  # acknowledged by the old log
    c.failed(kind, event(3), "missing", 2.0)  # in flight when the broker restarted empty
    c.served(2.0)
    assert c.retire_due
    c.cut_now()
    c.topics_created()
    again, retire = c.ids_seen([TRADES], True, 3.0)
    assert again == [event(1), event(2)] and retire is None
    assert list(c.pending) == [event(3)] and not c.take_reports()


def test_a_fresh_core_asks_for_nothing() -> None:
    """No retirement, no renewal, no report, no acknowledgement counted before one comes."""
    c = core(now=0.0)
    assert not c.retire_due and c.fatal_seen is None and c.fatal is None and not c.take_reports()
    assert c.known_ids == {} and c.cut is None and c.down_at is None
    c.served(10.0)  # no acknowledgement yet: the wait is measured from the start
    assert c.last_ack == 0.0 and c.acks_stalled(10.0, 1)
    c.acks[0] += 1
    c.served(11.0)
    c.served(20.0)  # nothing new since
    assert c.last_ack == 11.0


def test_held_events_past_the_bound_before_the_topics_exist_are_refused_as_topic_missing() -> None:
    c = DeliveryCore(dict(ROLES), LIMITS, 0.0)  # type: ignore[arg-type]
    for i in range(3):
        assert c.hold(event(i))
    assert c.refusal == "producer_overflow"
    assert not c.hold(event(3)) and c.refusal == "topic_missing"
    c.overflowed()
    assert c.refusal == "producer_overflow"


def test_a_message_of_another_topic_is_judged_as_a_dead_letter() -> None:
    c = core()
    frontier = ("t.frontier", "k", b"{}", 1, None)
    assert c.failed(Kind.OTHER, frontier, "x", 1.0) is Verdict.DROP
    assert c.failed(Kind.TOPIC_MISSING, frontier, "x", 1.0) is Verdict.RESEND


def test_values_the_replay_resends_are_skipped_once_per_copy() -> None:
    c = core()
    c.retiring(Counter({event(1)[2]: 2}))
    for _ in range(3):
        c.failed(Kind.PRODUCER_LOST, event(1), "purged", 1.0)
    assert list(c.pending) == [event(1)]


def test_a_fatal_error_is_kept_until_the_renewal() -> None:
    c = core()
    c.fatal_error("fenced")
    assert c.fatal_seen == "fenced"
    c.renew("fenced", 1.0)
    assert c.fatal_seen is None


def test_the_renewal_budget_slides_with_time() -> None:
    """Five renewals within FATAL_WINDOW_S make the sixth final, at any clock reading."""
    c = core()
    for i in range(FATAL_RENEWALS):
        assert c.renew("boom", 100.0 + i)
    assert c.renew("boom", 100.0 + FATAL_WINDOW_S)  # the one at 100 s has aged out
    assert not c.renew("boom", 100.0 + FATAL_WINDOW_S + 0.5)  # 101..104 and 160 are within a minute
    assert c.fatal == "boom"


def test_an_outage_seen_at_the_confirmation_moment_says_nothing_about_the_new_log() -> None:
    c = core(now=0.0)
    c.broker_error(1.0, True, None, None)
    c.ids_seen([], True, 1.0)  # confirmed when the brokers were seen down: not after it
    c.window.extend([(0.5, event(0)), (2.0, event(2))])
    again, _ = c.ids_seen([TRADES], True, 3.0)
    assert again == [event(0), event(2)]


def test_the_first_failure_logged_is_logged_whatever_the_count() -> None:
    c = core()
    for n in range(3):
        c.failed(Kind.OTHER, dead(n), "x", 0.0)
    assert c.log_due(2.0, 5.0) and not c.log_due(3.0, 5.0)


def test_trouble_is_reported_for_stall_s_at_any_clock_reading() -> None:
    c = core(now=0.0)
    c.trouble(100.0, "boom")
    assert c.readiness(101.0, 0, None) == "boom (1.0 s ago)"
    assert c.readiness(105.5, 0, None) is None


def test_an_empty_gap_acknowledgement_reports_an_empty_record() -> None:
    c = core()
    c.gap_acked(b"")
    assert c.take_reports() == [GapAcked({})]  # type: ignore[typeddict-item]
