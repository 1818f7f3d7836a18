"""A symbol's order book as price levels (pure): the simulator's ground truth for depth.

Owns the levels of both sides, what a taker order consumes from them, and the diff between two
states in Binance's depth form. Never reads a clock, never sends anything; update ids are set
by whoever changes the book (the synthetic generator, or a replayed recording).

Rule 1: prices and quantities are integers of 1e-8 units (``units.fmt8`` renders them); a level
        present in the book always has a positive quantity (setting 0 removes it).
Rule 2: bids are served best (highest) first, asks best (lowest) first.
Rule 3: a taker buy consumes asks from the lowest price up, a taker sell consumes bids from the
        highest down, never past its limit price; a level it empties leaves the book.
Rule 4: ``diff(before, after)`` lists exactly the levels whose quantity differs, each with its
        quantity in ``after`` (zero for a removed level), so applying it to ``before`` gives
        ``after`` (the property tests check this).
Rule 5: a :class:`Touched` from ``watch()`` collects every level whose quantity changed since it
        was last cleared, even when it changed back: ``changes(touched)`` is what Binance sends
        for an interval, so applying it to the book as of ANY moment inside the interval (a
        snapshot taken mid-interval) gives the book at its end. A plain state diff could not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from exchange_sim.units import fmt8, parse8

Side = Literal["bid", "ask"]
BID: Final[Side] = "bid"
ASK: Final[Side] = "ask"
Levels = list[tuple[int, int]]  # (price units, quantity units), in the side's order (Rule 2)
WireLevels = list[list[str]]  # Binance's [["price", "qty"], ...]


@dataclass
class Touched:
    """The prices of each side whose quantity changed since the last ``clear`` (Rule 5)."""

    bids: set[int] = field(default_factory=set)
    asks: set[int] = field(default_factory=set)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()


@dataclass
class OrderBook:
    """Both sides' levels (price units -> quantity units) and the last update id applied."""

    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    update_id: int = 0
    watchers: list[Touched] = field(default_factory=list, compare=False, repr=False)

    def watch(self) -> Touched:
        """A new collector of the levels changed from now on (Rule 5)."""
        touched = Touched()
        self.watchers.append(touched)
        return touched

    def changes(self, touched: Touched) -> tuple[Levels, Levels]:
        """The touched levels with their current quantity (zero when gone), in side order."""
        return (
            sorted(((p, self.bids.get(p, 0)) for p in touched.bids), reverse=True),
            sorted((p, self.asks.get(p, 0)) for p in touched.asks),
        )

    def side(self, side: Side) -> dict[int, int]:
        """The levels of ``side``."""
        return self.bids if side == BID else self.asks

    def set(self, side: Side, price: int, qty: int) -> None:
        """Set a level's quantity; zero removes it (Rule 1)."""
        if qty < 0 or price <= 0:
            raise ValueError(f"bad level {price} x {qty}")
        levels = self.side(side)
        if levels.get(price, 0) == qty:
            return
        if qty == 0:
            del levels[price]
        else:
            levels[price] = qty
        for touched in self.watchers:
            (touched.bids if side == BID else touched.asks).add(price)

    def add(self, side: Side, price: int, qty: int) -> None:
        """New resting liquidity at ``price``."""
        self.set(side, price, self.side(side).get(price, 0) + qty)

    def cancel(self, side: Side, price: int, qty: int) -> None:
        """Withdraw up to ``qty`` of the liquidity resting at ``price``."""
        self.set(side, price, max(self.side(side).get(price, 0) - qty, 0))

    def best(self, side: Side) -> tuple[int, int] | None:
        """The top level of ``side`` (price, qty), or None when the side is empty."""
        levels = self.side(side)
        if not levels:
            return None
        price = max(levels) if side == BID else min(levels)
        return price, levels[price]

    def take(self, buy: bool, qty: int, limit: int) -> Levels:
        """A taker order of ``qty`` up to price ``limit`` (Rule 3); returns the fills per level."""
        side: Side = ASK if buy else BID
        fills: Levels = []
        while qty > 0:
            top = self.best(side)
            if top is None or (top[0] > limit if buy else top[0] < limit):
                break
            price, resting = top
            filled = min(resting, qty)
            self.set(side, price, resting - filled)
            fills.append((price, filled))
            qty -= filled
        return fills

    def levels(self, side: Side, limit: int | None = None) -> Levels:
        """The levels of ``side`` in its order (Rule 2), at most ``limit`` of them."""
        items = sorted(self.side(side).items(), reverse=side == BID)
        return items if limit is None else items[:limit]

    def copy(self) -> OrderBook:
        """An independent copy (same levels, same update id, nobody watching it)."""
        return OrderBook(dict(self.bids), dict(self.asks), self.update_id)

    def apply(self, bids: WireLevels, asks: WireLevels, update_id: int) -> None:
        """Apply one depth update's ``b``/``a`` lists (strings; quantity 0 removes)."""
        for side, rows in ((BID, bids), (ASK, asks)):
            for price, qty in rows:
                self.set(side, parse8(price), parse8(qty))
        self.update_id = update_id


def diff_side(before: dict[int, int], after: dict[int, int], side: Side) -> Levels:
    """The levels of one side whose quantity changed, with their new quantity (Rule 4)."""
    changed = {p: q for p, q in after.items() if before.get(p) != q}
    changed.update({p: 0 for p in before if p not in after})
    return sorted(changed.items(), reverse=side == BID)


def diff(before: OrderBook, after: OrderBook) -> tuple[Levels, Levels]:
    """Bid and ask changes taking ``before`` to ``after`` (Rule 4)."""
    return diff_side(before.bids, after.bids, BID), diff_side(before.asks, after.asks, ASK)


def wire(levels: Levels) -> WireLevels:
    """Levels as Binance's lists of ``[price, qty]`` strings."""
    return [[fmt8(price), fmt8(qty)] for price, qty in levels]


def from_snapshot(last_update_id: int, bids: WireLevels, asks: WireLevels) -> OrderBook:
    """A book from a REST snapshot's (or a recording's) ``lastUpdateId``, ``bids`` and ``asks``."""
    book = OrderBook(update_id=last_update_id)
    book.apply(bids, asks, last_update_id)
    return book
