"""User input of the query CLI and HTTP API: parsing and validation, no I/O.

Both front ends hand this module the same thing, a mapping of parameter name to text
(``symbol``, ``type``, ``stream``, ``at``, ``from``, ``to``, ``last``, ``bucket``, ``fill``, ``window``,
``threshold``, ``limit``), and get back a typed ``Request``.

Rules:
  1. Every input is either accepted or rejected with ``InvalidArgument`` naming the parameter;
     nothing else escapes (property-tested).
  2. Times are ISO 8601 (UTC when no offset is given), integer epoch milliseconds (a string
     of digits is always epoch milliseconds) or ``now`` (the request's clock); results are
     UTC-aware datetimes.
  3. Intervals are half-open ``[from, to)``; ``to`` before ``from`` is rejected; ``last D``
     means ``[now - D, now)``; ``from`` without ``to`` runs to now.
  4. Thresholds are Decimal, never float. Row counts are bounded by ``max_rows``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from binance_pipeline.common.settings import SYMBOL_RE
from db.service.errors import InvalidArgument

TRADE_TYPES = ("trade", "aggTrade")
MIN_BUCKET = timedelta(seconds=1)
MAX_BUCKET = timedelta(days=1)
MAX_WINDOW = 1000
MAX_LAST = timedelta(days=3660)
DEFAULT_WHALE_THRESHOLD = Decimal(100_000)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BUCKET_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)  # time_bucket's default origin for timestamptz
_DURATION_RE = re.compile(r"^(\d{1,9})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class Request:
    """One validated query; fields a command does not take keep their defaults."""

    command: str
    symbol: str
    type: str = "trade"
    at: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    bucket: timedelta = timedelta(minutes=1)
    fill: bool = False
    window: int = 20
    threshold: Decimal = DEFAULT_WHALE_THRESHOLD
    limit: int = 100
    streams: tuple[str, ...] = TRADE_TYPES


_RANGE = ("from", "to", "last")
COMMANDS: dict[str, tuple[str, ...]] = {
    "latest": ("symbol", "type"),
    "price-at": ("symbol", "at", "type"),
    "range": ("symbol", "type", *_RANGE),
    "candles": ("symbol", "type", "bucket", "fill", *_RANGE),
    "stats": ("symbol",),
    "spread": ("symbol", "at"),
    "sma": ("symbol", "type", "bucket", "window", *_RANGE),
    "whales": ("symbol", "type", "threshold", "limit", *_RANGE),
    "gaps": ("symbol", *_RANGE),
    "audit": ("symbol", "stream", *_RANGE),
}
REQUIRED: dict[str, tuple[str, ...]] = {"price-at": ("symbol", "at")}
DEFAULT_LAST = {"gaps": timedelta(days=1)}


def parse_symbol(text: str) -> str:
    symbol = text.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise InvalidArgument("symbol", f"{text!r} is not a symbol: expected 2-20 of A-Z 0-9, e.g. BTCUSDT")
    return symbol


def parse_type(text: str, param: str = "type") -> str:
    if text not in TRADE_TYPES:
        raise InvalidArgument(param, f"{text!r}: expected trade or aggTrade")
    return text


def parse_time(text: str, param: str, now: datetime | None = None) -> datetime:
    """ISO 8601 (naive = UTC), epoch milliseconds or ``now`` (when ``now`` is given), UTC-aware."""
    value = text.strip()
    if now is not None and value.lower() == "now":
        return now
    try:
        if value.isascii() and value.isdigit():
            return _EPOCH + timedelta(milliseconds=int(value))
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(
            param, f"{text!r} is not a time: expected ISO 8601 (e.g. 2024-05-01T12:00:00Z), epoch ms or now"
        ) from None


def parse_duration(text: str, param: str) -> timedelta:
    """A positive duration such as 90s, 5m, 1h, 2d."""
    match = _DURATION_RE.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise InvalidArgument(param, f"{text!r} is not a duration: expected e.g. 30s, 5m, 1h, 1d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def parse_bucket(text: str) -> timedelta:
    width = parse_duration(text, "bucket")
    if not MIN_BUCKET <= width <= MAX_BUCKET:
        raise InvalidArgument("bucket", f"{text!r} is out of range: expected 1s to 1d")
    return width


def parse_int(text: str, param: str, low: int, high: int) -> int:
    value = text.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 12):
        raise InvalidArgument(param, f"{text!r} is not a whole number")
    if not low <= int(value) <= high:
        raise InvalidArgument(param, f"{value} is out of range: expected {low} to {high}")
    return int(value)


def parse_threshold(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value >= Decimal("1e40"):
        raise InvalidArgument("threshold", f"{text!r} is not a non-negative decimal number")
    return value


def parse_bool(text: str, param: str) -> bool:
    if text.strip().lower() in _TRUE:
        return True
    if text.strip().lower() in _FALSE:
        return False
    raise InvalidArgument(param, f"{text!r}: expected true or false")


def parse_request(command: str, raw: Mapping[str, str], now: datetime, max_rows: int) -> Request:
    """Validate one command's parameters (rules 1-4) into a ``Request``."""
    allowed = COMMANDS[command]
    for name in raw:
        if name not in allowed:
            raise InvalidArgument(name, f"unknown parameter for {command}; expected {', '.join(allowed)}")
    for name in REQUIRED.get(command, ("symbol",)):
        if not raw.get(name):
            raise InvalidArgument(name, "is required")
    request = Request(command=command, symbol=parse_symbol(raw["symbol"]))
    request = _apply_scalars(request, raw, max_rows, now)
    if command == "audit":
        request = replace(request, limit=max_rows)  # the most holes/disagreements listed per kind
    if "from" in allowed:
        start, end = resolve_range(raw, now, DEFAULT_LAST.get(command, timedelta(hours=1)))
        given = [k for k in ("from", "last") if k in raw]  # "to" alone is refused by resolve_range
        series_param = given[0] if given and "bucket" not in raw else "bucket"
        check_row_budget(command, start, end, request.bucket, max_rows, series_param)
        request = replace(request, start=start, end=end)
    elif command == "spread" and request.at is None:
        request = replace(request, at=now)
    return request


def _apply_scalars(request: Request, raw: Mapping[str, str], max_rows: int, now: datetime) -> Request:
    parsers: dict[str, tuple[str, Callable[[str], object]]] = {
        "type": ("type", parse_type),
        "at": ("at", lambda t: parse_time(t, "at", now)),
        "bucket": ("bucket", parse_bucket),
        "fill": ("fill", lambda t: parse_bool(t, "fill")),
        "window": ("window", lambda t: parse_int(t, "window", 1, MAX_WINDOW)),
        "threshold": ("threshold", parse_threshold),
        "limit": ("limit", lambda t: parse_int(t, "limit", 1, max_rows)),
        "stream": ("streams", lambda t: (parse_type(t, "stream"),)),
    }
    changes = {field: parse(raw[name]) for name, (field, parse) in parsers.items() if name in raw}
    return replace(request, **changes)  # type: ignore[arg-type]


def resolve_range(
    raw: Mapping[str, str], now: datetime, default_last: timedelta
) -> tuple[datetime, datetime]:
    """``[from, to)`` from ``from``/``to`` or ``last`` (rule 3)."""
    if "last" in raw and ("from" in raw or "to" in raw):
        raise InvalidArgument("last", "give either last or from/to, not both")
    if "to" in raw and "from" not in raw:
        raise InvalidArgument("from", "is required when to is given")
    if "from" not in raw:
        last = parse_duration(raw["last"], "last") if "last" in raw else default_last
        if last > MAX_LAST:
            raise InvalidArgument("last", f"{raw['last']!r} is longer than {MAX_LAST.days} days")
        return now - last, now
    start = parse_time(raw["from"], "from", now)
    end = parse_time(raw["to"], "to", now) if "to" in raw else now
    if end < start:
        raise InvalidArgument("to", f"the range ends ({_iso(end)}) before it starts ({_iso(start)})")
    return start, end


def check_row_budget(command: str, start: datetime, end: datetime, bucket: timedelta, max_rows: int,
                     series_param: str = "bucket") -> None:
    """Reject a candle/SMA series or a day list longer than ``max_rows`` rows.

    A too long series names ``series_param``: the range parameter the caller gave when they gave
    no bucket (the error names what they chose, not a default they never saw), else the bucket."""
    if command in ("candles", "sma"):
        rows, param = bucket_count(start, end, bucket), series_param
    elif command == "gaps":
        rows, param = (end - start).days + 2, "from"
    else:
        return
    if rows > max_rows:
        raise InvalidArgument(
            param, f"the range spans {rows} rows, more than the maximum {max_rows}: shorten it"
            + (" or widen the bucket" if command in ("candles", "sma") else "")
        )


def bucket_count(start: datetime, end: datetime, width: timedelta) -> int:
    """How many buckets of ``width`` (aligned as time_bucket aligns them) cover ``[start, end)``."""
    step = int(width.total_seconds() * 1_000_000)
    first = _micros(start) // step
    last = (_micros(end) - 1) // step
    return max(0, last - first + 1)


def _micros(value: datetime) -> int:
    delta = value - BUCKET_ORIGIN
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
