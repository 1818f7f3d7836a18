"""How the dashboard writes computed figures as text (pure: values in, strings and rows out).

Rules:
  1. A price or quantity the exchange sent is shown exactly as stored (its digits, scale
     included). A figure computed from them is shown at the precision a reader expects: a notional
     (price x quantity, in the quote currency) at the quote's precision, the number of decimals
     of the price it was computed from (Binance sends prices at the quote asset's precision), rounded
     half to even, with thousands separators. The exact value stays in the query layer's answers
     and exports (``python -m db.query whales``, ``/v1/whales``).
  2. Nothing here converts a Decimal to float (dashboard.charts does that, for drawing only).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal

from db.service import results as r

OVERVIEW_COLUMNS = ("symbol", "trades", "completeness", "open gaps", "repaired gaps", "unrepairable gaps",
                    "last price", "last trade (UTC)")


def places(price: Decimal) -> int:
    """The number of decimals ``price`` was written with (0 for a whole number without a point)."""
    exponent = price.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def notional_text(notional: Decimal, price: Decimal) -> str:
    """Rule 1: ``notional`` at the precision of ``price``, half to even, thousands separated."""
    rounded = notional.quantize(Decimal(1).scaleb(-places(price)), rounding=ROUND_HALF_EVEN)
    return f"{rounded:,f}"


def overview_rows(markets: Iterable[r.Market]) -> list[dict[str, str | int]]:
    """The market overview's table, one row per symbol in the query layer's order (most trades first)."""
    return [dict(zip(OVERVIEW_COLUMNS, (
        m.symbol, m.trades, m.completeness, m.open_gaps, m.repaired_gaps, m.unrepairable_gaps,
        "-" if m.last_price is None else str(m.last_price),
        "-" if m.last_time is None else m.last_time.strftime("%Y-%m-%d %H:%M:%S"),
    ), strict=True)) for m in markets]


def statements_text(count: int) -> str:
    """The refresh's database statements, as the page's caption reports them."""
    return f"database statements in this refresh: {count}"
