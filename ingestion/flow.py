"""What happens to each frame: parse -> sequence -> publish, and to each loss: record -> repair.

Owns the sequencers (one per (type, symbol)), the open bookTicker time gaps and the loss
tracker; connections call ``on_frame``, the supervisor calls ``interrupt``/``overlapped``/
``release`` around reconnects and rollovers, the publisher calls ``lost``.

Rules:
  1. Every event passes its sequencer before it is published; the sequencer alone decides
     what is a duplicate (rollover overlap, exchange resends) and what is a gap.
  2. A rejected frame goes to the dead-letter topic with its reason; the flow goes on.
  3. Every gap is published as an "open" record before its repair starts, and every id gap is
     handed to the backfiller; bookTicker windows are recorded (no REST source exists).
  4. Events of a replacement connection wait in its buffer until ``release``; nothing is
     published twice for the same id, whichever connection delivered it first.
  5. Nothing here blocks or awaits: it runs inside a connection's receive loop.
  6. Resume seam: while ``resume`` (``ingestion.frontier.Resumer``) holds a key, that key's
     first event is compared with the last instance's frontier before it is sequenced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import cast

from common.events import BookTickerMessage, GapMessage, TradeMessage
from common.settings import Settings
from ingestion.backfill import Backfiller
from ingestion.connection import Connection
from ingestion.errors import ParseError
from ingestion.frontier import Resumer
from ingestion.losses import LossTracker
from ingestion.metrics import IngestionMetrics
from ingestion.models import ControlReply
from ingestion.parse import Shutdown, parse_frame
from ingestion.publisher import Publisher
from ingestion.records import id_gap, resolve, time_gap
from ingestion.sequencer import DUPLICATE, NEW, Gap, Sequencer

log = logging.getLogger(__name__)

Event = TradeMessage | BookTickerMessage
Key = tuple[str, str]  # (type, symbol)
LOSS_QUIET_US = 1_000_000
LOG_EVERY_S = 5.0


def ident_of(msg: Event) -> int:
    """The id the stream is sequenced by: ``id`` (t or a), or bookTicker's ``update_id``."""
    return msg["update_id"] if msg["type"] == "bookTicker" else msg["id"]


def key_of_stream(stream: str | None) -> Key:
    """(type, SYMBOL) of a stream name such as ``btcusdt@trade``; unknown parts say so."""
    symbol, _, kind = (stream or "").partition("@")
    return (kind or "unknown", symbol.upper() or "unknown")


class Flow:
    """The per-frame pipeline between connections and Kafka."""

    def __init__(
        self, settings: Settings, metrics: IngestionMetrics, publisher: Publisher, backfiller: Backfiller
    ) -> None:
        self._s, self._metrics = settings, metrics
        self._publisher, self._backfiller = publisher, backfiller
        self._seqs: dict[Key, Sequencer] = {}
        self._time_gaps: dict[str, GapMessage] = {}  # symbol -> open bookTicker window
        self.losses = LossTracker()
        self._rejects = 0
        self._last_reject_log = 0.0
        self.resume: Resumer | None = None  # armed at start from the frontier (Rule 6)

    # ----------------------------------------------------------------- frames
    def on_frame(self, raw: bytes, received_at: int, conn: Connection) -> None:
        """Handle one frame of ``conn`` (Rules 1, 2, 4)."""
        if conn.retired:
            return
        try:
            item = parse_frame(raw, received_at)
        except ParseError as exc:
            self._reject(raw, exc, received_at, conn)
            return
        if isinstance(item, dict):
            key = (item["type"], item["symbol"])
            self._metrics.received[key] += 1
            if conn.buffering:
                conn.buffer.append(item)
                conn.first_ids.setdefault(key, ident_of(item))
            else:
                self.accept(item, key)
        elif isinstance(item, ControlReply):
            conn.on_reply(item)
        elif isinstance(item, Shutdown):
            conn.shutdown_notice = True
            log.info("%s: serverShutdown received (event time %d)", conn.id, item.event_time)

    def accept(self, msg: Event, key: Key) -> None:
        """Sequence one event and publish it unless it is a duplicate."""
        if self.resume is not None and key in self.resume.pending:
            trade = cast(TradeMessage, msg)
            self.resume_at(key, trade["id"], trade["trade_time"])
        seq = self._seqs.get(key)
        if seq is None:
            seq = self._seqs[key] = Sequencer(contiguous=key[0] != "bookTicker")
        verdict = seq.observe(ident_of(msg))
        if verdict is not NEW:
            if verdict == DUPLICATE:
                self._metrics.duplicates[key] += 1
                return
            self._on_gap(key, cast(Gap, verdict))
        if self._time_gaps and key[0] == "bookTicker" and key[1] in self._time_gaps:
            self._close_time_gap(key[1], msg["received_at"])
        self._publisher.publish_event(msg)

    def resume_at(self, key: Key, first_id: int, when: int) -> None:
        """The next id of a resumed stream (its first event, or REST's latest + 1 for a quiet one)
        sets its baseline and may open a restart gap (Rule 6)."""
        if self.resume is None or key not in self.resume.pending:
            return
        out = self.resume.first_contact(key, first_id, when, time.time_ns() // 1000)
        if not self.resume.pending:
            self.resume = None
        self._seqs[key] = Sequencer(True, out.baseline)
        quiet = out.record is None and out.baseline is not None
        log.log(logging.INFO if quiet else logging.WARNING, "%s %s: %s", key[1], key[0], out.note)
        if out.record is None:
            return
        if out.record["status"] == "open":
            self._open_id_gap(out.record)
            return
        self._publisher.publish_gap(out.record)
        self._metrics.gaps_detected.labels(key[0], "restart").inc()
        self._metrics.gaps_resolved.labels(key[0], out.record["status"]).inc()

    def _reject(self, raw: bytes, exc: ParseError, received_at: int, conn: Connection) -> None:
        self._publisher.dead_letter(raw, exc.reason, received_at)
        self._metrics.rejected[key_of_stream(exc.stream)] += 1
        self._rejects += 1
        now = time.monotonic()
        if now - self._last_reject_log >= LOG_EVERY_S:
            self._last_reject_log = now
            log.warning("%s: frame dead-lettered (%d so far): %s", conn.id, self._rejects, exc.reason)

    # ----------------------------------------------------------------- gaps
    def _on_gap(self, key: Key, gap: Gap) -> None:
        kind, symbol = key
        record = id_gap(symbol, kind, gap.first, gap.last, gap.cause or "stream", time.time_ns() // 1000)
        self._open_id_gap(record)

    def _open_id_gap(self, record: GapMessage) -> None:
        self._publisher.publish_gap(record)
        self._metrics.gaps_detected.labels(record["stream"], record["reason"]).inc()
        log.warning(
            "gap %s: %s ids missing (%s); backfilling from REST",
            record["gap_id"], record["missing"], record["reason"],
        )  # fmt: skip
        self._backfiller.submit(record)

    def _close_time_gap(self, symbol: str, end: int) -> None:
        record = self._time_gaps.pop(symbol)
        closed = resolve(record, "unrepairable", end, None, "bookTicker has no REST backfill")
        closed["end_time"] = end
        self._publisher.publish_gap(closed)
        self._metrics.gaps_resolved.labels("bookTicker", "unrepairable").inc()
        start = record["start_time"] or end
        log.info("gap %s closed: bookTicker resumed after %.3f s", record["gap_id"], (end - start) / 1e6)

    def interrupt(self, keys: Iterable[Key], since: int, cause: str) -> None:
        """The streams ``keys`` were cut at ``since`` (us): attribute what follows to ``cause``."""
        now = time.time_ns() // 1000
        for kind, symbol in keys:
            if kind != "bookTicker":
                self._seqs.setdefault((kind, symbol), Sequencer(True)).interrupt(cause)
            elif symbol not in self._time_gaps:
                record = time_gap(symbol, kind, since, None, cause, "open", now)
                self._time_gaps[symbol] = record
                self._publisher.publish_gap(record)
                self._metrics.gaps_detected.labels(kind, cause).inc()

    # ----------------------------------------------------------------- rollover
    def overlapped(self, conn: Connection) -> bool:
        """True once the old connection has caught up with the replacement's first events.

        Every contiguous stream the replacement has seen must join what was accepted (no
        hole), and at least one stream must truly overlap (the old connection has delivered
        an event the replacement also holds, so nothing older is still in flight on it).
        """
        if not conn.first_ids:
            return False
        joined, overlap = True, False
        for key, first in conn.first_ids.items():
            seq = self._seqs.get(key)
            last = seq.last if seq is not None else None
            if last is None:
                continue
            overlap = overlap or last >= first
            if key[0] != "bookTicker" and last < first - 1:
                joined = False
        return joined and overlap

    def release(self, conn: Connection) -> int:
        """Feed the replacement's buffered events through the sequencers; it goes live."""
        buffered, conn.buffer = conn.buffer, []
        conn.buffering = False
        for msg in buffered:
            self.accept(msg, (msg["type"], msg["symbol"]))
        conn.first_ids.clear()
        return len(buffered)

    # ----------------------------------------------------------------- losses
    def lost(self, symbol: str, kind: str, ident: int | None, received_at: int, reason: str) -> None:
        """An event Kafka did not take (called by the publisher)."""
        self.losses.lost(symbol, kind, ident, received_at, reason, time.time_ns() // 1000)

    def tick(self) -> None:
        """Turn finished loss ranges into gap records (and id ranges into backfill jobs)."""
        if not self.losses:
            return
        now = time.time_ns() // 1000
        for r in self.losses.drain(now, LOSS_QUIET_US):
            if r.first_id is not None and r.last_id is not None:
                self._open_id_gap(id_gap(r.symbol, r.stream, r.first_id, r.last_id, r.reason, now))
                continue
            record = time_gap(r.symbol, r.stream, r.start_time, r.end_time, r.reason, "unrepairable", now)
            self._publisher.publish_gap(record)
            self._metrics.gaps_detected.labels(r.stream, r.reason).inc()
            log.warning("gap %s: %d events lost (%s), not repairable", record["gap_id"], r.count, r.reason)
