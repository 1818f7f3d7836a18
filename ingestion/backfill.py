"""Repair of id gaps from Binance REST (aiohttp), within the request-weight budget.

A job names a gap of trade or aggTrade ids. The backfiller pages through
``/api/v3/historicalTrades`` (weight 25) or ``/api/v3/aggTrades`` (weight 4) by ``fromId``,
``limit`` <= 1000, publishes the rows in the gap (source "rest") to the same topics as the
stream, then publishes the gap record again with status "repaired", or "unrepairable" with
why (REST no longer has some ids, or kept failing).

Rules:
  1. Every request goes through one ``ingestion.rest.RestClient``: weight spent in any 60 s stays
     within ``REST_WEIGHT_BUDGET_PER_MIN``, and a 429 or 418 (ban) pauses every request for
     ``Retry-After`` (rest.py Rules 2-3).
  2. Only ids inside the gap are published, each at most once per job.
  3. Rows go to ``rows`` (bounded: the fetch waits while it is full), each with the note its
     acknowledgement is told to (Rule 7); the publisher takes them only while its producer has
     ``reserve`` free slots (``ROOM_RESERVE``, at most a quarter of the buffer), so a backfill
     never takes the space the live streams need (``Publisher.feed``, wired by the shell).
  4. Retry policy is data: ``rest.is_retryable`` and a jittered backoff; at most
     ``rest.ATTEMPTS`` per page (rest.py Rules 4-5).
  5. The budget follows the exchange's ``X-MBX-USED-WEIGHT-1M``, so a history import running
     at the same time shares it (limits.py Rule 5).
  6. Times are asked for in microseconds (``X-MBX-TIME-UNIT``); the parser normalises anyway.
  7. A gap is resolved only after Kafka has answered for every row the job published: the
     resolving record (an ``answers`` entry, ``Resolved``, published by the shell) never
     overtakes its rows, so a frontier that drops the gap (on that record's acknowledgement)
     never drops ids that are not in Kafka.
  8. Progress is visible: ``remaining_ids`` (queued and in-flight ids, the
     ``ingestion_backfill_remaining_ids`` gauge) and a log line every ``PROGRESS_EVERY_S``.
  9. ``verify`` answers a ``VerifyJump`` (is this id in REST, with these values?) with one
     ``limit=1`` page, ahead of repairs and without waiting for them; every check gets
     exactly one answer, ``Verified`` (the row, or None; ``failed`` when REST kept failing).
 10. ``ask_latest`` answers an ``AskLatest`` (a stream quiet since a reconnect, flow Rule 8)
     with one ``limit=1`` page of the most recent rows, in a queue of its own so jump checks
     never wait behind it; every question gets exactly one answer, ``Latest`` (the latest id,
     or None when REST has no row or kept failing).
 11. Answers wait in ``answers``, in the order they were reached, for the shell to take
     (``effects.Effects.hear``); the backfiller calls no one back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import aiohttp

from binance_pipeline.common.clock import now_us
from binance_pipeline.common.events import GapMessage, GapStatus, TradeMessage
from binance_pipeline.common.settings import Settings
from ingestion.actions import AskLatest, Row, VerifyJump
from ingestion.errors import BackfillError, ParseError
from ingestion.metrics import IngestionMetrics
from ingestion.records import resolve
from ingestion.rest import PAGE_LIMIT, RestClient, from_id

log = logging.getLogger(__name__)

ROOM_RESERVE = 1000  # producer slots a backfill leaves to the live streams (at most 1/4)
ROWS_QUEUED = 1000  # Rule 3: rows fetched and not yet handed to the producer, at most
PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True)
class Verified:
    """Rule 9: the answer to ``VerifyJump`` ``token``."""

    token: int
    found: TradeMessage | None
    failed: bool


@dataclass(frozen=True)
class Latest:
    """Rule 10: REST's latest id of ``key`` (type, symbol), or None."""

    key: tuple[str, str]
    latest: int | None


@dataclass(frozen=True)
class Resolved:
    """Rule 7: a repair's end: its gap record, resolved, to publish."""

    record: GapMessage


Answer = Verified | Latest | Resolved


@dataclass(frozen=True)
class Job:
    """Repair ``record`` (an open id gap of ``record['stream']``)."""

    record: GapMessage


@dataclass
class Outcome:
    published: int = 0
    why: str = ""
    answered: int = 0  # rows Kafka acknowledged or refused for good (Rule 7)
    fetched: bool = False
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, _acked: bool) -> None:
        self.answered += 1
        if self.fetched and self.answered >= self.published:
            self.settled.set()

    async def wait_answered(self) -> None:
        """Return once Kafka has answered for every row published (Rule 7)."""
        self.fetched = True
        if self.answered < self.published:
            await self.settled.wait()


def span(record: GapMessage) -> int:
    first, last = record["first_id"], record["last_id"]
    return 0 if first is None or last is None else last - first + 1


class Backfiller:
    """Runs jobs one after another; ``submit`` never blocks."""

    def __init__(self, settings: Settings, metrics: IngestionMetrics) -> None:
        self._s, self._metrics = settings, metrics
        self._rest = RestClient(settings, self._count_answer)
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self.active = 0
        self._queued_ids = 0
        self._left = 0  # ids of the running job not fetched yet
        self._last_progress = 0.0
        self.reserve = min(ROOM_RESERVE, settings.producer_buffer_max_messages // 4)  # Rule 3
        self.rows: asyncio.Queue[Row] = asyncio.Queue(ROWS_QUEUED)
        self._checks: asyncio.Queue[VerifyJump] = asyncio.Queue()
        self._asks: asyncio.Queue[AskLatest] = asyncio.Queue()
        self.answers: asyncio.Queue[Answer] = asyncio.Queue()  # Rule 11

    def _count_answer(self, path: str, status: int) -> None:
        self._metrics.rest_requests.labels(path, str(status)).inc()

    def submit(self, record: GapMessage) -> None:
        self._queued_ids += span(record)
        self._queue.put_nowait(Job(record))

    def verify(self, check: VerifyJump) -> None:
        """Queue a jump check (Rule 6)."""
        self._checks.put_nowait(check)

    def ask_latest(self, ask: AskLatest) -> None:
        """Queue a question for REST's latest id (Rule 10)."""
        self._asks.put_nowait(ask)

    def pending(self) -> int:
        """Repairs queued or running (their ``Resolved`` answers not reached yet)."""
        return self._queue.qsize() + self.active

    def take_answers(self) -> list[Answer]:
        """Every answer reached so far, in order (Rule 11)."""
        answers = []
        while not self.answers.empty():
            answers.append(self.answers.get_nowait())
        return answers

    def remaining_ids(self) -> int:
        """Ids queued or not yet fetched by the running job (Rule 8)."""
        return self._queued_ids + self._left

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._s.rest_timeout_s)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            asyncio.TaskGroup() as tg,
        ):
            tg.create_task(self._repairs(session), name="backfill-repairs")
            tg.create_task(self._verifications(session), name="backfill-checks")
            tg.create_task(self._latest_ids(session), name="backfill-latest")

    async def _repairs(self, session: aiohttp.ClientSession) -> None:
        while True:
            job = await self._queue.get()
            self._queued_ids -= span(job.record)
            self._left = span(job.record)
            self.active = 1
            try:
                await self._repair(session, job.record)
            finally:
                self.active = self._left = 0

    async def _verifications(self, session: aiohttp.ClientSession) -> None:
        while True:
            check = await self._checks.get()
            try:
                rows = await self._page(session, check.symbol, check.stream, check.ident, 1)
            except (BackfillError, ParseError) as exc:
                log.warning("jump check %s %s id %d: REST failed: %s", check.symbol, check.stream,
                            check.ident, exc)  # fmt: skip
                self.answers.put_nowait(Verified(check.token, None, True))
                continue
            found = rows[0] if rows and rows[0]["id"] == check.ident else None
            self.answers.put_nowait(Verified(check.token, found, False))

    async def _latest_ids(self, session: aiohttp.ClientSession) -> None:
        while True:
            ask = await self._asks.get()
            try:
                rows = await self._page(session, ask.symbol, ask.stream, None, 1)
            except (BackfillError, ParseError) as exc:
                log.warning("%s %s: REST's latest id unknown (%s); the next event will reveal the gap",
                            ask.symbol, ask.stream, exc)  # fmt: skip
                rows = []
            self.answers.put_nowait(Latest((ask.stream, ask.symbol), rows[-1]["id"] if rows else None))

    async def _repair(self, session: aiohttp.ClientSession, record: GapMessage) -> None:
        first, last = record["first_id"], record["last_id"]
        assert first is not None and last is not None  # noqa: S101 - id gaps carry both
        log.info("backfill %s: fetching ids %d-%d from REST", record["gap_id"], first, last)
        outcome = await self._fetch_range(session, record, first, last)
        await outcome.wait_answered()
        missing = (last - first + 1) - outcome.published
        status: GapStatus = "repaired" if missing == 0 else "unrepairable"
        self.answers.put_nowait(Resolved(resolve(record, status, now_us(), missing, outcome.why)))
        self._metrics.gaps_resolved.labels(record["stream"], status).inc()
        log.log(
            logging.INFO if missing == 0 else logging.WARNING,
            "backfill %s: %s (%d recovered, %d missing%s)", record["gap_id"], status,
            outcome.published, missing, f": {outcome.why}" if outcome.why else "",
        )  # fmt: skip

    async def _fetch_range(
        self, session: aiohttp.ClientSession, record: GapMessage, first: int, last: int
    ) -> Outcome:
        symbol, stream = record["symbol"], record["stream"]
        out, next_id, lost = Outcome(), first, []
        while next_id <= last:
            self._progress(record, next_id, first, last)
            try:
                rows = await self._page(session, symbol, stream, next_id, min(PAGE_LIMIT, last - next_id + 1))
            except (BackfillError, ParseError) as exc:
                out.why = f"REST failed from id {next_id}: {exc}"
                return out
            if not rows or rows[-1]["id"] < next_id:
                lost.append(f"{next_id}-{last}")
                break
            if rows[0]["id"] > next_id:
                lost.append(f"{next_id}-{min(last, rows[0]['id'] - 1)}")
            in_gap = [r for r in rows if next_id <= r["id"] <= last]
            await self._publish(in_gap, out)
            out.published += len(in_gap)
            next_id = max(next_id, rows[-1]["id"] + 1)
        if lost:
            out.why = f"REST no longer has ids {', '.join(lost)}"
        return out

    def _progress(self, record: GapMessage, next_id: int, first: int, last: int) -> None:
        """Count down, and say where a long backfill is every PROGRESS_EVERY_S (Rule 8)."""
        self._left = last - next_id + 1
        now = time.monotonic()
        if next_id == first:
            self._last_progress = now
        elif now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            done = next_id - first
            log.info("backfill %s: %d of %d ids fetched (%.0f%%), %d more ids queued in %d job(s)",
                     record["gap_id"], done, last - first + 1, 100 * done / (last - first + 1),
                     self._queued_ids, self._queue.qsize())  # fmt: skip

    async def _publish(self, rows: list[TradeMessage], out: Outcome) -> None:
        """Rule 3: each row to ``rows``, waiting while it is full."""
        for row in rows:
            await self.rows.put((row, out.note))
            self._metrics.backfilled.labels(row["type"]).inc()

    async def latest(self, symbol: str, stream: str) -> TradeMessage | None:
        """The most recent trade or aggTrade REST has (probes a resumed stream that stays quiet)."""
        timeout = aiohttp.ClientTimeout(total=self._s.rest_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            rows = await self._page(session, symbol, stream, None, 1)
        return rows[-1] if rows else None

    async def _page(
        self, session: aiohttp.ClientSession, symbol: str, stream: str, first: int | None, limit: int
    ) -> list[TradeMessage]:
        """Up to ``limit`` rows from id ``first`` (None: the most recent), through the REST client."""
        return await self._rest.page(session, symbol, stream, from_id(first, limit))
