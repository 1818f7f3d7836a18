"""consumer.core: the worker's decisions, fed plain inputs, asserted on the actions returned (no sockets)."""

from __future__ import annotations

import ast
import logging
import typing
from pathlib import Path

import orjson
import pytest

from binance_pipeline.common.settings import Settings
from binance_pipeline.testing.events import T0_US, book, gap, trade
from consumer.actions import (
    Abandon,
    Action,
    CloseConsumer,
    CloseWriter,
    Collect,
    Count,
    CreateTopics,
    ErrorKind,
    Exclude,
    Fatal,
    Fault,
    Flush,
    ForgetPartition,
    Gauge,
    Housekeeping,
    Metric,
    Pause,
    Poll,
    Record,
    RefreshMetadata,
    RenewConsumer,
    Resume,
    Settle,
    Submit,
    WaitForWriter,
    Why,
)
from consumer.backpressure import State
from consumer.core import METADATA_REFRESH_S, TOPICS_RETRY_S, Config, WorkerCore
from consumer.decode import BOOK_TICKER, GAPS, TRADES
from consumer.metrics import WorkerMetrics
from consumer.readiness import LOOP_STALL_S

TRADES_T, BOOK_T, GAPS_T = "t.trades", "t.book", "t.gaps"
UNKNOWN_TOPIC, FENCED, OTHER = 3, 82, -195
ERRORS = {UNKNOWN_TOPIC: ErrorKind.MISSING_TOPIC, FENCED: ErrorKind.FATAL}
VALUE = {TRADES_T: lambda i: orjson.dumps(trade(i, received_at=T0_US + i)),
         BOOK_T: lambda i: orjson.dumps(book(i)), GAPS_T: lambda i: orjson.dumps(gap(f"g/{i}", "open"))}
ROOT = Path(__file__).resolve().parents[2]
A = typing.TypeVar("A")
LOG = "consumer.core"


def make(buffer_max: int = 100, can_renew: bool = True) -> WorkerCore:
    tables = {TRADES_T: TRADES, BOOK_T: BOOK_TICKER, GAPS_T: GAPS}
    return WorkerCore(Config(tables, ERRORS, batch_max_rows=1000, batch_max_seconds=1.0,
                             buffer_max=buffer_max, poll_timeout=0.25, shutdown_timeout=30.0,
                             revoke_timeout=5.0, servers="k:9092", worker_name="w1", can_renew=can_renew))


def rec(topic: str, offset: int, partition: int = 0, value: bytes | None = None) -> Record:
    return Record(topic, partition, offset, b"k", VALUE[topic](offset) if value is None else value)


def of(kind: type[A], actions: list[Action]) -> list[A]:
    return [a for a in actions if isinstance(a, kind)]


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOG]


def submitted(core: WorkerCore, now: float) -> list[Submit]:
    """Every batch the core submits over ticks at ``now`` with the writer idle."""
    out: list[Submit] = []
    while subs := of(Submit, core.tick(now, State.READY)):
        out += subs
    return out


# -- (a) the topic-missing window (loop Rules 6, 10) --------------------------------------------
def test_unknown_topic_asks_for_one_creation_until_it_answers() -> None:
    """An UNKNOWN_TOPIC error: CreateTopics once, not again while that request is in flight."""
    core = make()
    assert core.received([Fault(UNKNOWN_TOPIC, False, "unknown topic")], 10.0, 0) == [Count("consumed", 1)]
    assert of(CreateTopics, core.tick(10.0, State.READY)) == [CreateTopics()]
    core.received([Fault(UNKNOWN_TOPIC, False, "unknown topic")], 10.5, 0)
    assert of(CreateTopics, core.tick(10.5, State.READY)) == []


def test_a_turn_both_submits_and_asks_for_topics() -> None:
    """Missing topics do not hold back the batch that is due in the same turn."""
    core = make()
    core.received([rec(TRADES_T, 0), Fault(UNKNOWN_TOPIC, False, "unknown topic")], 1.0, 0)
    actions = core.tick(2.0, State.READY)
    assert len(of(Submit, actions)) == 1 and of(CreateTopics, actions) == [CreateTopics()]


def test_a_failed_creation_is_retried_after_topics_retry_s() -> None:
    """A creation that failed is asked again TOPICS_RETRY_S after its answer, not sooner."""
    core = make()
    core.received([Fault(UNKNOWN_TOPIC, False, "unknown topic")], 10.0, 0)
    core.tick(10.0, State.READY)
    assert core.topics_created({TRADES_T: "timed out"}, 11.0) == []
    assert of(CreateTopics, core.tick(11.0 + TOPICS_RETRY_S - 0.1, State.READY)) == []
    assert of(CreateTopics, core.tick(11.0 + TOPICS_RETRY_S, State.READY)) == [CreateTopics()]


def test_a_successful_creation_refreshes_metadata_at_once_while_unassigned() -> None:
    """Success: counted, no more creations, and a metadata refresh in the same turn (Rule 10)."""
    core = make()
    core.received([Fault(UNKNOWN_TOPIC, False, "unknown topic")], 10.0, 0)
    assert RefreshMetadata(1.0) in core.tick(10.0, State.READY)
    assert of(RefreshMetadata, core.tick(10.1, State.READY)) == []  # every METADATA_REFRESH_S
    assert core.topics_created({}, 10.2) == [Count("topics_recreated")]
    after = core.tick(10.2, State.READY)
    assert RefreshMetadata(1.0) in after and of(CreateTopics, after) == []
    assert of(CreateTopics, core.tick(20.0, State.READY)) == []


def test_metadata_is_refreshed_only_while_nothing_is_assigned() -> None:
    """Unassigned: RefreshMetadata every METADATA_REFRESH_S; assigned: never."""
    core = make()
    assert of(RefreshMetadata, core.tick(0.5, State.READY)) == [RefreshMetadata(1.0)]
    assert of(RefreshMetadata, core.tick(1.0, State.READY)) == []
    assert of(RefreshMetadata, core.tick(0.5 + METADATA_REFRESH_S, State.READY)) == [RefreshMetadata(1.0)]
    core.assigned([(TRADES_T, 0)])
    assert of(RefreshMetadata, core.tick(10.0, State.READY)) == []


# -- (b) the empty broker: topic ids change, offsets go back (loop Rules 5, 8) -------------------
def test_a_topic_id_change_writes_its_buffers_uncommitted_and_renews_the_consumer() -> None:
    """Changed topic: its partitions excluded, settled, written without commit, then RenewConsumer."""
    core = make()
    core.assigned([(TRADES_T, 0), (BOOK_T, 0)])
    assert core.ids_seen({TRADES_T: "A", BOOK_T: "B"}, 1.0) == []  # first sighting: no change
    core.received([rec(TRADES_T, 5), rec(BOOK_T, 7)], 1.0, 0)
    actions = core.ids_seen({TRADES_T: "A2", BOOK_T: "B"}, 2.0)
    stale = ((TRADES_T, 0),)
    flush = of(Flush, actions)
    assert actions[:2] == [Exclude(stale), Settle(7.0)]
    assert len(flush) == 1 and flush[0].why is Why.RENEWED and not flush[0].commit
    assert flush[0].deadline == 7.0
    assert flush[0].batch.offsets() == {(TRADES_T, 0): 6}
    assert actions[3:] == [RenewConsumer(), ForgetPartition((BOOK_T, 0)), ForgetPartition((TRADES_T, 0)),
                           Gauge("assigned", 0), Count("consumer_renewals")]
    assert core.assignment_reason() == "no partitions assigned"
    # the old consumer's close revokes the other topic: flushed and committed as usual
    revoked = of(Flush, core.revoked([(BOOK_T, 0)], 3.0))
    assert [(f.why, f.commit) for f in revoked] == [(Why.REVOKED, True)]


def test_without_a_way_to_renew_a_topic_id_change_does_nothing() -> None:
    """No renew function (Config.can_renew False): the change is noted, nothing is done."""
    core = make(can_renew=False)
    core.ids_seen({TRADES_T: "A"}, 1.0)
    assert core.ids_seen({TRADES_T: "A2"}, 2.0) == []


def test_offsets_going_back_write_the_old_buffer_uncommitted_and_commit_no_old_offset() -> None:
    """Offset 0 after 5, 6: the old buffer is written uncommitted; only the new log's offset is committed."""
    core = make()
    core.assigned([(TRADES_T, 0)])
    core.received([rec(TRADES_T, 5), rec(TRADES_T, 6)], 1.0, 0)
    actions = core.received([rec(TRADES_T, 0, value=b"{}")], 1.1, 42)  # poison, too
    tp = (TRADES_T, 0)
    assert actions[1] == Exclude((tp,)) and actions[-1] == Count("partition_resets")
    (flush,) = of(Flush, actions)
    assert flush.why is Why.RECREATED and not flush.commit and flush.deadline == 6.1
    assert flush.batch.offsets() == {tp: 7}
    (sub,) = submitted(core, 5.0)
    assert sub.batch.offsets() == {tp: 1} and len(sub.batch) == 1
    assert [d.received_at for d in sub.batch.segments[0].dead] == [42]


def test_the_config_follows_the_settings() -> None:
    """Config.from_settings: tables per topic, bounds and time-outs derived as loop.py documents."""
    settings = Settings(_env_file=None, topic_trades="a", topic_book_ticker="b", topic_gaps="c",
                        batch_max_rows=600, batch_max_seconds=0.4, worker_buffer_max_messages=1000,
                        worker_poll_messages=77, worker_shutdown_timeout_s=9.0,
                        kafka_session_timeout_ms=6000, kafka_bootstrap_servers="h:1", worker_name="w9")
    config = Config.from_settings(settings, ERRORS, can_renew=False)
    assert config == Config({"a": TRADES, "b": BOOK_TICKER, "c": GAPS}, ERRORS, 600, 0.4, 1200, 77, 0.1,
                            9.0, 3.0, "h:1", "w9", False)
    assert make().topics() == [TRADES_T, BOOK_T, GAPS_T]
    slow = Settings(_env_file=None, batch_max_seconds=2.0, kafka_session_timeout_ms=1000,
                    worker_buffer_max_messages=5000, batch_max_rows=100)
    config = Config.from_settings(slow, ERRORS, can_renew=True)
    assert (config.poll_timeout, config.revoke_timeout, config.buffer_max) == (0.25, 1.0, 5000)


# -- (c) poison records (STYLE practice 6) ------------------------------------------------------
def test_an_undecodable_message_on_each_topic_is_a_dead_letter_and_the_rest_goes_on() -> None:
    """Poison on trades, book ticker and gaps: each a dead letter; the good rows are submitted too."""
    core = make()
    topics = (TRADES_T, BOOK_T, GAPS_T)
    core.assigned([(t, 0) for t in topics])
    items = [r for t in topics for r in (rec(t, 0, value=b"\xff not json"), rec(t, 1))]
    actions = core.received(items, 1.0, 123)
    assert actions == [Count("consumed", 6)]
    batches = {s.batch.table: s.batch for s in submitted(core, 5.0)}
    assert set(batches) == {TRADES, BOOK_TICKER, GAPS}
    for batch in batches.values():
        (seg,) = batch.segments
        assert len(batch.rows()) == 1 and [d.offset for d in seg.dead] == [0]
        dead = seg.dead[0]
        assert (dead.topic, dead.partition, dead.key, dead.value) == (seg.topic, 0, b"k", b"\xff not json")
        assert dead.received_at == 123 and dead.reason
        assert seg.keys == [b"k"] and seg.values == [VALUE[seg.topic](1)] and seg.offsets == [1]
        assert seg.rows[0] and seg.received[0] >= T0_US
        assert batch.offsets() == {(seg.topic, 0): 2}


def test_a_fatal_kafka_error_stops_buffering_there() -> None:
    """A fatal error (or fencing by code) is Fatal naming the worker; nothing after it is buffered."""
    core = make()
    actions = core.received([rec(TRADES_T, 0), Fault(OTHER, True, "fatal"), rec(TRADES_T, 1)], 1.0, 0)
    assert actions[-1] == Fatal("fatal Kafka error (WORKER_NAME=w1): fatal") and core.pending() == 1
    assert core.received([Fault(FENCED, False, "fenced")], 1.0, 0)[-1] == Fatal(
        "fatal Kafka error (WORKER_NAME=w1): fenced")
    assert core.received([Fault(OTHER, False, "transport")], 1.0, 0) == [Count("consumed", 1)]
    assert of(CreateTopics, core.tick(1.0, State.READY)) == []  # only a missing topic creates topics
    unnamed = WorkerCore(Config({TRADES_T: TRADES}, ERRORS))
    assert unnamed.received([Fault(OTHER, True, "x")], 1.0, 0)[-1] == Fatal(
        "fatal Kafka error (WORKER_NAME=unset): x")


# -- (d) back-pressure (loop Rule 2) ------------------------------------------------------------
def test_full_buffers_wait_for_a_healthy_writer_instead_of_polling() -> None:
    """Full while WRITING: WaitForWriter, no poll, no pause."""
    core = make(buffer_max=4)
    core.received([rec(TRADES_T, i) for i in range(4)], 1.0, 0)
    assert core.before_poll(1.0, State.WRITING) == [WaitForWriter(0.25)]


def test_full_buffers_pause_once_while_the_sink_is_down_and_resume_below_half() -> None:
    """Full while STALLED/DOWN: Pause once and keep polling; Resume only below half the bound."""
    core = make(buffer_max=5)  # half: 2
    assert of(Resume, core.before_poll(0.5, State.READY)) == []  # never paused: nothing to resume
    core.assigned([(TRADES_T, 0), (BOOK_T, 0), (GAPS_T, 0)])
    core.received([rec(BOOK_T, i) for i in range(3)], 1.0, 0)
    core.received([rec(TRADES_T, 0)], 1.2, 0)
    core.received([rec(GAPS_T, 0)], 1.5, 0)
    first = core.before_poll(2.0, State.STALLED)
    assert first[:2] == [Pause(), Gauge("paused", 1)] and isinstance(first[2], Poll) and first[3] == Collect()
    assert of(Pause, core.before_poll(2.0, State.DOWN)) == []
    assert [s.batch.table for s in of(Submit, core.tick(2.1, State.READY))] == [BOOK_TICKER]
    assert of(Resume, core.before_poll(2.2, State.WRITING)) == []  # 2 left: not below half
    core.tick(2.3, State.READY)  # the trades drain: 1 left
    assert core.before_poll(2.4, State.WRITING)[:2] == [Resume(), Gauge("paused", 0)]


def test_a_new_assignment_or_consumer_is_paused_again_when_still_full() -> None:
    """The consumer's pause ends with an assignment or a renewal; full buffers pause it again."""
    core = make(buffer_max=2)
    core.assigned([(TRADES_T, 0)])
    core.received([rec(TRADES_T, 0), rec(TRADES_T, 1)], 1.0, 0)
    assert of(Pause, core.before_poll(1.0, State.DOWN)) == [Pause()]
    assert core.assigned([(BOOK_T, 0)]) == [Gauge("assigned", 2)]
    assert of(Pause, core.before_poll(1.1, State.DOWN)) == [Pause()]
    core.ids_seen({BOOK_T: "B"}, 1.2)
    core.ids_seen({BOOK_T: "B2"}, 1.3)  # renewed: the trades stay buffered, full
    assert of(Pause, core.before_poll(1.4, State.DOWN)) == [Pause()]


def test_a_poll_never_blocks_past_the_oldest_buffer_falling_due() -> None:
    """Poll budget: at most the time left before the oldest buffer is due, unless a batch is in flight."""
    core = make()
    assert of(Poll, core.before_poll(0.0, State.READY)) == [Poll(10_000, 0.25)]
    core.received([rec(TRADES_T, 0)], 1.0, 0)
    (poll,) = of(Poll, core.before_poll(1.9, State.READY))
    assert abs(poll.timeout - 0.1) < 1e-9
    assert of(Poll, core.before_poll(1.9, State.WRITING)) == [Poll(10_000, 0.25)]
    assert of(Submit, core.tick(2.0, State.WRITING)) == []  # one batch in flight at most


# -- (e) readiness (loop Rule 11) ---------------------------------------------------------------
def test_readiness_reasons() -> None:
    """Database, assignment, broker (named) and a stalled loop each give their reason."""
    core = make()
    assert core.database_reason(State.DOWN) == "database unreachable"
    assert core.database_reason(State.STALLED) == "database unreachable"
    assert core.database_reason(State.WRITING) is None
    assert core.assignment_reason() == "no partitions assigned"
    core.assigned([(TRADES_T, 0)])
    assert core.assignment_reason() is None
    assert core.broker_reason(100.0, "", 101.0) is None
    assert core.broker_reason(100.0, "timed out", 109.0) == (
        "kafka broker k:9092 unreachable: no answer for 9 s: timed out")
    assert core.loop_reason(1000.0) is None  # not started yet
    core.tick(5.0, State.READY)
    assert core.loop_reason(5.0 + LOOP_STALL_S) is None
    assert core.loop_reason(5.0 + LOOP_STALL_S + 1) == f"poll loop stalled for {LOOP_STALL_S + 1:.0f} s"


def test_housekeeping_every_five_seconds_with_the_assigned_partitions() -> None:
    """Housekeeping names the assigned partitions and the buffered count."""
    core = make()
    core.assigned([(TRADES_T, 1)])
    core.assigned([(TRADES_T, 0)])
    core.received([rec(GAPS_T, 0)], 0.0, 0)
    first = core.tick(0.0, State.WRITING)
    assert Housekeeping(((TRADES_T, 0), (TRADES_T, 1))) in first and Gauge("buffered", 1) in first
    assert of(Housekeeping, core.tick(4.9, State.READY)) == []
    assert of(Housekeeping, core.tick(5.0, State.READY)) != []


# -- rebalances (loop Rule 3) -------------------------------------------------------------------
def test_revoked_partitions_flush_and_commit_only_while_the_database_answers() -> None:
    """Revoked: settle, then a committing flush that writes only while the sink is up."""
    core = make()
    core.assigned([(TRADES_T, 0)])
    core.received([rec(TRADES_T, 0)], 1.0, 0)
    actions = core.revoked([(TRADES_T, 0)], 2.0)
    assert actions[0] == Settle(7.0)
    (flush,) = of(Flush, actions)
    assert flush.deadline == 7.0 and flush.commit
    assert core.may_write(flush, State.READY) and not core.may_write(flush, State.DOWN)
    assert actions[-2:] == [ForgetPartition((TRADES_T, 0)), Gauge("assigned", 0)]


def test_lost_partitions_are_written_uncommitted() -> None:
    """Lost: excluded from the batch in flight, which is settled at once; buffers written without a commit."""
    core = make()
    core.assigned([(TRADES_T, 0)])
    core.received([rec(TRADES_T, 0)], 1.0, 0)
    actions = core.lost([(TRADES_T, 0)], 2.0)
    assert actions[:2] == [Exclude(((TRADES_T, 0),)), Settle(2.0)]
    (flush,) = of(Flush, actions)
    assert flush.why is Why.LOST and not flush.commit and flush.deadline == 7.0


def test_after_a_fatal_error_revocation_writes_nothing() -> None:
    """failed(): close both; a revocation during the close drops the buffers uncommitted."""
    core = make()
    core.assigned([(TRADES_T, 0)])
    core.received([rec(TRADES_T, 0)], 1.0, 0)
    assert core.failed() == [CloseConsumer(), CloseWriter()]
    assert of(Flush, core.revoked([(TRADES_T, 0)], 2.0)) == [] and core.pending() == 0


# -- (f) shutdown (loop Rule 4) -----------------------------------------------------------------
def test_clean_shutdown_flushes_every_table_waiting_for_the_database_then_exits_0() -> None:
    """Shutdown: settle, one committing flush per table (even while DOWN), close; all written: 0."""
    core = make()
    core.received([rec(TRADES_T, 0), rec(GAPS_T, 0)], 1.0, 0)
    actions = core.shutdown(2.0)
    assert actions[0] == Settle(32.0) and actions[-2:] == [CloseConsumer(), CloseWriter()]
    flushes = of(Flush, actions)
    assert [f.batch.table for f in flushes] == [TRADES, GAPS]
    for f in flushes:
        assert f.deadline == 32.0 and f.commit and core.may_write(f, State.DOWN)
        core.flushed(f, True)
    assert core.exit_status() == 0


def test_a_batch_left_at_the_shutdown_deadline_exits_1() -> None:
    """A shutdown flush that did not get written (database down past the time-out): exit 1."""
    core = make()
    core.received([rec(TRADES_T, 0)], 1.0, 0)
    (flush,) = of(Flush, core.shutdown(2.0))
    core.flushed(flush, False)
    assert core.exit_status() == 1


def test_a_second_stop_abandons_and_writes_nothing_more() -> None:
    """First stop: nothing to do; second: Abandon, and shutdown flushes may no longer write: exit 1."""
    core = make()
    core.received([rec(TRADES_T, 0)], 1.0, 0)
    assert core.stop() == []
    assert core.stop() == [Abandon()]
    (flush,) = of(Flush, core.shutdown(2.0))
    assert not core.may_write(flush, State.READY)
    core.flushed(flush, False)
    assert core.exit_status() == 1


def test_uncommitted_writes_do_not_make_a_shutdown_unclean() -> None:
    """Flushes of revoked or lost partitions that fail leave the exit status to the shutdown's own."""
    core = make()
    core.assigned([(TRADES_T, 0)])
    core.received([rec(TRADES_T, 0)], 1.0, 0)
    (flush,) = of(Flush, core.lost([(TRADES_T, 0)], 2.0))
    core.flushed(flush, False)
    core.shutdown(3.0)
    assert core.exit_status() == 0


# -- the log lines an operator reads ------------------------------------------------------------
def test_rebalances_name_their_partitions_or_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOG)
    core = make()
    core.assigned([(TRADES_T, 0), (BOOK_T, 1)])
    core.revoked([], 1.0)
    core.lost([(TRADES_T, 0)], 2.0)
    assert messages(caplog) == [
        (logging.INFO, "assigned t.trades[0], t.book[1]"),
        (logging.INFO, "revoked nothing"),
        (logging.WARNING, "lost t.trades[0]; their buffers are written without a commit"),
    ]


def test_an_undecodable_message_is_logged_with_its_place_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOG)
    make().received([rec(TRADES_T, 6, value=b"nope")], 1.0, 0)
    assert messages(caplog) == [(logging.WARNING, "t.trades[0]@6 undecodable: not JSON: invalid literal, "
                                                  "expected 'null': line 1 column 1 (char 0)")]  # fmt: skip


def test_kafka_errors_are_logged_and_the_first_missing_topic_says_what_follows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, LOG)
    core = make()
    core.received([Fault(UNKNOWN_TOPIC, False, "unknown topic"), Fault(UNKNOWN_TOPIC, False, "unknown topic"),
                   Fault(OTHER, False, "broker down")], 1.0, 0)  # fmt: skip
    assert messages(caplog) == [
        (logging.WARNING, "kafka: unknown topic; creating the missing topics (Rule 6)"),
        (logging.WARNING, "kafka: unknown topic"),
        (logging.WARNING, "kafka: broker down"),
    ]


def test_a_failed_creation_is_logged_with_its_retry_delay(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOG)
    make().topics_created({TRADES_T: "timed out"}, 1.0)
    assert messages(caplog) == [
        (logging.WARNING, "missing topics not created yet ({'t.trades': 'timed out'}); retrying in 2 s")
    ]


def test_pause_and_resume_are_logged_with_the_partitions_and_the_database_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOG)
    core = make(buffer_max=2)
    core.assigned([(TRADES_T, 0), (BOOK_T, 1)])
    caplog.clear()
    core.received([rec(TRADES_T, 0), rec(TRADES_T, 1)], 1.0, 0)
    core.before_poll(1.0, State.DOWN)
    core.tick(2.0, State.READY)
    core.before_poll(2.0, State.READY)
    assert messages(caplog) == [
        (logging.WARNING, "paused 2 partition(s): 2 messages buffered, database down"),
        (logging.INFO, "resumed 2 partition(s)"),
    ]


def test_a_recreated_partition_and_a_renewed_topic_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOG)
    core = make()
    core.assigned([(TRADES_T, 0), (BOOK_T, 0)])
    core.received([rec(TRADES_T, 5), rec(TRADES_T, 0)], 1.0, 0)
    core.ids_seen({TRADES_T: "A", BOOK_T: "B"}, 1.0)
    core.ids_seen({TRADES_T: "A2", BOOK_T: "B2"}, 2.0)
    assert messages(caplog) == [
        (logging.WARNING, "t.trades[0]: offset 0 after 5; the partition was recreated (empty broker?): its "
                          "buffer is written without a commit, no offset of the old log will be committed"),
        (logging.WARNING, "topic(s) t.book, t.trades have a new id: the broker lost their log (restarted "
                          "empty?); replacing the consumer to read the new log from its start (Rule 8)"),
    ]  # fmt: skip


def test_flushes_say_what_was_left_or_written_uncommitted_and_a_commit_says_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, LOG)
    core = make()
    core.assigned([(TRADES_T, 0), (BOOK_T, 0)])
    core.received([rec(TRADES_T, 0), rec(TRADES_T, 1), rec(BOOK_T, 0)], 1.0, 0)
    caplog.clear()
    (committing,) = of(Flush, core.revoked([(BOOK_T, 0)], 2.0))
    core.flushed(committing, True)
    (uncommitted,) = of(Flush, core.lost([(TRADES_T, 0)], 2.0))
    core.flushed(uncommitted, True)
    core.flushed(uncommitted, False)
    assert messages(caplog) == [
        (logging.WARNING, "lost t.trades[0]; their buffers are written without a commit"),
        (logging.WARNING, "lost: 2 message(s) of trades written uncommitted"),
        (logging.WARNING, "lost: 2 message(s) of trades left uncommitted"),
    ]


@pytest.mark.parametrize(("written", "line"), [(True, "worker stopped cleanly"),
                                               (False, "worker stopped with uncommitted messages")])
def test_the_exit_is_logged_clean_or_not(caplog: pytest.LogCaptureFixture, written: bool, line: str) -> None:
    caplog.set_level(logging.INFO, LOG)
    core = make()
    core.received([rec(TRADES_T, 0)], 1.0, 0)
    (flush,) = of(Flush, core.shutdown(2.0))
    core.flushed(flush, written)
    caplog.clear()
    core.exit_status()
    assert messages(caplog) == [(logging.INFO, line)]


def test_a_rebalance_or_renewal_unpauses_without_a_resume() -> None:
    """The new assignment (or consumer) is not paused: drained buffers need no Resume, the gauge says 0."""
    core = make(buffer_max=2)
    core.assigned([(TRADES_T, 0)])
    core.received([rec(TRADES_T, 0), rec(TRADES_T, 1)], 1.0, 0)
    assert of(Pause, core.before_poll(1.0, State.DOWN)) == [Pause()]
    core.assigned([(BOOK_T, 0)])
    submitted(core, 5.0)
    assert core.before_poll(5.0, State.READY)[0] == Gauge("paused", 0)
    core.received([rec(TRADES_T, 2), rec(TRADES_T, 3)], 6.0, 0)
    assert of(Pause, core.before_poll(6.0, State.DOWN)) == [Pause()]
    core.ids_seen({TRADES_T: "A"}, 6.0)
    core.ids_seen({TRADES_T: "A2"}, 7.0)
    assert core.before_poll(7.0, State.READY)[0] == Gauge("paused", 0)


# -- the seams ----------------------------------------------------------------------------------
def test_every_metric_the_core_names_is_a_worker_metric() -> None:
    """Count/Gauge metric names (the Metric literal) are attributes of WorkerMetrics."""
    metrics = WorkerMetrics()
    for name in typing.get_args(Metric):
        assert hasattr(metrics, name), name


def test_the_core_imports_nothing_that_does_io() -> None:
    """consumer.core and consumer.actions import no Kafka, database, thread or clock module."""
    banned = {"confluent_kafka", "psycopg2", "threading", "time", "socket", "asyncio", "concurrent"}
    for module in ("consumer/core.py", "consumer/actions.py"):
        tree = ast.parse((ROOT / module).read_text("utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {n.split(".")[0] for n in names} & banned, module
