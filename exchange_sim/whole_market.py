"""A synthetic whole exchange (``--market N``): which symbols exist and how busy each is (pure).

Owns the listing of a many-symbol market: names, quote assets, trading rules, status and each
symbol's share of activity. Never generates an event (synthetic.py) nor paces one (feed.py).

Rule 1: ``--market N`` lists N USDT pairs; about one base in eight is also quoted in another
        asset (FDUSD, USDC, BTC, ETH, TRY, in turn), so a pattern such as ``*USDT`` has something
        to leave out. Names: well-known bases first (BTC, ETH, ...), then ``X000``, ``X001``...
Rule 2: activity is Zipf-like, as on the real exchange: the symbol of rank r (from 1) trades at
        ``rate / r ** ZIPF_EXPONENT`` events/s, never below ``QUIET_FLOOR`` events/s. So a few
        symbols are busy and most are quiet, and the total stays within a few times ``rate``.
        A pair in another quote asset trades at a tenth of its USDT pair's share.
Rule 3: about one USDT pair in DELISTED_EVERY is listed with status BREAK (exchangeInfo shows it,
        nothing is generated): a client must resolve by status, not by name.
Rule 4: prices and sizes are integers of 1e-8 units on a grid of four significant digits per
        price (tick = 10^(e+4) units for a price of about 10^e), lots sized so that a retail fill
        is worth tens of quote units; the same seed gives the same market.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from exchange_sim.market import KNOWN_SPECS, SymbolSpec

ZIPF_EXPONENT = 1.1
QUIET_FLOOR = 0.02  # share of the top rate a quiet symbol still gets (Rule 2)
OTHER_QUOTE_EVERY = 8  # one base in eight also quoted in another asset (Rule 1)
OTHER_QUOTES = ("FDUSD", "USDC", "BTC", "ETH", "TRY")
OTHER_QUOTE_SHARE = 0.1
DELISTED_EVERY = 50  # Rule 3
KNOWN_BASES = (
    "BTC", "ETH", "BNB", "SOL", "XRP", "DOGE", "ADA", "TRX", "DOT", "LINK", "AVAX", "LTC", "MATIC",
    "SHIB", "UNI", "ATOM", "ETC", "XLM", "FIL", "APT", "ARB", "OP", "NEAR", "ICP", "AAVE", "SUI",
    "PEPE", "INJ", "RNDR", "SEI", "TIA", "WIF", "FET", "GRT", "ALGO", "SAND", "MANA", "AXS", "EGLD",
    "FTM", "HBAR", "VET", "THETA", "EOS", "XTZ", "CHZ", "CRV", "MKR", "SNX", "COMP",
)  # fmt: skip


@dataclass(frozen=True)
class Listing:
    """One symbol of the synthetic market: its rules, its share of ``--rate`` and its status."""

    spec: SymbolSpec
    activity: float  # events/s = --rate x activity (Rule 2)
    trading: bool = True


def base_names(count: int) -> list[str]:
    """``count`` base assets: the well-known ones first, then X000, X001, ... (Rule 1)."""
    names = list(KNOWN_BASES[:count])
    names += [f"X{n:03d}" for n in range(count - len(names))]
    return names


def activity(rank: int) -> float:
    """The share of ``--rate`` of the symbol of ``rank`` (1 = busiest), Rule 2."""
    if rank < 1:
        raise ValueError(f"rank starts at 1, got {rank}")
    return max(1.0 / math.pow(rank, ZIPF_EXPONENT), QUIET_FLOOR)


def spec_of(symbol: str, rng: random.Random) -> SymbolSpec:
    """Trading rules of ``symbol`` (Rule 4): the known ones, else drawn from ``rng``."""
    known = KNOWN_SPECS.get(symbol)
    if known is not None:
        return known
    exponent = rng.randint(-3, 4)  # a price of about 10^exponent quote units
    tick = 10 ** (exponent + 4)  # four significant digits: 10^(e+8) units / 10^4
    start = rng.randint(1_000, 9_999) * tick
    return SymbolSpec(symbol, start, tick, 10 ** (7 - exponent))


def listings(size: int, seed: int) -> list[Listing]:
    """The market of ``--market size`` (Rules 1-4): USDT pairs by rank, then the other quotes."""
    if size < 1:
        raise ValueError(f"a market needs at least one USDT pair, got {size}")
    rng = random.Random(f"market:{seed}")  # noqa: S311 - simulation, not security
    out: list[Listing] = []
    others: list[Listing] = []
    for rank, base in enumerate(base_names(size), start=1):
        share = activity(rank)
        trading = rank % DELISTED_EVERY != 0
        out.append(Listing(spec_of(base + "USDT", rng), share, trading))
        if rank % OTHER_QUOTE_EVERY == 1:
            quote = OTHER_QUOTES[(rank // OTHER_QUOTE_EVERY) % len(OTHER_QUOTES)]
            others.append(Listing(spec_of(base + quote, rng), share * OTHER_QUOTE_SHARE))
    return out + others
