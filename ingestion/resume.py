"""Resume shell: read the last instance's frontier, pick up its open gaps, leave a clean one behind.

The decisions are in the pure modules ``ingestion.frontier`` and ``ingestion.unfinished``; this
module carries them out through the effects shell (gap records, the flow) and the backfiller.

Start (``read_frontier`` then ``pick_up``), before any connection opens:
  1. create the compacted frontier topic if missing and read it in full, retrying while the
     broker is unreachable: ingestion never starts without knowing where the last one stopped;
  2. for the streams it captures (it owns their entries; ``ingestion.unfinished`` Rule 0):
     publish the closing records of time gaps left open, publish every open id gap again and
     hand it to the backfiller, open the bookTicker ``restart`` windows, and arm the flow's
     resumer for every trade/aggTrade key with a frontier.
  3. ``probe_quiet``: a resumed stream still without an event RESUME_PROBE_AFTER_S after start
     is compared with REST's latest id instead, so a feed that went quiet while no instance ran
     still reveals (and repairs) its restart gap. A failed probe is logged; the first live event
     will still do.
Clean stop (``stop_cleanly``):
  4. close the open time gaps, flush the producer, write every frontier entry, flush again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.clock import now_us
from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.errors import TopicsNotCreated
from binance_pipeline.kafka.topics import ensure_topics
from ingestion.actions import Key
from ingestion.backfill import Backfiller
from ingestion.effects import Effects
from ingestion.errors import BackfillError, FrontierError, ParseError
from ingestion.frontier import FrontierBook, FrontierEntry, Resumer
from ingestion.frontier_store import FrontierWriter, frontier_topic, load_frontier
from ingestion.publisher import Publisher
from ingestion.unfinished import Pickup, close_at_stop, plan_pickup

log = logging.getLogger(__name__)


def captured_keys(settings: Settings) -> list[Key]:
    return [(kind, symbol) for symbol in settings.symbols for kind in settings.stream_types]


async def read_frontier(settings: Settings, stop: asyncio.Event) -> list[FrontierEntry] | None:
    """The last instance's frontier (step 1); None if stopped first."""
    backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
    while not stop.is_set():
        try:
            await asyncio.to_thread(ensure_topics, settings, [frontier_topic(settings)])
            entries = await asyncio.to_thread(load_frontier, settings)
        except (FrontierError, TopicsNotCreated) as exc:
            delay = backoff.next_delay()
            log.warning("%s; retrying in %.1f s", exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            continue
        log.info("frontier read from %s: %d entries, %d open gap(s)", settings.topic_frontier,
                 len(entries), sum(len(e.open_gaps) for e in entries))  # fmt: skip
        return entries
    return None


def pick_up(
    settings: Settings, entries: list[FrontierEntry], publisher: Publisher, backfiller: Backfiller,
    effects: Effects,
) -> FrontierWriter:
    """Keep the frontier and finish the last instance's business (step 2)."""
    plan = plan_pickup(entries, captured_keys(settings), now_us())
    book = FrontierBook(plan.owned, settings.frontier_write_interval_ms * 1000)
    resume = Resumer(plan.resume, int(settings.resume_max_age_s * 1e6)) if plan.resume else None
    effects.keep_frontier(book, resume)  # the book sees every gap record and loss from now on
    _finish(plan, effects, backfiller)
    for key, since in plan.windows:
        effects.interrupt([key], since, "restart")
    return FrontierWriter(settings, book, publisher.slot)


def _finish(plan: Pickup, effects: Effects, backfiller: Backfiller) -> None:
    if plan.foreign_open:
        log.warning("%d open gap(s) of streams this instance does not capture are left to the instance "
                    "that does: %s", len(plan.foreign_open),
                    ", ".join(g["gap_id"] for g in plan.foreign_open[:5]))  # fmt: skip
    for record in plan.closed:
        log.warning("gap %s left open by the last instance: closed, unrepairable", record["gap_id"])
        effects.publish_gap(record)
    for record in plan.id_gaps:
        log.warning("gap %s left open by the last instance (%s ids): backfilling", record["gap_id"],
                    record["missing"])  # fmt: skip
        effects.publish_gap(record)
        backfiller.submit(record)


async def probe_quiet(settings: Settings, effects: Effects, backfiller: Backfiller) -> None:
    """Compare quiet resumed streams with REST's latest id (step 3); returns when done."""
    await asyncio.sleep(settings.resume_probe_after_s)
    flow = effects.flow
    for key in list(flow.resume.pending if flow.resume is not None else ()):
        try:
            row = await backfiller.latest(key[1], key[0])
        except (BackfillError, ParseError) as exc:
            log.warning("%s %s: quiet since start and REST's latest id unknown (%s); waiting for the "
                        "stream", key[1], key[0], exc)  # fmt: skip
            continue
        if row is not None:
            log.info("%s %s: quiet since start; REST's latest id is %d", key[1], key[0], row["id"])
            effects.resume_at(key, row["id"] + 1, row["trade_time"])


def stop_cleanly(settings: Settings, effects: Effects, writer: FrontierWriter | None) -> int:
    """Close time gaps, flush, write the frontier, flush (step 4); returns messages left."""
    now = now_us()
    if writer is not None:
        for record in close_at_stop(writer.book.open_gaps(), now):
            effects.publish_gap(record)
        for key in captured_keys(settings):
            if key[0] == "bookTicker":
                writer.book.settle_time(key, now)
    left = effects.flush(settings.producer_flush_timeout_s)  # on this thread: callbacks too
    if writer is None or left:
        return left
    writer.final()
    return effects.flush(settings.producer_flush_timeout_s)
