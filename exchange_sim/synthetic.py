"""Synthetic market: a per-symbol random walk of quotes and taker orders (pure).

Owns the shape of generated data; never sleeps, never reads the clock (``now_us`` comes in).

Rule 1: prices and quantities are integers of 1e-8 units, multiples of the symbol's tick and
        lot, rendered with :func:`fmt8` ("67012.35000000"): no float formatting anywhere.
Rule 2: trade ids ``t`` are consecutive; each aggTrade covers the consecutive trades of one
        taker order at one price, so ``f == previous l + 1`` and ``a`` is consecutive.
Rule 3: bookTicker ``u`` strictly increases (with jumps, as on the real exchange), and the
        quoted bid stays below the ask.
Rule 4: trade times never decrease and never exceed the event time.
Rule 5: the same seed and symbol give the same sequence of values (times aside).
Rule 6: with ``max_trades`` set, exactly that many trades are generated, the aggTrade covering
        the last ones is emitted, then one final bookTicker, then nothing (``exhausted``).
"""

from __future__ import annotations

import random

from exchange_sim.events import Event, agg_event, book_event, trade_event
from exchange_sim.market import SymbolSpec
from exchange_sim.units import fmt8

TAKER_SHARE = 0.3  # share of steps that are taker orders; the rest are quote updates


class SyntheticSymbol:
    """Random-walk generator of one symbol's trade, aggTrade and bookTicker events."""

    def __init__(self, spec: SymbolSpec, seed: int, max_trades: int | None) -> None:
        self.spec = spec
        self.rng = random.Random(f"{seed}:{spec.symbol}")  # noqa: S311 - simulation, not security
        self.bid = spec.start_price
        self.ask = spec.start_price + spec.tick
        self.bid_qty = self._qty()
        self.ask_qty = self._qty()
        self.next_t = self.rng.randrange(10**8, 4 * 10**9)
        self.next_a = self.next_t * 2 // 3
        self.next_u = self.rng.randrange(10**10, 6 * 10**10)
        self.last_trade_us = 0
        self.trades_left = max_trades
        self.exhausted = max_trades == 0

    def _qty(self) -> int:
        """A random quantity: a whole number of lots, roughly geometric."""
        return self.spec.lot * (int(self.rng.expovariate(1 / 60)) + 1)

    def step(self, now_us: int) -> list[Event]:
        """Advance the market by one step: a taker order or a quote update."""
        if self.exhausted:
            return []
        if self.rng.random() < TAKER_SHARE:
            return self._taker_order(now_us)
        return [self._quote_update()]

    def _taker_order(self, now_us: int) -> list[Event]:
        buy = self.rng.random() < 0.5
        roll = self.rng.random()
        levels = 3 if roll < 0.03 else 2 if roll < 0.12 else 1
        events: list[Event] = []
        for level in range(levels):
            price = self.ask + level * self.spec.tick if buy else self.bid - level * self.spec.tick
            fills = min(1 + int(self.rng.expovariate(1 / 1.2)), 6)
            if self.trades_left is not None:
                fills = min(fills, self.trades_left)
                self.trades_left -= fills
            if fills:
                events.extend(self._fills(price, fills, buy, now_us))
            if self.trades_left == 0:
                self.exhausted = True
                break
        self._after_sweep(buy, levels)
        events.append(self._book())
        return events

    def _fills(self, price: int, count: int, buy: bool, now_us: int) -> list[Event]:
        """``count`` trades at one price and the aggTrade covering them."""
        symbol, ptxt, maker = self.spec.symbol, fmt8(price), not buy
        trade_us = max(self.last_trade_us, now_us - self.rng.randrange(0, 1500))
        self.last_trade_us = trade_us
        event_ms = now_us // 1000
        events, total, first = [], 0, self.next_t
        for _ in range(count):
            qty = self._qty()
            total += qty
            body = {
                "e": "trade",
                "E": event_ms,
                "s": symbol,
                "t": self.next_t,
                "p": ptxt,
                "q": fmt8(qty),
                "T": trade_us // 1000,
                "m": maker,
                "M": True,
            }
            events.append(trade_event(symbol, body, now_us, trade_us))
            self.next_t += 1
        agg = {
            "e": "aggTrade",
            "E": event_ms,
            "s": symbol,
            "a": self.next_a,
            "p": ptxt,
            "q": fmt8(total),
            "f": first,
            "l": self.next_t - 1,
            "T": trade_us // 1000,
            "m": maker,
            "M": True,
        }
        self.next_a += 1
        events.append(agg_event(symbol, agg, now_us, trade_us))
        return events

    def past_fill(self) -> tuple[int, bool, list[int], int, int]:
        """One taker order at one price for a back-dated archive day (``--archive-days``).

        Advances the same ids and book as live steps, so live generation continues the ids of
        the seeded days. Returns integers for speed: (price units, buyer is maker, quantity
        units of each trade, first trade id, aggregate id).
        """
        buy = self.rng.random() < 0.5
        price = self.ask if buy else self.bid
        fills = min(1 + int(self.rng.expovariate(1 / 1.2)), 6)
        qtys = [self._qty() for _ in range(fills)]
        first, agg = self.next_t, self.next_a
        self.next_t += fills
        self.next_a += 1
        self._after_sweep(buy, 1)
        return price, not buy, qtys, first, agg

    def _after_sweep(self, buy: bool, levels: int) -> None:
        """Move the touched side of the book after an order consumed ``levels`` levels."""
        tick = self.spec.tick
        if buy:
            self.ask += (levels - 1) * tick + (tick if self.rng.random() < 0.3 else 0)
            self.ask_qty = self._qty()
        else:
            self.bid -= (levels - 1) * tick + (tick if self.rng.random() < 0.3 else 0)
            self.bid = max(self.bid, tick)
            self.bid_qty = self._qty()
        self._keep_spread()

    def _quote_update(self) -> Event:
        roll, tick = self.rng.random(), self.spec.tick
        if roll < 0.6:
            if self.rng.random() < 0.5:
                self.bid_qty = self._qty()
            else:
                self.ask_qty = self._qty()
        else:
            move = tick if self.rng.random() < 0.5 else -tick
            self.bid = max(self.bid + move, tick)
            self.ask = self.bid + tick * self.rng.choice((1, 1, 1, 2))
        self._keep_spread()
        return self._book()

    def _keep_spread(self) -> None:
        tick = self.spec.tick
        if self.ask - self.bid > 3 * tick:
            self.bid = self.ask - tick
        if self.ask <= self.bid:
            self.ask = self.bid + tick

    def _book(self) -> Event:
        self.next_u += self.rng.randrange(1, 24)
        body = {
            "u": self.next_u,
            "s": self.spec.symbol,
            "b": fmt8(self.bid),
            "B": fmt8(self.bid_qty),
            "a": fmt8(self.ask),
            "A": fmt8(self.ask_qty),
        }
        return book_event(self.spec.symbol, body)
