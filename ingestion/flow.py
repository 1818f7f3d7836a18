"""What happens to each frame: parse -> sequence -> publish, and to each loss: record -> repair.

No I/O, no clock (websockets' ``protocol.py`` is the model): connections' frames come in with
``receive`` and their receipt time, the supervisor calls ``attach``/``retire``/``interrupt``/
``overlapped``/``release`` around reconnects and rollovers, the publisher reports ``lost``
events, and every call only queues actions (``ingestion.actions``) that the shell
(``ingestion.effects``) takes with ``take_actions`` and executes. Owns the sequencers (one per
(type, symbol)), the open bookTicker time gaps, the loss tracker and each connection's link
(``ingestion.links``: subscribed streams, rollover handoff, shutdown notice).

Rules:
  1. Every event passes its sequencer before it is published; the sequencer alone decides
     what is a duplicate (rollover overlap, exchange resends) and what is a gap.
  2. A rejected frame becomes a ``DeadLetter`` with its reason; the flow goes on.
  3. Every gap is published as an "open" record before its repair starts, and every id gap is
     handed to the backfiller; bookTicker windows are recorded (no REST source exists).
  4. Events of a replacement connection wait in its link's handoff buffer until ``release``;
     nothing is published twice for the same id, whichever connection delivered it first.
  5. Nothing here blocks, awaits, performs I/O or reads a clock: times are passed in (us).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import cast

from common.events import GapMessage
from ingestion.actions import Action, Backfill, DeadLetter, Event, Key, PublishEvent, PublishGap, Reply
from ingestion.errors import ParseError
from ingestion.links import Link
from ingestion.losses import LossTracker
from ingestion.models import ControlReply
from ingestion.parse import Shutdown, parse_frame
from ingestion.records import id_gap, resolve, time_gap
from ingestion.sequencer import DUPLICATE, NEW, Gap, Sequencer

log = logging.getLogger(__name__)

LOSS_QUIET_US = 1_000_000
LOG_EVERY_US = 5_000_000


def ident_of(msg: Event) -> int:
    """The id the stream is sequenced by: ``id`` (t or a), or bookTicker's ``update_id``."""
    return msg["update_id"] if msg["type"] == "bookTicker" else msg["id"]


def key_of_stream(stream: str | None) -> Key:
    """(type, SYMBOL) of a stream name such as ``btcusdt@trade``; unknown parts say so."""
    symbol, _, kind = (stream or "").partition("@")
    return (kind or "unknown", symbol.upper() or "unknown")


@dataclass(frozen=True, slots=True)
class Tallies:
    """Hot-path counts the flow keeps (the metrics module exports them)."""

    received: MutableMapping[Key, int]
    duplicates: MutableMapping[Key, int]


class Flow:
    """The per-frame pipeline between connections and Kafka, as a state machine."""

    def __init__(self, tallies: Tallies) -> None:
        self._tallies = tallies
        self._seqs: dict[Key, Sequencer] = {}
        self._time_gaps: dict[str, GapMessage] = {}  # symbol -> open bookTicker window
        self._links: dict[str, Link] = {}
        self._out: list[Action] = []
        self.losses = LossTracker()
        self._rejects = 0
        self._last_reject_log = -LOG_EVERY_US

    def take_actions(self) -> list[Action]:
        """The actions queued since the last call, in order (the shell executes them)."""
        out, self._out = self._out, []
        return out

    # ----------------------------------------------------------------- connections
    def attach(self, conn_id: str, streams: Iterable[str], buffering: bool = False) -> None:
        """Start a link for a new connection; ``buffering`` for a rollover replacement."""
        link = self._links[conn_id] = Link(conn_id, frozenset(streams))
        link.handoff.buffering = buffering

    def retire(self, conn_id: str) -> None:
        """Forget a replaced connection: its frames are ignored from now on (links Rule 1)."""
        self._links.pop(conn_id, None)

    def shutdown_noticed(self, conn_id: str) -> bool:
        link = self._links.get(conn_id)
        return link is not None and link.shutdown_notice

    def buffered(self, conn_id: str) -> int:
        link = self._links.get(conn_id)
        return len(link.handoff.buffer) if link is not None else 0

    # ----------------------------------------------------------------- frames
    def receive(self, conn_id: str, raw: bytes, received_at: int) -> None:
        """Handle one frame of ``conn_id`` received at ``received_at`` (us) (Rules 1, 2, 4)."""
        link = self._links.get(conn_id)
        if link is None:
            return
        try:
            item = parse_frame(raw, received_at)
        except ParseError as exc:
            self._reject(link, raw, exc.reason, received_at, key_of_stream(exc.stream))
            return
        if isinstance(item, dict):
            self._event(link, item)
        elif isinstance(item, ControlReply):
            self._out.append(Reply(link.id, item))
        elif isinstance(item, Shutdown):
            link.shutdown_notice = True
            log.info("%s: serverShutdown received (event time %d)", link.id, item.event_time)

    def _event(self, link: Link, msg: Event) -> None:
        key = (msg["type"], msg["symbol"])
        self._tallies.received[key] += 1
        if link.handoff.buffering:
            link.handoff.hold(msg, key, ident_of(msg))
        else:
            self.accept(msg, key)

    def accept(self, msg: Event, key: Key) -> None:
        """Sequence one event and publish it unless it is a duplicate."""
        seq = self._seqs.get(key)
        if seq is None:
            seq = self._seqs[key] = Sequencer(contiguous=key[0] != "bookTicker")
        verdict = seq.observe(ident_of(msg))
        if verdict is not NEW:
            if verdict == DUPLICATE:
                self._tallies.duplicates[key] += 1
                return
            self._on_gap(key, cast(Gap, verdict), msg["received_at"])
        if self._time_gaps and key[0] == "bookTicker" and key[1] in self._time_gaps:
            self._close_time_gap(key[1], msg["received_at"])
        self._out.append(PublishEvent(msg))

    def _reject(self, link: Link, raw: bytes, reason: str, received_at: int, key: Key) -> None:
        self._out.append(DeadLetter(link.id, raw, reason, received_at, key))
        self._rejects += 1
        if received_at - self._last_reject_log >= LOG_EVERY_US:
            self._last_reject_log = received_at
            log.warning("%s: frame dead-lettered (%d so far): %s", link.id, self._rejects, reason)

    # ----------------------------------------------------------------- gaps
    def _on_gap(self, key: Key, gap: Gap, now: int) -> None:
        kind, symbol = key
        self._open_id_gap(id_gap(symbol, kind, gap.first, gap.last, gap.cause or "stream", now))

    def _open_id_gap(self, record: GapMessage) -> None:
        self._out.append(PublishGap(record, "detected"))
        log.warning(
            "gap %s: %s ids missing (%s); backfilling from REST",
            record["gap_id"], record["missing"], record["reason"],
        )  # fmt: skip
        self._out.append(Backfill(record))

    def _close_time_gap(self, symbol: str, end: int) -> None:
        record = self._time_gaps.pop(symbol)
        closed = resolve(record, "unrepairable", end, None, "bookTicker has no REST backfill")
        closed["end_time"] = end
        self._out.append(PublishGap(closed, "resolved"))
        start = record["start_time"] or end
        log.info("gap %s closed: bookTicker resumed after %.3f s", record["gap_id"], (end - start) / 1e6)

    def interrupt(self, keys: Iterable[Key], since: int, cause: str, now: int) -> None:
        """The streams ``keys`` were cut at ``since`` (us): attribute what follows to ``cause``."""
        for kind, symbol in keys:
            if kind != "bookTicker":
                self._seqs.setdefault((kind, symbol), Sequencer(True)).interrupt(cause)
            elif symbol not in self._time_gaps:
                record = time_gap(symbol, kind, since, None, cause, "open", now)
                self._time_gaps[symbol] = record
                self._out.append(PublishGap(record, "detected"))

    # ----------------------------------------------------------------- rollover
    def overlapped(self, conn_id: str) -> bool:
        """True once the old connection has caught up with the replacement's first events.

        Every contiguous stream the replacement has seen must join what was accepted (no
        hole), and at least one stream must truly overlap (the old connection has delivered
        an event the replacement also holds, so nothing older is still in flight on it).
        """
        link = self._links.get(conn_id)
        if link is None or not link.handoff.first_ids:
            return False
        joined, overlap = True, False
        for key, first in link.handoff.first_ids.items():
            seq = self._seqs.get(key)
            last = seq.last if seq is not None else None
            if last is None:
                continue
            overlap = overlap or last >= first
            if key[0] != "bookTicker" and last < first - 1:
                joined = False
        return joined and overlap

    def release(self, conn_id: str) -> int:
        """Feed the replacement's buffered events through the sequencers; it goes live."""
        link = self._links.get(conn_id)
        if link is None:
            return 0
        buffered = link.handoff.drain()
        for msg in buffered:
            self.accept(msg, (msg["type"], msg["symbol"]))
        return len(buffered)

    # ----------------------------------------------------------------- losses
    def lost(
        self, symbol: str, kind: str, ident: int | None, received_at: int, reason: str, now: int
    ) -> None:
        """An event Kafka did not take (reported by the publisher)."""
        self.losses.lost(symbol, kind, ident, received_at, reason, now)

    def tick(self, now: int) -> None:
        """Turn finished loss ranges into gap records (and id ranges into backfill jobs)."""
        if not self.losses:
            return
        for r in self.losses.drain(now, LOSS_QUIET_US):
            if r.first_id is not None and r.last_id is not None:
                self._open_id_gap(id_gap(r.symbol, r.stream, r.first_id, r.last_id, r.reason, now))
                continue
            record = time_gap(r.symbol, r.stream, r.start_time, r.end_time, r.reason, "unrepairable", now)
            self._out.append(PublishGap(record, "detected"))
            log.warning("gap %s: %d events lost (%s), not repairable", record["gap_id"], r.count, r.reason)
