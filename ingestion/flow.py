"""What happens to each frame: parse -> check -> sequence -> publish, and to each loss: record -> repair.

No I/O, no clock (websockets' ``protocol.py`` is the model): connections' frames come in with
``receive`` and their receipt time, the supervisor calls ``attach``/``retire``/``interrupt``/
``overlapped``/``release`` around reconnects and rollovers, the publisher reports ``lost``
events, REST answers come back through ``jump_checked``, and every call only queues actions
(``ingestion.actions``) that the shell (``ingestion.effects``) takes with ``take_actions`` and
executes. Owns the sequencers (one per (type, symbol)) and their paces, the open bookTicker
time gaps, the loss tracker, the jumps awaiting REST, and each connection's link
(``ingestion.links``: subscribed streams, rollover handoff, shutdown notice, pending requests).

Invariant (``ingestion.sequencer``): a valid event is never dropped because of an invalid one.

Rules:
  1. Every event passes its sequencer before it is published; the sequencer alone decides
     what is a duplicate (rollover overlap, exchange resends), a gap, or a fill.
  2. A rejected frame becomes a ``DeadLetter`` with its reason; the flow goes on. Rejected are:
     what ``parse`` rejects (malformed, duplicate keys, out of bounds, non-positive trade
     prices), binary frames, a stream the connection did not subscribe, a bare payload on a
     combined connection, a trade or event time outside the receipt-time window, a control
     reply whose id matches no pending request, and a jump REST does not confirm (Rule 6).
  3. Every gap is published as an "open" record before its repair starts, and every id gap is
     handed to the backfiller; bookTicker windows are recorded (no REST source exists).
  4. Events of a replacement connection wait in its link's handoff buffer until ``release``;
     nothing is published twice for the same id, whichever connection delivered it first.
  5. Nothing here blocks, awaits, performs I/O or reads a clock: times are passed in (us).
  6. A trade or aggTrade id that would set the baseline (the stream's first id, unless
     ``seed`` gave one) or that lies further ahead than its stream's pace allows
     (``ingestion.pace``) does not reach the sequencer: a ``VerifyJump`` asks REST first.
     Confirmed (REST holds the same trade) or unverifiable (REST failed: the gap will be
     recorded anyway), it is sequenced; otherwise it is dead-lettered. Later jumps of that
     stream wait behind it, in order; in-order ids keep flowing meanwhile.
  7. Resume seam: while ``resume`` (``ingestion.frontier.Resumer``) holds a key, that key's
     first event is compared with the last instance's frontier before it is sequenced
     (``resume_at``): the pure ``first_contact`` decides, the sequencer is seeded with the
     baseline (so that first id needs no REST check, Rule 6), and the restart gap is queued
     (an open gap and its backfill, or an unrepairable record).
  8. A trade or aggTrade stream with a baseline that has had no event ``quiet_us`` after it was
     interrupted (a reconnect) is compared with REST's latest id (``AskLatest``): the ids it
     missed become a gap with the interruption's cause and are backfilled, so a stream that
     goes quiet (an illiquid symbol, a feed that ended) still reveals the ids lost in the cut
     instead of holding them back until its next trade. An event that arrives first reveals
     the gap itself, and the answer is ignored.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import cast

from binance_pipeline.common.events import GapMessage, TradeMessage
from ingestion.actions import (
    Action,
    AskLatest,
    Backfill,
    DeadLetter,
    Event,
    Key,
    PublishEvent,
    PublishGap,
    Reply,
    VerifyJump,
)
from ingestion.checks import misplaced_in, same_trade
from ingestion.errors import ParseError
from ingestion.frontier import Resumer
from ingestion.links import Link
from ingestion.losses import LossTracker
from ingestion.models import ControlReply
from ingestion.pace import Pace
from ingestion.parse import decode
from ingestion.records import id_gap, resolve, time_gap
from ingestion.sequencer import DUPLICATE, FILL, NEW, Gap, Sequencer

log = logging.getLogger(__name__)

LOSS_QUIET_US = 1_000_000
QUIET_US = 5_000_000  # Rule 8: default silence after an interruption before REST is asked
LOG_EVERY_US = 5_000_000
UNKNOWN: Key = ("unknown", "unknown")


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


@dataclass(slots=True)
class Suspect:
    """A jump waiting for REST, and the later jumps of its stream queued behind it (Rule 6)."""

    key: Key
    msg: TradeMessage
    raw: bytes
    conn_id: str
    followers: list[tuple[Event, bytes, str]] = field(default_factory=list)


class Flow:
    """The per-frame pipeline between connections and Kafka, as a state machine."""

    def __init__(self, tallies: Tallies, time_window_us: int, quiet_us: int = QUIET_US) -> None:
        self._tallies, self._window, self._quiet_us = tallies, time_window_us, quiet_us
        self._received = tallies.received
        self._quiet: dict[Key, int] = {}  # interrupted stream -> since when (us), Rule 8
        self._seqs: dict[Key, Sequencer] = {}
        self._paces: dict[Key, Pace] = {}
        self._time_gaps: dict[str, GapMessage] = {}  # symbol -> open bookTicker window
        self._links: dict[str, Link] = {}
        self._suspects: dict[int, Suspect] = {}  # token -> jump awaiting REST
        self._checking: dict[Key, int] = {}  # stream -> token of its pending check
        self._tokens = itertools.count(1)
        self._out: list[Action] = []
        self.losses = LossTracker()
        self._rejects = 0
        self._last_reject_log = -LOG_EVERY_US
        self.resume: Resumer | None = None  # armed at start from the frontier (Rule 7)

    def take_actions(self) -> list[Action]:
        """The actions queued since the last call, in order (the shell executes them)."""
        out, self._out = self._out, []
        return out

    # ----------------------------------------------------------------- connections
    def attach(self, conn_id: str, streams: Iterable[str], buffering: bool = False) -> None:
        """Start a link for a new connection; ``buffering`` for a rollover replacement."""
        link = self._links[conn_id] = Link(conn_id, frozenset(streams))
        link.handoff.buffering = buffering

    def restream(self, conn_id: str, streams: Iterable[str]) -> None:
        """The connection's subscribed streams changed (the universe seam)."""
        link = self._links.get(conn_id)
        if link is not None:
            link.streams = frozenset(streams)

    def retire(self, conn_id: str) -> None:
        """Forget a replaced connection: its frames are ignored from now on (links Rule 1)."""
        self._links.pop(conn_id, None)

    def shutdown_noticed(self, conn_id: str) -> bool:
        link = self._links.get(conn_id)
        return link is not None and link.shutdown_notice

    def buffered(self, conn_id: str) -> int:
        link = self._links.get(conn_id)
        return len(link.handoff.buffer) if link is not None else 0

    def request_sent(self, conn_id: str, ident: int) -> None:
        """Control request ``ident`` went out on ``conn_id``: its reply is expected."""
        link = self._links.get(conn_id)
        if link is not None:
            link.pending.add(ident)

    def request_done(self, conn_id: str, ident: int) -> None:
        """Request ``ident`` was answered or given up: a later reply to it matches nothing."""
        link = self._links.get(conn_id)
        if link is not None:
            link.pending.discard(ident)

    def seed(self, key: Key, last: int) -> None:
        """Set the baseline of (type, symbol) from a stored frontier (sequencer Rule 1)."""
        self._sequencer(key).seed(last)

    # ----------------------------------------------------------------- frames
    def receive(self, conn_id: str, raw: bytes, received_at: int, binary: bool = False) -> None:
        """Handle one frame of ``conn_id`` received at ``received_at`` (us) (Rules 1, 2, 4)."""
        link = self._links.get(conn_id)
        if link is None:
            return
        if binary:
            self._reject(conn_id, raw, "binary frame: the exchange sends text frames", received_at, UNKNOWN)
            return
        try:
            framed = decode(raw, received_at)
        except ParseError as exc:
            self._reject(conn_id, raw, exc.reason, received_at, key_of_stream(exc.stream))
            return
        item = framed[1]
        misplaced = misplaced_in(link, framed, self._window)
        if misplaced is not None:
            key = (item["type"], item["symbol"]) if isinstance(item, dict) else key_of_stream(framed[0])
            self._reject(conn_id, raw, misplaced, received_at, key)
        elif isinstance(item, dict):
            self._event(link, item, raw)
        elif isinstance(item, ControlReply):
            self._reply(link, item, raw, received_at)
        else:
            link.shutdown_notice = True
            log.info("%s: serverShutdown received (event time %d)", link.id, item.event_time)

    def _reply(self, link: Link, reply: ControlReply, raw: bytes, received_at: int) -> None:
        if isinstance(reply.id, int) and reply.id in link.pending:
            link.pending.discard(reply.id)
            self._out.append(Reply(link.id, reply))
            return
        why = f"control reply with id {str(reply.id)[:20]!r} matches no pending request"
        self._reject(link.id, raw, why, received_at, UNKNOWN)

    def _event(self, link: Link, msg: Event, raw: bytes) -> None:
        key = (msg["type"], msg["symbol"])
        self._received[key] += 1
        if link.handoff.buffering:
            link.handoff.hold(msg, raw, key, ident_of(msg))
        else:
            self._sequence(msg, raw, key, link.id)

    def _sequence(self, msg: Event, raw: bytes, key: Key, conn_id: str) -> None:
        """Accept ``msg`` unless it must wait for REST first (Rules 6, 7)."""
        if self.resume is not None and key in self.resume.pending:
            trade = cast(TradeMessage, msg)
            self.resume_at(key, trade["id"], trade["trade_time"], trade["received_at"])
        seq = self._seqs.get(key) or self._sequencer(key)
        if seq.contiguous:  # an id at most one ahead is never held: checked here, before the call
            last = seq.last
            if (last is None or msg["id"] > last + 1) and self._held(  # type: ignore[typeddict-item]
                seq, key, cast(TradeMessage, msg), raw, conn_id
            ):
                return
        self.accept(msg, key, seq)

    def _held(self, seq: Sequencer, key: Key, msg: TradeMessage, raw: bytes, conn_id: str) -> bool:
        """Queue ``msg`` behind a pending check, or start one for it; False: sequence it now."""
        last, ident = seq.last, msg["id"]
        if last is not None and ident <= last + 1:
            return False
        token = self._checking.get(key)
        if token is not None:
            self._suspects[token].followers.append((msg, raw, conn_id))
            return True
        if last is not None and self._paces[key].plausible(ident - last - 1, msg["received_at"]):
            return False
        self._verify(key, msg, raw, conn_id, last)
        return True

    def _sequencer(self, key: Key) -> Sequencer:
        seq = self._seqs.get(key)
        if seq is None:
            seq = self._seqs[key] = Sequencer(contiguous=key[0] != "bookTicker")
            self._paces[key] = Pace()
        return seq

    def accept(self, msg: Event, key: Key, seq: Sequencer | None = None) -> None:
        """Sequence one event (``seq``: its sequencer, when the caller has it) and publish it
        unless it is a duplicate."""
        seq = seq or self._seqs.get(key) or self._sequencer(key)
        ident = msg["update_id"] if key[0] == "bookTicker" else msg["id"]  # type: ignore[typeddict-item]
        verdict = seq.observe(ident)
        if verdict is not NEW:
            if verdict == DUPLICATE:
                self._tallies.duplicates[key] += 1
                return
            if verdict != FILL:
                self._on_gap(key, cast(Gap, verdict), msg["received_at"])
        if seq.contiguous and verdict != FILL:
            self._paces[key].note(ident, msg["received_at"])
        if self._time_gaps and key[0] == "bookTicker" and key[1] in self._time_gaps:
            self._close_time_gap(key[1], msg["received_at"])
        self._out.append(PublishEvent(msg))

    def _reject(self, conn_id: str, raw: bytes, reason: str, received_at: int, key: Key) -> None:
        self._out.append(DeadLetter(conn_id, raw, reason, received_at, key))
        self._rejects += 1
        if received_at - self._last_reject_log >= LOG_EVERY_US:
            self._last_reject_log = received_at
            log.warning("%s: frame dead-lettered (%d so far): %s", conn_id, self._rejects, reason)

    def arm(self, resume: Resumer) -> None:
        """Rule 7: resume the streams of the last instance's frontier (at start, before any frame)."""
        self.resume = resume

    def resume_at(self, key: Key, first_id: int, when: int, now: int) -> None:
        """The next id of a resumed stream (its first event, or REST's latest + 1 for a quiet one)
        sets its baseline and may open a restart gap (Rule 7); ``now`` in us."""
        if self.resume is None or key not in self.resume.pending:
            return
        out = self.resume.first_contact(key, first_id, when, now)
        if not self.resume.pending:
            self.resume = None
        if out.baseline is not None:
            self.seed(key, out.baseline)
        quiet = out.record is None and out.baseline is not None
        log.log(logging.INFO if quiet else logging.WARNING, "%s %s: %s", key[1], key[0], out.note)
        if out.record is None:
            return
        if out.record["status"] == "open":
            self._open_id_gap(out.record)
        else:
            self._out.append(PublishGap(out.record, "settled"))

    # ----------------------------------------------------------------- implausible jumps
    def _verify(self, key: Key, msg: TradeMessage, raw: bytes, conn_id: str, last: int | None) -> None:
        token = next(self._tokens)
        self._suspects[token] = Suspect(key, msg, raw, conn_id)
        self._checking[key] = token
        self._out.append(VerifyJump(token, key[1], key[0], msg["id"]))
        if last is None:
            log.info("%s %s: first id %d sets the baseline; asking REST first", key[1], key[0], msg["id"])
        else:
            log.warning("%s %s: id %d is %d ahead of %d, more than the stream's pace allows; asking REST",
                        key[1], key[0], msg["id"], msg["id"] - last, last)  # fmt: skip

    def jump_checked(self, token: int, found: TradeMessage | None, failed: bool) -> None:
        """REST's answer to ``VerifyJump(token)``: the row with that id, or None (Rule 6)."""
        suspect = self._suspects.pop(token, None)
        if suspect is None:
            return
        key, msg = suspect.key, suspect.msg
        del self._checking[key]
        if failed or same_trade(found, msg):
            if failed:
                log.warning("%s %s: REST could not check id %d; accepting it", key[1], key[0], msg["id"])
            self.accept(msg, key)
        else:
            why = "REST has no such trade" if found is None else "REST has other values for this id"
            reason = f"implausible id jump to {msg['id']} not confirmed: {why}"
            self._reject(suspect.conn_id, suspect.raw, reason, msg["received_at"], key)
        for follower, raw, conn_id in suspect.followers:
            self._sequence(follower, raw, key, conn_id)

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
                seq = self._sequencer((kind, symbol))
                seq.interrupt(cause)
                if seq.last is not None:  # Rule 8: from the first cut no event has answered
                    self._quiet.setdefault((kind, symbol), now)
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
        for msg, raw in buffered:
            self._sequence(msg, raw, (msg["type"], msg["symbol"]), conn_id)
        return len(buffered)

    # ----------------------------------------------------------------- losses
    def lost(
        self, symbol: str, kind: str, ident: int | None, received_at: int, reason: str, now: int
    ) -> None:
        """An event Kafka did not take (reported by the publisher)."""
        self.losses.lost(symbol, kind, ident, received_at, reason, now)

    def latest_known(self, key: Key, latest: int | None, now: int) -> None:
        """REST's latest id of a stream that stayed quiet after an interruption (Rule 8)."""
        seq = self._seqs.get(key)
        if seq is None or seq.interrupted is None or key in self._checking or latest is None:
            return  # an event came meanwhile (it reveals any gap itself), or REST has no row
        gap = seq.reveal(latest)
        if gap is not None:
            log.warning("%s %s: quiet since it was cut (%s); REST's latest id is %d", key[1], key[0],
                        gap.cause, latest)  # fmt: skip
            self._on_gap(key, gap, now)

    def tick(self, now: int) -> None:
        """Ask REST about quiet interrupted streams (Rule 8); turn finished loss ranges into gap
        records (and id ranges into backfill jobs)."""
        if self._quiet:
            self._ask_quiet(now)
        if not self.losses:
            return
        for r in self.losses.drain(now, LOSS_QUIET_US):
            if r.first_id is not None and r.last_id is not None:
                self._open_id_gap(id_gap(r.symbol, r.stream, r.first_id, r.last_id, r.reason, now))
                continue
            record = time_gap(r.symbol, r.stream, r.start_time, r.end_time, r.reason, "unrepairable", now)
            record["missing"] = r.count  # events known and lost: the window says how many
            self._out.append(PublishGap(record, "detected"))
            log.warning("gap %s: %d events lost (%s), not repairable", record["gap_id"], r.count, r.reason)

    def _ask_quiet(self, now: int) -> None:
        for key, since in list(self._quiet.items()):
            if self._seqs[key].interrupted is None or key in self._checking:  # an event came
                del self._quiet[key]
            elif now - since >= self._quiet_us:
                del self._quiet[key]
                self._out.append(AskLatest(key[1], key[0]))
