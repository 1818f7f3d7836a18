"""Connections that survive Binance: slots, reconnects, stall detection, rollovers.

The configured streams are split into slots of at most WS_MAX_STREAMS_PER_CONNECTION; each
slot keeps one live connection.

Rules:
  1. A lost or stalled connection (no frame for WS_STALL_TIMEOUT_S) is replaced after a
     jittered exponential backoff (BACKOFF_INITIAL_S .. BACKOFF_MAX_S), reset once a
     connection has streamed for WS_STABLE_AFTER_S; the streams are marked interrupted, so
     the first ids on the new connection reveal the gap, and bookTicker windows are recorded.
  2. Connection attempts of all slots share one budget (under 300 per 5 minutes).
  3. Rollover (serverShutdown, or age WS_ROLLOVER_AFTER_S) is make-before-break: the
     replacement is opened and buffers its events; the old connection is closed only when
     ``Flow.overlapped`` says it has caught up (or after WS_HANDOFF_TIMEOUT_S); then the
     buffer goes through the sequencers, which drop the overlap.
  4. Every connection's receive task belongs to the slot's TaskGroup: none runs unowned.
  5. When to replace a connection is decided by ``watch.decide`` (pure); this module only
     sleeps, connects and closes.
  6. A connect error that ``connection.is_retryable`` calls fatal (an HTTP 4xx other than
     429/418 on the upgrade) stops the slot for good: logged, counted as
     ``ingestion_connects{outcome="fatal"}`` and named in the readiness reasons.
  7. Universe seam (``apply_placement``): ingestion.universe decides which streams move; the
     supervisor applies it: the slot's stream list changes first (so any reconnect uses it),
     then SUBSCRIBE/UNSUBSCRIBE go out on its live connection; new slots start under ``run``'s
     TaskGroup. Streams that stay are never interrupted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.settings import Settings
from ingestion.actions import Key
from ingestion.connection import Connection, is_retryable, now_us
from ingestion.effects import Effects
from ingestion.errors import ConnectError
from ingestion.limits import CONNECT_ATTEMPTS, WindowBudget, acquire
from ingestion.metrics import IngestionMetrics
from ingestion.universe import Placement
from ingestion.watch import Limits, WatchState, decide, stalled

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.1
HANDOFF_BUFFER_MAX = 500_000


def plan_slots(symbols: Sequence[str], types: Sequence[str], per_connection: int) -> list[list[str]]:
    """Stream names grouped into connections of at most ``per_connection`` streams."""
    names = [f"{symbol.lower()}@{kind}" for symbol in symbols for kind in types]
    return [names[i : i + per_connection] for i in range(0, len(names), per_connection)]


def keys_of(streams: Sequence[str]) -> list[Key]:
    return [(s.partition("@")[2], s.partition("@")[0].upper()) for s in streams]


@dataclass
class Slot:
    index: int
    streams: list[str]
    backoff: Backoff
    conn: Connection | None = None
    stable: bool = False
    keys: list[Key] = field(default_factory=list)
    fatal: str | None = None  # why this slot stopped retrying (Rule 6)


class SlotFailed(Exception):
    """A slot's connect error is not retryable (Rule 6); its task ends."""


class Supervisor:
    """Keeps every slot streaming; ``run`` returns only when cancelled."""

    def __init__(self, settings: Settings, effects: Effects, metrics: IngestionMetrics) -> None:
        self._s, self._fx, self._flow, self._metrics = settings, effects, effects.flow, metrics
        s = settings
        self._limits = Limits(s.ws_stall_timeout_s, s.ws_rollover_after_s, s.ws_stable_after_s)
        plan = plan_slots(settings.symbols, settings.stream_types, settings.ws_max_streams_per_connection)
        self.slots = [Slot(i, names, self._backoff(), keys=keys_of(names)) for i, names in enumerate(plan)]
        self._attempts = WindowBudget(*CONNECT_ATTEMPTS)
        self._slots_group: asyncio.TaskGroup | None = None

    def _backoff(self) -> Backoff:
        return Backoff(self._s.backoff_initial_s, self._s.backoff_max_s)

    async def run(self) -> None:
        log.info("%d streams over %d connection(s)", sum(len(s.streams) for s in self.slots), len(self.slots))
        async with asyncio.TaskGroup() as tg:
            self._slots_group = tg
            for slot in self.slots:
                tg.create_task(self._run_slot(slot), name=f"slot-{slot.index}")
            await asyncio.Event().wait()  # open until cancelled: a listing may add the first slot

    async def _run_slot(self, slot: Slot) -> None:
        try:
            await self._serve_slot(slot)
        except* SlotFailed:
            pass  # said so in _give_up; the other slots go on

    async def _serve_slot(self, slot: Slot) -> None:
        async with asyncio.TaskGroup() as readers:
            try:
                slot.conn = await self._connect(slot, readers)
                while True:
                    slot.conn = await self._keep(slot, slot.conn, readers)
            finally:
                if slot.conn is not None:
                    self._fx.retire(slot.conn)
                    await slot.conn.close()

    async def _keep(self, slot: Slot, conn: Connection, readers: asyncio.TaskGroup) -> Connection:
        """Watch ``conn`` until it must be replaced; return its replacement."""
        verdict, why = await self._watch(slot, conn)
        if verdict == "rollover":
            return await self._rollover(slot, conn, why, readers)
        self._fx.retire(conn)
        await conn.close()
        self._metrics.reconnects.inc()
        self._fx.interrupt(slot.keys, conn.last_frame_at, "reconnect")
        delay = slot.backoff.next_delay()
        log.warning("%s lost (%s); reconnecting in %.2f s", conn.id, why, delay)
        await asyncio.sleep(delay)
        return await self._connect(slot, readers)

    async def _watch(self, slot: Slot, conn: Connection) -> tuple[str, str]:
        """Poll ``watch.decide`` until ``conn`` must be replaced: ("replace" | "rollover", why)."""
        while True:
            state = WatchState(conn.ended, conn.last_frame_at, conn.opened_at,
                               self._flow.shutdown_noticed(conn.id), slot.stable)  # fmt: skip
            decision = decide(state, now_us(), time.monotonic(), self._limits)
            if decision.verdict in ("replace", "rollover"):
                return decision.verdict, decision.why
            if decision.verdict == "stable":
                slot.stable = True
                slot.backoff.reset()
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def _connect(self, slot: Slot, readers: asyncio.TaskGroup, buffering: bool = False) -> Connection:
        """Open a connection for ``slot``, retrying with backoff (Rules 1-2)."""
        while True:
            conn = Connection(slot.index, self._s.binance_ws_url, slot.streams, self._fx.on_frame,
                              self._s.ws_max_frame_bytes, self._fx.on_request)  # fmt: skip
            self._fx.attach(conn, buffering)
            try:
                await self._attempt(conn, readers)
            except ConnectError as exc:
                self._fx.retire(conn)
                if not is_retryable(exc):
                    self._give_up(slot, conn, exc)
                self._metrics.connects.labels("failed").inc()
                delay = max(slot.backoff.next_delay(), exc.retry_after or 0.0)
                log.warning("%s: connect failed (%s); retry in %.2f s", conn.id, exc, delay)
                await asyncio.sleep(delay)
                continue
            self._metrics.connects.labels("ok").inc()
            slot.stable = False
            log.info("%s: connected, %d streams subscribed%s", conn.id, len(conn.streams),
                     " (buffering for handoff)" if buffering else "")  # fmt: skip
            return conn

    def _give_up(self, slot: Slot, conn: Connection, exc: ConnectError) -> None:
        """Rule 6: say so three ways, then end the slot."""
        self._metrics.connects.labels("fatal").inc()
        slot.fatal = f"{exc} (fatal: not retried)"
        log.error("%s: connect failed with %s; the exchange's answer is final, not retrying slot %d",
                  conn.id, exc, slot.index)  # fmt: skip
        raise SlotFailed(slot.fatal) from exc

    async def _attempt(self, conn: Connection, readers: asyncio.TaskGroup) -> None:
        waited = await acquire(self._attempts, 1)
        if waited:
            log.warning("%s: waited %.1f s for the connection attempt budget", conn.id, waited)
        await conn.open()
        readers.create_task(conn.read(), name=conn.id)
        try:
            await conn.subscribe_rest()
        except ConnectError:
            await conn.close()
            raise

    async def _rollover(
        self, slot: Slot, old: Connection, why: str, readers: asyncio.TaskGroup
    ) -> Connection:
        """Make-before-break replacement of ``old`` (Rule 3)."""
        self._metrics.rollovers.labels(why).inc()
        log.info("%s: rollover (%s, age %.1f s): opening the replacement first", old.id, why, old.age())
        new = await self._connect(slot, readers, buffering=True)
        deadline = time.monotonic() + self._s.ws_handoff_timeout_s
        while not self._flow.overlapped(new.id) and old.ended is None and time.monotonic() < deadline:
            if self._flow.buffered(new.id) > HANDOFF_BUFFER_MAX:
                break
            await asyncio.sleep(0.02)
        caught_up = self._flow.overlapped(new.id)
        self._fx.retire(old)
        if not caught_up:
            contiguous = [k for k in slot.keys if k[0] != "bookTicker"]
            self._fx.interrupt(contiguous, old.last_frame_at, "rollover")
        released = self._fx.release(new)
        self._metrics.handoffs.labels("overlap" if caught_up else "no_overlap").inc()
        how = "after overlap" if caught_up else f"without overlap ({old.ended or 'timeout'})"
        log.info("%s -> %s: handoff %s, %d buffered events sequenced", old.id, new.id, how, released)
        await old.close()
        return new

    # -- universe seam (Rule 7) ------------------------------------------------------------
    def streams_by_slot(self) -> list[list[str]]:
        """The streams of every slot, in slot order (what ``universe.place`` plans from)."""
        return [list(slot.streams) for slot in self.slots]

    async def apply_placement(self, placement: Placement) -> None:
        """Apply a ``universe.Placement``: unsubscribe, subscribe, then open new slots."""
        for index, streams in placement.unsubscribe.items():
            await self._change_slot(self.slots[index], streams, subscribe=False)
        for index, streams in placement.subscribe.items():
            await self._change_slot(self.slots[index], streams, subscribe=True)
        for streams in placement.new_slots:
            slot = Slot(len(self.slots), list(streams), self._backoff(), keys=keys_of(streams))
            self.slots.append(slot)
            if self._slots_group is not None:
                self._slots_group.create_task(self._run_slot(slot), name=f"slot-{slot.index}")
            log.info("slot %d: new connection for %d streams", slot.index, len(streams))

    async def _change_slot(self, slot: Slot, streams: list[str], subscribe: bool) -> None:
        gone = set(streams)
        slot.streams = slot.streams + streams if subscribe else [s for s in slot.streams if s not in gone]
        slot.keys = keys_of(slot.streams)
        conn = slot.conn
        if conn is None or conn.ended is not None or not self._fx.attached(conn):
            return  # the next connection of the slot opens with slot.streams
        if subscribe:  # the flow accepts the new streams' frames from the SUBSCRIBE on
            self._fx.streams_changed(conn, [*conn.streams, *streams])
        try:
            await (conn.subscribe(streams) if subscribe else conn.unsubscribe(streams))
            self._fx.streams_changed(conn, conn.streams)
        except ConnectError as exc:  # the connection is going; its replacement uses slot.streams
            log.warning("%s: %s of %d streams failed: %s", conn.id,
                        "SUBSCRIBE" if subscribe else "UNSUBSCRIBE", len(streams), exc)  # fmt: skip
            return
        log.info("%s: %s %d streams (now %d)", conn.id, "subscribed" if subscribe else "unsubscribed",
                 len(streams), len(slot.streams))  # fmt: skip

    def connection_ages(self) -> list[tuple[str, float]]:
        return [(s.conn.id, s.conn.age()) for s in self.slots if s.conn is not None]

    def readiness(self) -> str | None:
        """None while every slot streams, else which do not."""
        stall_s, now = self._s.ws_stall_timeout_s, now_us()
        down = [
            str(s.index) for s in self.slots
            if s.fatal is None
            and (s.conn is None or s.conn.ended is not None or stalled(s.conn.last_frame_at, now, stall_s))
        ]  # fmt: skip
        reasons = [f"exchange: slot {s.index} refused: {s.fatal}" for s in self.slots if s.fatal]
        if down:
            reasons.append(f"exchange: connection slot(s) {', '.join(down)} not streaming")
        return "; ".join(reasons) or None
