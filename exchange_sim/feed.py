"""Generation loops: drive the synthetic generators or replay readers into market and hub.

Owns pacing only: when events are made, never what they contain (synthetic.py, replay.py)
nor who receives them (hub.py).

Rule 1: each event is recorded in the market, then published, in one step: one global order.
Rule 2: generation waits while paused; paced replay shifts its clock by the paused time, and
        synthetic generation does not catch up on time spent paused.
Rule 3: unpaced work (replay at speed 0) yields to the event loop every ``BATCH`` events and
        waits for connections' buffers to drain, so it never starves sockets or memory.
Rule 4: ``--start-delay`` set: nothing is generated before the first subscription plus delay.
Rule 5: synthetic generation follows the market's TRADING symbols round by round: a symbol
        listed at run time starts generating at the next round, a delisted one stops.
Rule 6: a symbol generates ``--rate`` x its ``activity`` events/s (market Rule 4). A round visits
        every symbol, so rounds come less often as the market grows (``round_s``): the cost of
        the loop stays bounded and each symbol's rate is unchanged (credit accrues by time).
Rule 7: after each symbol's steps of a round, its due depthUpdate events follow (100 ms and 1000 ms
        boundaries, exchange_sim.depth); a symbol that stops generating flushes its last changes.
Rule 8: replay plays recorded depthUpdate events like the others and hands each inline REST
        snapshot to the market as it reaches it (/api/v3/depth serves the latest one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator

from exchange_sim.config import SimConfig
from exchange_sim.events import TRADE, Event
from exchange_sim.hub import Hub
from exchange_sim.market import Market
from exchange_sim.replay import Record, RecordedSnapshot, read_with_depth
from exchange_sim.synthetic import SyntheticSymbol

log = logging.getLogger(__name__)
TICK = 0.005  # seconds between synthetic generation rounds (at most ROUND_SYMBOLS symbols)
ROUND_SYMBOLS = 20  # Rule 6: past this many symbols, a round's period grows with their number
BATCH = 2000  # events between yields when unpaced


def round_s(symbols: int) -> float:
    """Seconds between two generation rounds over ``symbols`` symbols (Rule 6)."""
    return TICK * max(1.0, symbols / ROUND_SYMBOLS)


class Feed:
    """The single producer of market events."""

    def __init__(
        self,
        cfg: SimConfig,
        market: Market,
        hub: Hub,
        running: asyncio.Event,
        generators: dict[str, SyntheticSymbol] | None = None,
    ) -> None:
        self.cfg = cfg
        self.generators = generators or {}
        self.market = market
        self.hub = hub
        self.running = running
        self.started = asyncio.Event()

    def emit(self, event: Event) -> None:
        """Record then publish one event."""
        self.market.record(event)
        self.hub.publish(event)

    async def run(self) -> None:
        """Wait for the start condition, then generate until the source is exhausted."""
        if self.cfg.start_delay is not None:
            await self.hub.first_subscription.wait()
            await asyncio.sleep(self.cfg.start_delay)
        self.started.set()
        if self.cfg.source == "replay":
            await self._replay()
        else:
            await self._synthetic()
        for state in self.market.symbols.values():
            state.done = True
        log.info("generation finished")

    def _burst(self, elapsed: float) -> float:
        cfg = self.cfg
        if cfg.burst_every > 0 and elapsed % cfg.burst_every < cfg.burst_duration:
            return cfg.burst_factor
        return 1.0

    async def _synthetic(self) -> None:
        cfg, loop = self.cfg, asyncio.get_running_loop()
        gens: dict[str, SyntheticSymbol] = dict(self.generators)  # seeded by --archive-days
        for symbol, seeded in gens.items() if cfg.depth else ():
            self.market.attach_book(symbol, seeded.book)
        credit: dict[str, float] = {}
        start = last = loop.time()
        while not gens or any(not g.exhausted for g in gens.values()):
            if not self.running.is_set():
                await self.running.wait()
                last = loop.time()
            now = loop.time()
            burst = cfg.rate * self._burst(now - start)
            trading = self.market.trading()
            for symbol in trading:  # Rule 5
                state = self.market.symbols[symbol]
                gen = gens.get(symbol)
                if gen is None:
                    gen = gens[symbol] = SyntheticSymbol(state.spec, cfg.seed, cfg.max_trades, cfg.depth)
                    if cfg.depth:
                        self.market.attach_book(symbol, gen.book)
                rate = burst * state.activity  # Rule 6
                credit[symbol] = min(credit.get(symbol, 0.0) + rate * (now - last), max(rate * 0.25, 50.0))
                self._generate(gen, symbol, credit)
                if gen.exhausted:
                    state.done = True
            last = now
            await asyncio.sleep(round_s(len(trading)))

    def _generate(self, gen: SyntheticSymbol, symbol: str, credit: dict[str, float]) -> None:
        while credit[symbol] >= 1.0 and not gen.exhausted:
            events = gen.step(time.time_ns() // 1000)
            credit[symbol] -= len(events)
            for event in events:
                self.emit(event)
        for event in gen.depth_due(time.time_ns() // 1000, force=gen.exhausted):  # Rule 7
            self.emit(event)

    async def _replay(self) -> None:
        cfg = self.cfg
        wanted = set(cfg.symbols) if cfg.symbols is not None else None
        trades: Counter[str] = Counter()
        default_symbol = cfg.symbols[0] if cfg.symbols else None
        for path in cfg.replay_files:
            log.info("replaying %s", path)
            await self._replay_file(read_with_depth(path, default_symbol), wanted, trades)

    async def _replay_file(
        self, records: Iterator[Record], wanted: set[str] | None, trades: Counter[str]
    ) -> None:
        cfg, loop = self.cfg, asyncio.get_running_loop()
        origin_clock: int | None = None
        origin_wall = loop.time()
        since_yield = 0
        for record in records:
            if isinstance(record, RecordedSnapshot):  # REST serves it from now on (replay Rule 4)
                if record.symbol is not None and (wanted is None or record.symbol in wanted):
                    self.market.set_snapshot(record.symbol, record.book)
                continue
            event = record.event
            if (wanted is not None and event.symbol not in wanted) or self._capped(event, trades):
                continue
            if not self.running.is_set():
                paused_at = loop.time()
                await self.running.wait()
                origin_wall += loop.time() - paused_at
            if origin_clock is None:
                origin_clock, origin_wall = record.clock_us, loop.time()
            since_yield += 1
            if cfg.speed > 0:
                delay = origin_wall + (record.clock_us - origin_clock) / 1e6 / cfg.speed - loop.time()
                if delay > 0.001 or since_yield >= BATCH:
                    await asyncio.sleep(max(delay, 0.0))
                    since_yield = 0
            elif since_yield >= BATCH:
                await self.hub.drained()
                await asyncio.sleep(0)
                since_yield = 0
            self.emit(event)

    def _capped(self, event: Event, trades: Counter[str]) -> bool:
        """True once ``--max-trades`` trades of the event's symbol were replayed."""
        cap = self.cfg.max_trades
        if cap is None:
            return False
        if trades[event.symbol] >= cap:
            return True
        if event.kind == TRADE:
            trades[event.symbol] += 1
        return False
