"""Number formatting and timestamp-unit sniffing (pure).

Rule 1: prices and quantities are integers in units of 1e-8 or the exact recorded strings;
        no float ever touches them.
Rule 2: a timestamp's unit is told by its number of digits, never assumed:
        <= 11 digits seconds, 12-14 milliseconds, 15-17 microseconds, >= 18 nanoseconds
        (valid for dates between 1973 and 2286).
"""

from __future__ import annotations

from decimal import Decimal

SCALE = 100_000_000  # 1e8: prices and quantities are held as integer multiples of 1e-8


def fmt8(units: int) -> str:
    """Format an integer number of 1e-8 units as Binance's 8-decimal string."""
    sign = "-" if units < 0 else ""
    units = abs(units)
    return f"{sign}{units // SCALE}.{units % SCALE:08d}"


def parse8(text: str) -> int:
    """Parse a decimal string into integer 1e-8 units (exact; excess digits must be 0)."""
    value = Decimal(text) * SCALE
    if value != value.to_integral_value():
        raise ValueError(f"more than 8 decimals: {text!r}")
    return int(value)


def epoch_to_us(value: int) -> int:
    """Convert an integer epoch timestamp of unknown unit to microseconds."""
    digits = len(str(abs(value)))
    if digits >= 18:
        return value // 1000
    if digits >= 15:
        return value
    if digits >= 12:
        return value * 1000
    return value * 1_000_000


def float_seconds_to_us(text: str) -> int:
    """Convert a float-seconds epoch string (``"1617566591.326123"``) to microseconds."""
    return int(Decimal(text) * 1_000_000)


def quote_qty(price: str, qty: str) -> str:
    """Exact ``price * qty`` as an 8-decimal string (truncated past 8 decimals)."""
    product = Decimal(price) * Decimal(qty)
    return f"{product.quantize(Decimal('0.00000001'), rounding='ROUND_DOWN'):f}"
