"""The one market every connection and every REST call sees (pure).

Owns, per symbol: the trade and aggTrade history REST serves, the stream accounting
(`/control/stats`), and the symbol's exchangeInfo specification. It never sends anything:
the hub decides what reaches which connection and reports back through ``mark_*``.

Rule 1: every generated event is recorded here exactly once, before any connection sees it,
        so REST always holds at least what a stream delivered.
Rule 2: ``generated`` counts events recorded; ``sent`` counts events written to at least one
        connection; ``dropped`` counts events a drop fault withheld from every connection.
Rule 3: a symbol's ``status`` is what exchangeInfo reports (TRADING, or BREAK once delisted);
        only TRADING symbols are generated. Listing and delisting happen at run time.
Rule 5: depth events (exchange_sim.depth) are accounted apart, in ``depth`` (their own stats key),
        so ``stats()`` per symbol keeps exactly the trade, aggTrade and bookTicker streams. ``book``
        is the live book ``/api/v3/depth`` serves (synthetic), ``snapshot`` a replayed recording's
        latest inline snapshot (replay).
Rule 4: a symbol's ``activity`` scales the generation rate (``--rate`` x activity events/s): 1.0
        unless a whole market (``exchange_sim.whole_market``) gave it its share.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from exchange_sim.book import OrderBook
from exchange_sim.depth import DEPTH_KINDS, DepthTruth
from exchange_sim.events import AGG_TRADE, BOOK_TICKER, KINDS, TRADE, Event
from exchange_sim.history import IdSeries
from exchange_sim.units import fmt8

TRADING_STATUS, DELISTED_STATUS = "TRADING", "BREAK"
QUOTE_ASSETS = ("USDT", "FDUSD", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")


@dataclass(frozen=True)
class SymbolSpec:
    """Static trading rules of a symbol; prices and sizes in integer 1e-8 units."""

    symbol: str
    start_price: int
    tick: int
    lot: int

    @property
    def base_quote(self) -> tuple[str, str]:
        """Split the symbol into base and quote asset by the known quote suffixes."""
        for quote in QUOTE_ASSETS:
            if self.symbol.endswith(quote) and len(self.symbol) > len(quote):
                return self.symbol[: -len(quote)], quote
        return self.symbol[:-3], self.symbol[-3:]


KNOWN_SPECS = {
    "BTCUSDT": SymbolSpec("BTCUSDT", 6_701_235_000_000, 1_000_000, 1_000),
    "ETHUSDT": SymbolSpec("ETHUSDT", 350_012_000_000, 1_000_000, 10_000),
    "BNBUSDT": SymbolSpec("BNBUSDT", 60_035_000_000, 1_000_000, 100_000),
    "SOLUSDT": SymbolSpec("SOLUSDT", 15_012_000_000, 1_000_000, 100_000),
    "TRXUSDT": SymbolSpec("TRXUSDT", 23_120_000, 10_000, 10_000_000),
    "DOTUSDT": SymbolSpec("DOTUSDT", 435_000_000, 100_000, 1_000_000),
}


def spec_for(symbol: str) -> SymbolSpec:
    """The known spec of ``symbol``, or a generic 100.00 / 0.01 / 0.001 one."""
    return KNOWN_SPECS.get(symbol, SymbolSpec(symbol, 10_000_000_000, 1_000_000, 100_000))


@dataclass
class StreamStats:
    """Accounting of one symbol's one stream."""

    generated: int = 0
    sent: int = 0
    dropped: int = 0
    duplicated: int = 0
    first_id: int | None = None
    last_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON shape served by ``/control/stats``."""
        return {
            "generated": self.generated,
            "sent": self.sent,
            "dropped": self.dropped,
            "duplicated": self.duplicated,
            "first_id": self.first_id,
            "last_id": self.last_id,
        }


BOOK_RECORD_CAP = 1_000_000  # bookTickers kept per symbol for /control/book_tickers


@dataclass
class BookRecord:
    """Every bookTicker generated for one symbol (update id, wall-clock µs): the ground truth a test
    compares the stored rows and the recorded loss windows with. Past BOOK_RECORD_CAP nothing more
    is kept and ``complete`` turns false."""

    update_ids: list[int] = field(default_factory=list)
    times_us: list[int] = field(default_factory=list)
    complete: bool = True

    def add(self, update_id: int, time_us: int) -> None:
        if len(self.update_ids) >= BOOK_RECORD_CAP:
            self.complete = False
            return
        self.update_ids.append(update_id)
        self.times_us.append(time_us)


@dataclass
class SymbolState:
    """History and accounting of one symbol."""

    spec: SymbolSpec
    trades: IdSeries
    aggs: IdSeries
    stats: dict[str, StreamStats] = field(default_factory=lambda: {k: StreamStats() for k in KINDS})
    book_tickers: BookRecord = field(default_factory=BookRecord)
    done: bool = False
    status: str = TRADING_STATUS
    activity: float = 1.0  # Rule 4
    depth: DepthTruth = field(default_factory=DepthTruth)  # Rule 5
    book: OrderBook | None = None
    snapshot: OrderBook | None = None


class Market:
    """All symbols' history and accounting."""

    def __init__(self, symbols: list[str], history_cap: int, depth_record: int = 6000) -> None:
        self.history_cap = history_cap
        self.depth_record = depth_record
        self.symbols: dict[str, SymbolState] = {}
        for symbol in symbols:
            self.ensure(symbol)

    def ensure(self, symbol: str) -> SymbolState:
        """The state of ``symbol``, created on first sight (replay discovers symbols)."""
        state = self.symbols.get(symbol)
        if state is None:
            cap = self.history_cap
            state = SymbolState(spec_for(symbol), IdSeries(cap), IdSeries(cap))
            state.depth.cap = self.depth_record
            self.symbols[symbol] = state
        return state

    def add(self, spec: SymbolSpec, activity: float, trading: bool) -> None:
        """Register a symbol of a whole market with its own rules and share of activity (Rule 4)."""
        cap = self.history_cap
        state = SymbolState(spec, IdSeries(cap), IdSeries(cap), activity=activity)
        state.depth.cap = self.depth_record
        state.status = TRADING_STATUS if trading else DELISTED_STATUS
        self.symbols[spec.symbol] = state

    def list_symbol(self, symbol: str) -> None:
        """List ``symbol`` (again): TRADING from now on (Rule 3)."""
        state = self.ensure(symbol)
        state.status = TRADING_STATUS

    def delist(self, symbol: str) -> None:
        """Delist ``symbol``: exchangeInfo shows it as BREAK and nothing more is generated."""
        self.symbols[symbol].status = DELISTED_STATUS

    def trading(self) -> list[str]:
        """The symbols being generated, in listing order."""
        return [name for name, state in self.symbols.items() if state.status == TRADING_STATUS]

    def record(self, event: Event) -> None:
        """Account for a generated event and keep it in the REST history."""
        state = self.ensure(event.symbol)
        if event.kind in DEPTH_KINDS:
            state.depth.record(event)  # Rule 5
            return
        stats = state.stats[event.kind]
        stats.generated += 1
        if stats.first_id is None:
            stats.first_id = event.ident
        stats.last_id = event.ident
        body = event.body
        row: tuple[Any, ...]
        if event.kind == TRADE:
            row = (body["t"], body["p"], body["q"], None, event.time_us, body["m"], body.get("M", True))
            state.trades.append(event.ident, event.time_us, row)
        elif event.kind == AGG_TRADE:
            row = (
                body["a"],
                body["p"],
                body["q"],
                body["f"],
                body["l"],
                event.time_us,
                body["m"],
                body.get("M", True),
            )
            state.aggs.append(event.ident, event.time_us, row)
        elif event.kind == BOOK_TICKER:
            state.book_tickers.add(event.ident, time.time_ns() // 1000)  # when it was generated

    def mark_sent(self, event: Event) -> None:
        """The event reached at least one connection."""
        state = self.symbols[event.symbol]
        stats = state.stats.get(event.kind)
        if stats is None:
            state.depth.mark_sent(event)
        else:
            stats.sent += 1

    def mark_dropped(self, event: Event) -> None:
        """A drop fault withheld the event from every connection."""
        state = self.symbols[event.symbol]
        stats = state.stats.get(event.kind)
        if stats is None:
            state.depth.mark_dropped(event)
        else:
            stats.dropped += 1

    def mark_duplicated(self, event: Event) -> None:
        """A duplicates fault sent the event twice."""
        self.symbols[event.symbol].stats[event.kind].duplicated += 1

    def all_done(self) -> bool:
        """True when every symbol finished generating."""
        return bool(self.symbols) and all(s.done for s in self.symbols.values())

    def stats(self) -> dict[str, Any]:
        """Per symbol and stream accounting, JSON-ready."""
        return {
            name: {kind: st.as_dict() for kind, st in state.stats.items()}
            for name, state in self.symbols.items()
        }


    def attach_book(self, symbol: str, book: OrderBook) -> None:
        """Serve ``book`` as the symbol's live book; the depth record starts from it (Rule 5)."""
        state = self.ensure(symbol)
        state.book = book
        state.depth.begin(book)

    def set_snapshot(self, symbol: str, snapshot: OrderBook) -> None:
        """A replayed recording's inline snapshot: served by REST; the first one starts the record."""
        state = self.ensure(symbol)
        state.snapshot = snapshot
        state.depth.begin(snapshot)

    def depth_stats(self) -> dict[str, Any]:
        """Per symbol and speed depth accounting, for symbols that made depth events."""
        return {
            name: state.depth.as_dict()
            for name, state in self.symbols.items()
            if state.depth.stats[DEPTH_KINDS[0]].generated or state.depth.stats[DEPTH_KINDS[1]].generated
        }


def tick_string(units: int) -> str:
    """Render a 1e-8 unit count for exchangeInfo filters."""
    return fmt8(units)


__all__ = [
    "BOOK_TICKER", "DELISTED_STATUS", "TRADING_STATUS", "Market", "StreamStats", "SymbolSpec",
    "SymbolState", "spec_for", "tick_string",
]
