"""A market worth looking at: clustered volatility, trends, whales, spreads that widen (pure).

Ten demo minutes are ~30,000 events per symbol (the launcher's --rate 50); each test runs
that many steps of the generator, so it sees what a demo user sees, in about a second.
"""

from __future__ import annotations

import statistics
from decimal import Decimal
from itertools import pairwise

import pytest

from exchange_sim.events import BOOK_TICKER, TRADE
from exchange_sim.market import spec_for
from exchange_sim.synthetic import SyntheticSymbol

DEMO_EVENTS_10_MIN = 50 * 600
WINDOW = 250  # book updates per window (~7 s of demo time)


Books = list[tuple[Decimal, Decimal]]


def books_and_trades(symbol: str, seed: int) -> tuple[Books, list[tuple[int, Decimal]]]:
    """(bid, ask) of every bookTicker and (event index, notional) of every trade over 10 demo minutes."""
    gen = SyntheticSymbol(spec_for(symbol), seed, None)
    books: list[tuple[Decimal, Decimal]] = []
    trades: list[tuple[int, Decimal]] = []
    count = 0
    while count < DEMO_EVENTS_10_MIN:
        for event in gen.step(0):
            count += 1
            if event.kind == BOOK_TICKER:
                books.append((Decimal(event.body["b"]), Decimal(event.body["a"])))
            elif event.kind == TRADE:
                trades.append((count, Decimal(event.body["p"]) * Decimal(event.body["q"])))
    return books, trades


def windows(books: Books) -> list[tuple[float, float]]:
    """Per window: (realized volatility of mid log-changes, mean spread in ticks-free units)."""
    out = []
    for i in range(0, len(books) - WINDOW, WINDOW):
        chunk = books[i : i + WINDOW]
        mids = [float((b + a) / 2) for b, a in chunk]
        moves = [abs(y / x - 1) for x, y in pairwise(mids)]
        out.append((statistics.fmean(moves), statistics.fmean(float(a - b) for b, a in chunk)))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_whales_every_few_minutes_on_btcusdt(seed: int) -> None:
    """Trades over 100,000 USDT notional occur at least 3 times in 10 demo minutes, the first within 5."""
    _, trades = books_and_trades("BTCUSDT", seed)
    whales = [i for i, notional in trades if notional >= 100_000]
    assert len(whales) >= 3
    assert whales[0] < DEMO_EVENTS_10_MIN // 2
    assert max(n for _, n in trades) / statistics.median(n for _, n in trades) > 1000  # heavy tail


def test_volatility_clusters() -> None:
    """Window volatility is autocorrelated and its calm and fast windows differ by more than 2x."""
    vols = [v for v, _ in windows(books_and_trades("BTCUSDT", 0)[0])]
    assert statistics.correlation(vols[:-1], vols[1:]) > 0.5
    ordered = sorted(vols)
    assert ordered[-len(vols) // 10] > 2 * ordered[len(vols) // 10]


def test_spreads_widen_in_fast_markets() -> None:
    """The spread of the fastest fifth of windows is wider than that of the calmest fifth."""
    ranked = sorted(windows(books_and_trades("ETHUSDT", 1)[0]))
    fifth = len(ranked) // 5
    calm = statistics.fmean(s for _, s in ranked[:fifth])
    fast = statistics.fmean(s for _, s in ranked[-fifth:])
    assert fast > 1.5 * calm


def test_trends_and_reversals() -> None:
    """Over 10 minutes the price travels well beyond its noise, and changes direction."""
    books, _ = books_and_trades("BTCUSDT", 1)
    mids = [(b + a) / 2 for b, a in books]
    step = len(mids) // 10
    legs = [mids[i + step] - mids[i] for i in range(0, len(mids) - step, step)]
    assert max(mids) - min(mids) > Decimal(200)  # a calm random walk of 1-tick steps moves ~$1
    assert any(leg > 0 for leg in legs) and any(leg < 0 for leg in legs)
