"""Synthetic market: quotes and taker orders around a moving mid-price (pure).

Owns the shape of generated data; never sleeps, never reads the clock (``now_us`` comes in).
The mid-price's moods (clustered volatility, trends, reversals) live in exchange_sim.dynamics.

Rule 1: prices and quantities are integers of 1e-8 units, multiples of the symbol's tick and
        lot, rendered with :func:`fmt8` ("67012.35000000"): no float formatting anywhere.
Rule 2: trade ids ``t`` are consecutive; each aggTrade covers the consecutive trades of one
        taker order at one price, so ``f == previous l + 1`` and ``a`` is consecutive.
Rule 3: bookTicker ``u`` strictly increases (with jumps, as on the real exchange), and the
        quoted bid stays below the ask; the spread is one or two ticks in a calm market and
        widens with volatility (a fast market).
Rule 4: trade times never decrease and never exceed the event time.
Rule 5: the same seed and symbol give the same sequence of values (times aside).
Rule 6: with ``max_trades`` set, exactly that many trades are generated, the aggTrade covering
        the last ones is emitted, then one final bookTicker, then nothing (``exhausted``).
Rule 8: with ``--depth`` (``book=True``; off by default, as it costs about half the generator's
        speed), each symbol keeps an order book (exchange_sim.book) whose top is always the quoted bid
        and ask (bookTicker shows it), with ``DEPTH_LEVELS`` levels a side from a second random
        stream (so the quotes, trades and ids above stay what they were) on a fixed grid of about
        0.5 bp (a tick-spaced band would be rebuilt on every step of a BTC-like mid, which moves
        hundreds of ticks a step); each fill takes its quantity from the opposite side up to its
        price; every change a step makes is stamped with the step's bookTicker ``u``, so depth
        events (``depth_due``) and bookTicker share one update-id sequence.
Rule 7: trade sizes are heavy-tailed: most fills are retail-sized, a few percent are drawn
        from a Pareto law on notional, so that on BTCUSDT at the demo's rate a fill worth over
        100,000 USDT comes every minute or two; such a fill moves the mid and stirs volatility.
"""

from __future__ import annotations

import random

from exchange_sim.book import ASK, BID, OrderBook
from exchange_sim.depth import DEPTH_KINDS, DepthStream
from exchange_sim.dynamics import MidModel
from exchange_sim.events import Event, agg_event, book_event, trade_event
from exchange_sim.market import SymbolSpec
from exchange_sim.units import fmt8

TAKER_SHARE = 0.3  # share of steps that are taker orders; the rest are quote updates
RETAIL_MEAN_LOTS = 60  # mean size of an ordinary fill, in lots
TAIL_SHARE = 0.04  # share of fills drawn from the notional tail (Rule 7)
TAIL_MIN_NOTIONAL = 2_000.0  # Pareto scale of the tail, in quote currency
TAIL_ALPHA = 1.1  # Pareto index of the tail: P(notional > x) = (TAIL_MIN_NOTIONAL / x) ** alpha
TAIL_MAX_NOTIONAL = 3_000_000.0
IMPACT_NOTIONAL = 50_000.0  # fills from this notional up move the mid (Rule 7)
UNITS = 10**8
MAX_EXTRA_SPREAD_TICKS = 80  # a fast market's spread stays within ~80 ticks of the calm one
DEPTH_LEVELS = 10  # levels kept on each side of the book below the top (Rule 8)
DEPTH_GRID = 20_000  # deep levels sit on multiples of about mid / DEPTH_GRID (at least one tick)


class SyntheticSymbol:
    """Generator of one symbol's trade, aggTrade and bookTicker events."""

    def __init__(self, spec: SymbolSpec, seed: int, max_trades: int | None, book: bool = False) -> None:
        self.spec = spec
        self.keeps_book = book  # Rule 8 (--depth): off, the book stays empty and no depth is made
        self.rng = random.Random(f"{seed}:{spec.symbol}")  # noqa: S311 - simulation, not security
        self.model = MidModel(self.rng, spec.start_price)
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
        self._impact = 0.0  # strength of the largest fill of the current taker order
        self._filled = 0  # quantity of the last _fills call, taken from the book (Rule 8)
        self.taken: list[tuple[int, int]] = []  # (price, qty) the last taker order took from the book
        self.depth_rng = random.Random(f"{seed}:{spec.symbol}:depth")  # noqa: S311 - Rule 8
        self.spacing = spec.tick * max(1, spec.start_price // spec.tick // DEPTH_GRID)
        self.book = OrderBook(update_id=self.next_u)
        if book:
            self._sync_book()
        self.depth_streams = [DepthStream(kind, self.book) for kind in DEPTH_KINDS]

    def _qty(self) -> int:
        """A retail-sized quantity: a whole number of lots, roughly geometric."""
        return self.spec.lot * (int(self.rng.expovariate(1 / RETAIL_MEAN_LOTS)) + 1)

    def _fill_qty(self, price: int) -> int:
        """A fill's quantity (Rule 7): retail-sized, or from the Pareto tail of notional."""
        if self.rng.random() >= TAIL_SHARE:
            return self._qty()
        notional = min(TAIL_MIN_NOTIONAL * self.rng.paretovariate(TAIL_ALPHA), TAIL_MAX_NOTIONAL)
        if notional >= IMPACT_NOTIONAL:
            self._impact = max(self._impact, (notional / IMPACT_NOTIONAL) ** 0.5)
        lots = int(notional * UNITS * UNITS / price) // self.spec.lot  # qty units = notional / price
        return self.spec.lot * max(lots, 1)

    def step(self, now_us: int) -> list[Event]:
        """Advance the market by one step: a taker order or a quote update."""
        if self.exhausted:
            return []
        self.model.advance()
        self._requote()
        if self.rng.random() < TAKER_SHARE:
            return self._taker_order(now_us)
        return [self._quote_update()]

    def _levels(self) -> int:
        """Price levels one taker order sweeps: more in a fast market."""
        roll = self.rng.random() / max(1.0, self.model.vol_ratio)
        return 3 if roll < 0.03 else 2 if roll < 0.12 else 1

    def _taker_order(self, now_us: int) -> list[Event]:
        buy = self.rng.random() < self.model.buy_share()
        levels = self._levels()
        events: list[Event] = []
        self._impact = 0.0
        self.taken = []
        for level in range(levels):
            price = self.ask + level * self.spec.tick if buy else self.bid - level * self.spec.tick
            price = max(price, self.spec.tick)
            fills = min(1 + int(self.rng.expovariate(1 / 1.2)), 6)
            if self.trades_left is not None:
                fills = min(fills, self.trades_left)
                self.trades_left -= fills
            if fills:
                if not events and self.keeps_book:
                    self._sync_book()  # the order meets the book as quoted now
                events.extend(self._fills(price, fills, buy, now_us))
                if self.keeps_book:
                    self.taken += self.book.take(buy, self._filled, price)
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
            qty = self._fill_qty(price)
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
        self._filled = total
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
        """The book after an order consumed ``levels`` levels: large fills move the mid."""
        if self._impact > 0:
            self.model.impact(buy, self._impact)
        self._requote()
        if buy:
            self.ask_qty = self._qty()
        else:
            self.bid_qty = self._qty()

    def _quote_update(self) -> Event:
        if self.rng.random() < 0.5:
            self.bid_qty = self._qty()
        else:
            self.ask_qty = self._qty()
        return self._book()

    def _spread_ticks(self) -> int:
        """One or two ticks when calm; wider, and more so the faster the market (Rule 3)."""
        base = self.rng.choice((1, 1, 1, 2))
        excess = max(0.0, self.model.vol_ratio - 1.5)
        return base + min(int(self.rng.expovariate(1.0) * excess), MAX_EXTRA_SPREAD_TICKS)

    def _requote(self) -> None:
        """Best bid and ask on the tick grid around the model's mid (Rule 1, Rule 3)."""
        tick, spread = self.spec.tick, self._spread_ticks()
        mid_ticks = int(self.model.mid / tick)
        self.bid = max(mid_ticks - spread // 2, 1) * tick
        self.ask = self.bid + spread * tick

    def _depth_qty(self) -> int:
        """A resting quantity deeper in the book: a few times a retail fill."""
        return self.spec.lot * (int(self.depth_rng.expovariate(1 / (4 * RETAIL_MEAN_LOTS))) + 1)

    def _sync_book(self) -> None:
        """Make the book's top the quotes, keep DEPTH_LEVELS grid levels a side, churn one (Rule 8)."""
        book, step = self.book, self.spacing
        low, high = self.bid - DEPTH_LEVELS * step, self.ask + DEPTH_LEVELS * step
        for price in [p for p in book.bids if p > self.bid or p <= low]:
            book.set(BID, price, 0)
        for price in [p for p in book.asks if p < self.ask or p >= high]:
            book.set(ASK, price, 0)
        book.set(BID, self.bid, self.bid_qty)
        book.set(ASK, self.ask, self.ask_qty)
        bid_grid, ask_grid = self.bid // step * step, -(-self.ask // step) * step
        for k in range(1, DEPTH_LEVELS):
            for side, price in ((BID, bid_grid - k * step), (ASK, ask_grid + k * step)):
                if price > 0 and price not in book.side(side):
                    book.set(side, price, self._depth_qty())
        k, side = self.depth_rng.randrange(1, DEPTH_LEVELS), BID if self.depth_rng.random() < 0.5 else ASK
        price = bid_grid - k * step if side == BID else ask_grid + k * step
        if price > 0 and self.depth_rng.random() < 0.5:
            book.add(side, price, self._depth_qty())
        elif price > 0:  # cancel half the level (rounded to lots), or all of a one-lot level
            resting, lot = book.side(side).get(price, 0), self.spec.lot
            book.cancel(side, price, resting // 2 // lot * lot or resting)

    def depth_due(self, now_us: int, force: bool = False) -> list[Event]:
        """The depthUpdate events due at ``now_us`` on each speed (exchange_sim.depth)."""
        if not self.keeps_book:
            return []
        made = (stream.due(self.book, self.spec.symbol, now_us, force) for stream in self.depth_streams)
        return [event for event in made if event is not None]

    def _book(self) -> Event:
        self.next_u += self.rng.randrange(1, 24)
        if self.keeps_book:
            self._sync_book()
            self.book.update_id = self.next_u
        body = {
            "u": self.next_u,
            "s": self.spec.symbol,
            "b": fmt8(self.bid),
            "B": fmt8(self.bid_qty),
            "a": fmt8(self.ask),
            "A": fmt8(self.ask_qty),
        }
        return book_event(self.spec.symbol, body)
