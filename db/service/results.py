"""Result types of the tape queries, and the pure arithmetic done on them (no I/O).

Rules:
  1. Prices, quantities and sums are ``Decimal`` exactly as the database returns them: the
     exchange's digits, scale included. Nothing here passes through float.
  2. The two derived ratios, VWAP and the simple moving average, are the exact rational value
     rounded half-to-even to ``RATIO_PLACES`` decimal places (the only rounding in the layer).
  3. Datetimes are UTC-aware.
  4. The tape's order is (time, id): "first" and "last" break ties on time by trade id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from fractions import Fraction

RATIO_PLACES = 12
BUCKET_ORIGIN_MINUTE = datetime(2000, 1, 3, tzinfo=UTC)  # any whole minute: time_bucket's origin
_EXACT = Context(prec=100)


@dataclass(frozen=True)
class Trade:
    time: datetime
    id: int
    price: Decimal
    qty: Decimal
    buyer_maker: bool


@dataclass(frozen=True)
class PriceAt:
    """The trade at or before ``at`` (the price as of ``at``) and the first trade after it."""

    at: datetime
    before: Trade | None
    after: Trade | None

    @property
    def price(self) -> Decimal | None:
        return self.before.price if self.before else None

    @property
    def nearest(self) -> Trade | None:
        """The closer in time of ``before`` and ``after``; a tie goes to ``before``."""
        if self.before is None or self.after is None:
            return self.before or self.after
        if self.after.time - self.at < self.at - self.before.time:
            return self.after
        return self.before


@dataclass(frozen=True)
class RangeSummary:
    start: datetime
    end: datetime
    trade_count: int
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    volume: Decimal
    quote_volume: Decimal
    vwap: Decimal | None
    first_time: datetime | None
    last_time: datetime | None


@dataclass(frozen=True)
class Candle:
    """One bucket; a gap-filled empty bucket has trade_count 0 and OHLC = the previous close."""

    bucket: datetime
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    volume: Decimal
    quote_volume: Decimal
    trade_count: int


@dataclass(frozen=True)
class SmaPoint:
    bucket: datetime
    close: Decimal | None
    sma: Decimal | None


@dataclass(frozen=True)
class TableStats:
    table: str
    type: str | None
    rows: int
    first_time: datetime | None
    last_time: datetime | None
    min_price: Decimal | None
    max_price: Decimal | None


@dataclass(frozen=True)
class SymbolStats:
    symbol: str
    tables: list[TableStats]
    gaps: dict[str, int]

    @property
    def empty(self) -> bool:
        return all(t.rows == 0 for t in self.tables) and not any(self.gaps.values())


@dataclass(frozen=True)
class Quote:
    """The best bid/ask in force at ``at``: the last bookTicker update received at or before it."""

    at: datetime
    time: datetime
    update_id: int
    bid_price: Decimal
    bid_qty: Decimal
    ask_price: Decimal
    ask_qty: Decimal
    spread: Decimal


@dataclass(frozen=True)
class QuoteBucket:
    """The last best bid/ask of one time bucket, and the widest spread quoted in it."""

    bucket: datetime
    bid_price: Decimal
    ask_price: Decimal
    spread: Decimal
    max_spread: Decimal
    quotes: int


@dataclass(frozen=True)
class Whale:
    time: datetime
    id: int
    price: Decimal
    qty: Decimal
    buyer_maker: bool
    notional: Decimal


@dataclass(frozen=True)
class Whales:
    trades: list[Whale]
    truncated: bool


@dataclass(frozen=True)
class Gap:
    gap_id: str
    stream: str
    kind: str
    first_id: int | None
    last_id: int | None
    start_time: datetime | None
    end_time: datetime | None
    missing: int | None
    reason: str
    status: str
    detected_at: datetime
    repaired_at: datetime | None
    data_start: datetime | None = None  # the time span of the missing events (see db.service.sqltext)
    data_end: datetime | None = None


@dataclass(frozen=True)
class DayCount:
    day: datetime
    trades: int
    agg_trades: int


@dataclass(frozen=True)
class Completeness:
    gaps: list[Gap]
    days: list[DayCount]


@dataclass(frozen=True)
class Market:
    """One symbol of the market overview: its trades in the window, its gap records by status and
    their verdict (``completeness_of``), its last trade (None when it has only quotes or gaps)."""

    symbol: str
    trades: int
    open_gaps: int
    repaired_gaps: int
    unrepairable_gaps: int
    completeness: str
    last_time: datetime | None
    last_id: int | None
    last_price: Decimal | None


def completeness_of(open_gaps: int, repaired_gaps: int, unrepairable_gaps: int) -> str:
    """One word for a symbol's gap records: "open gaps" first (data still missing, a repair may
    come), then "unrepairable gaps" (data lost for good), then "repaired"; none at all: "complete"."""
    if open_gaps:
        return "open gaps"
    if unrepairable_gaps:
        return "unrepairable gaps"
    return "repaired" if repaired_gaps else "complete"


def exact_ratio(numerator: Decimal, denominator: Decimal, places: int = RATIO_PLACES) -> Decimal:
    """numerator / denominator, exact, then rounded half-to-even to ``places`` decimals (rule 2)."""
    scaled = Fraction(numerator) / Fraction(denominator) * 10**places
    return Decimal(round(scaled)).scaleb(-places, _EXACT)


def vwap(quote_volume: Decimal, volume: Decimal) -> Decimal | None:
    return exact_ratio(quote_volume, volume) if volume != 0 else None


def moving_average(closes: Sequence[Decimal | None], window: int) -> list[Decimal | None]:
    """SMA of the last ``window`` closes at each position; None until ``window`` closes exist.

    A running sum under a 100-digit context is exact for any price the schema admits.
    """
    out: list[Decimal | None] = []
    total, missing = Decimal(0), 0
    for i, close in enumerate(closes):
        total, missing = _slide(total, missing, close, +1)
        if i >= window:
            total, missing = _slide(total, missing, closes[i - window], -1)
        full = i + 1 >= window and missing == 0
        out.append(exact_ratio(total, Decimal(window)) if full else None)
    return out


def _slide(total: Decimal, missing: int, close: Decimal | None, sign: int) -> tuple[Decimal, int]:
    if close is None:
        return total, missing + sign
    return _EXACT.add(total, close) if sign > 0 else _EXACT.subtract(total, close), missing


def bucket_start(value: datetime, width: timedelta, origin: datetime) -> datetime:
    """The start of the bucket of ``width`` (counted from ``origin``) that holds ``value``."""
    return origin + ((value - origin) // width) * width


MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)


def _ceil(value: datetime, width: timedelta) -> datetime:
    floor = bucket_start(value, width, BUCKET_ORIGIN_MINUTE)
    return floor if floor == value else floor + width


def rollup_split(start: datetime, end: datetime, hours: bool = True) -> dict[str, datetime]:
    """Split [start, end) into the pieces the rollups can answer, as query parameters.

    Raw edges [a0, a1) and [b0, b1) (each inside one minute), whole minutes [m0, h0) and
    [h1, m1), whole hours [h0, h1) (empty unless ``hours``). The pieces are disjoint and cover
    [start, end) exactly. When no whole minute fits, everything is the edge [a0, a1).
    """
    m0, m1 = _ceil(start, MINUTE), bucket_start(end, MINUTE, BUCKET_ORIGIN_MINUTE)
    if end <= start or m0 > m1:
        nothing = dict.fromkeys(("m0", "h0", "h1", "m1", "b0", "b1"), start)
        return {"a0": start, "a1": max(start, end), **nothing}
    h0, h1 = _ceil(m0, HOUR), bucket_start(m1, HOUR, BUCKET_ORIGIN_MINUTE)
    if not hours or h0 > h1:
        h0 = h1 = m1
    return {"a0": start, "a1": m0, "m0": m0, "h0": h0, "h1": h1, "m1": m1, "b0": m1, "b1": end}
