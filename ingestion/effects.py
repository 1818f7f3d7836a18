"""The I/O shell around ``Flow``: reads the clock, calls the flow, executes its actions.

``Flow`` decides and this module acts (websockets' ``protocol.py`` / ``asyncio`` split): every
call here forwards to the flow with the current time, then runs what the flow queued, in
order -- events and gap records to the publisher, rejected frames to the dead-letter topic,
id gaps to the backfiller, control replies to the connection that waits for them.

This is also the one place the executors' outputs meet: the publisher's reports (delivery
``Report``: an event lost, a gap record queued or acknowledged) go to the flow and the frontier
book; the backfiller's answers (``backfill.Answer``) go to the flow, or to the publisher for a
resolved gap. No executor calls another back.

Rules:
  1. Actions run in the order the flow queued them (``actions`` Rule 1), right after the call
     that queued them: nothing waits in the flow between two calls.
  2. Metrics of what was done (rejected frames, gaps detected and resolved) are counted here,
     where it is done.
  3. The publisher's reports are routed in the same step as the call that produced them (after
     a serve, a flush, or the actions' run), before anything else can run on the loop, and the
     acknowledgements are folded into the frontier book after them: a loss is in the book before
     any later acknowledgement.
  4. Backfill rows reach the publisher through the backfiller's ``rows`` queue, which the shell
     hands to ``Publisher.feed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from binance_pipeline.common.clock import now_us
from binance_pipeline.common.events import GapMessage, TradeMessage
from binance_pipeline.common.settings import Settings
from ingestion.actions import (
    AskLatest,
    Backfill,
    DeadLetter,
    Key,
    PublishEvent,
    PublishGap,
    Reply,
    VerifyJump,
)
from ingestion.backfill import Answer, Backfiller, Latest, Verified
from ingestion.connection import Connection
from ingestion.delivery import GapAcked, GapQueued, Lost
from ingestion.flow import Flow, Tallies
from ingestion.frontier import FrontierBook, Resumer
from ingestion.frontier_store import fold_acks
from ingestion.metrics import IngestionMetrics
from ingestion.publisher import SERVE_INTERVAL_S, Publisher

log = logging.getLogger(__name__)


class Effects:
    """Executes the flow's actions; the supervisor and the publisher talk to the flow through it."""

    def __init__(
        self, settings: Settings, metrics: IngestionMetrics, publisher: Publisher, backfiller: Backfiller
    ) -> None:
        window_us = int(settings.ingestion_time_window_s * 1_000_000)
        quiet_us = int(settings.resume_probe_after_s * 1_000_000)
        self.flow = Flow(Tallies(metrics.received, metrics.duplicates), window_us, quiet_us)
        self._metrics, self._publisher, self._backfiller = metrics, publisher, backfiller
        self._conns: dict[str, Connection] = {}
        self.book: FrontierBook | None = None  # the frontier this instance keeps (``keep_frontier``)

    def keep_frontier(self, book: FrontierBook, resume: Resumer | None) -> None:
        """At start: the book sees every gap record and loss from now on; the flow resumes
        the streams of the last instance's frontier."""
        self.book = book
        if resume is not None:
            self.flow.arm(resume)

    # ----------------------------------------------------------------- calls into the flow
    def on_frame(self, raw: bytes, received_at: int, binary: bool, conn: Connection) -> None:
        """A connection's frame sink."""
        self.flow.receive(conn.id, raw, received_at, binary)
        self.run()

    def on_request(self, conn_id: str, ident: int, pending: bool) -> None:
        """A connection sent control request ``ident`` (``pending``) or stopped waiting for it."""
        if pending:
            self.flow.request_sent(conn_id, ident)
        else:
            self.flow.request_done(conn_id, ident)

    def jump_checked(self, token: int, found: TradeMessage | None, failed: bool) -> None:
        """The backfiller's answer to a ``VerifyJump``."""
        self.flow.jump_checked(token, found, failed)
        self.run()

    def latest_known(self, key: Key, latest: int | None) -> None:
        """The backfiller's answer to an ``AskLatest`` (None: REST has no row, or failed)."""
        self.flow.latest_known(key, latest, now_us())
        self.run()

    def attach(self, conn: Connection, buffering: bool = False) -> None:
        self._conns[conn.id] = conn
        self.flow.attach(conn.id, conn.streams, buffering)

    def retire(self, conn: Connection) -> None:
        self._conns.pop(conn.id, None)
        self.flow.retire(conn.id)

    def interrupt(self, keys: Iterable[Key], since: int, cause: str) -> None:
        self.flow.interrupt(keys, since, cause, now_us())
        self.run()

    def resume_at(self, key: Key, first_id: int, when: int) -> None:
        """A quiet resumed stream's next id, from REST (``resume.probe_quiet``; flow Rule 7)."""
        self.flow.resume_at(key, first_id, when, now_us())
        self.run()

    def streams_changed(self, conn: Connection, streams: Iterable[str]) -> None:
        """``conn`` now carries ``streams`` (SUBSCRIBE/UNSUBSCRIBE on a live socket)."""
        self.flow.restream(conn.id, streams)

    def attached(self, conn: Connection) -> bool:
        """True while ``conn`` is live for the flow (attached and not retired)."""
        return conn.id in self._conns

    def release(self, conn: Connection) -> int:
        released = self.flow.release(conn.id)
        self.run()
        return released

    def tick(self) -> None:
        self.flow.tick(now_us())
        self.run()

    @property
    def fatal(self) -> str | None:
        """The producer's final error (ingestion exits on it)."""
        return self._publisher.fatal

    def publish_gap(self, record: GapMessage) -> None:
        """A gap record decided outside the flow (the last instance's, closed at pick-up or stop)."""
        self._publisher.publish_gap(record)
        self.route()

    def flush(self, timeout: float) -> int:
        """Deliver what the publisher holds; returns what is left (Rule 3)."""
        left = self._publisher.flush(timeout)
        self._served()
        return left

    # ----------------------------------------------------------------- executors' outputs
    async def serve_publisher(self) -> None:
        """Serve the producer and keep its topics until cancelled, routing its reports (Rule 3)."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._publisher.keep_topics(), name="keep-topics")
            tg.create_task(self._publisher.feed(self._backfiller.rows, self._backfiller.reserve), name="feed")
            while True:
                self.serve()
                await asyncio.sleep(SERVE_INTERVAL_S)

    def serve(self) -> None:
        """Serve the producer once (its callbacks run), then route what it reported (Rule 3)."""
        self._publisher.serve()
        self._served()

    async def hear(self) -> None:
        """Take the backfiller's answers as they come, until cancelled."""
        while True:
            self._answer(await self._backfiller.answers.get())

    def _answer(self, answer: Answer) -> None:
        if isinstance(answer, Verified):
            self.jump_checked(answer.token, answer.found, answer.failed)
        elif isinstance(answer, Latest):
            self.latest_known(answer.key, answer.latest)
        else:
            self._publisher.publish_gap(answer.record)
            self.route()

    def route(self) -> None:
        """The publisher's reports, in order, to the frontier book and the flow (Rule 3)."""
        book = self.book
        for report in self._publisher.take_reports():
            if isinstance(report, Lost):
                if book is not None:
                    book.lost((report.kind, report.symbol), report.ident)
                self.flow.lost(report.symbol, report.kind, report.ident, report.received_at, report.reason,
                               now_us())  # fmt: skip
            elif book is not None and isinstance(report, GapQueued):
                book.gap_published(report.record)
            elif book is not None and isinstance(report, GapAcked):
                book.gap_acked(report.record)

    # ----------------------------------------------------------------- execution
    def run(self) -> None:
        """Execute every queued action, in order (Rule 1), and route what the publisher reported
        meanwhile (Rule 3), until neither is left."""
        self._execute()
        while self._publisher.core.reports:
            self.route()
            self._execute()

    def _served(self) -> None:
        """After the producer served its callbacks: their reports routed, then their
        acknowledgements folded into the book (Rule 3; acknowledgements arrive only then)."""
        self.run()
        if self.book is not None and self._publisher.acked_events:
            fold_acks(self.book, self._publisher.acked_events)

    def _execute(self) -> None:
        for action in self.flow.take_actions():
            if type(action) is PublishEvent:
                self._publisher.publish_event(action.msg)
            elif isinstance(action, PublishGap):
                self._publish_gap(action)
            elif isinstance(action, DeadLetter):
                self._publisher.dead_letter(action.raw, action.reason, action.received_at)
                self._metrics.rejected[action.key] += 1
            elif isinstance(action, Backfill):
                self._backfiller.submit(action.record)
            elif isinstance(action, Reply):
                self._reply(action)
            elif isinstance(action, VerifyJump):
                self._metrics.jump_checks.inc()
                self._backfiller.verify(action)
            elif isinstance(action, AskLatest):
                self._backfiller.ask_latest(action)

    def _publish_gap(self, action: PublishGap) -> None:
        record = action.record
        self._publisher.publish_gap(record)
        if action.counts in ("detected", "settled"):
            self._metrics.gaps_detected.labels(record["stream"], record["reason"]).inc()
        if action.counts in ("resolved", "settled"):
            self._metrics.gaps_resolved.labels(record["stream"], record["status"]).inc()

    def _reply(self, action: Reply) -> None:
        conn = self._conns.get(action.conn_id)
        if conn is not None:
            conn.on_reply(action.reply)
