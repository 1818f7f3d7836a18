"""User input of the query CLI and HTTP API: the check of each parameter, and the pydantic models
the query specs (db.service.specs) declare their parameters with. No I/O.

Both front ends hand a spec's model the same thing, a mapping of parameter name to text (``symbol``,
``type``, ``stream``, ``at``, ``from``, ``to``, ``last``, ``bucket``, ``fill``, ``window``, ``threshold``,
``limit``, ...), and get the validated model back (``Params.parse``). One annotated type per parameter
(``Symbol``, ``TradeType``, ``At``, ...) carries its check, its description and its OpenAPI schema, so a
new query composes them instead of writing them again.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)
from pydantic.fields import FieldInfo

from binance_pipeline.common.settings import SYMBOL_RE
from binance_pipeline.common.utc import at_us
from db.service.errors import InvalidArgument

TRADE_TYPES = ("trade", "aggTrade")
MIN_BUCKET = timedelta(seconds=1)
MAX_BUCKET = timedelta(days=1)
MAX_WINDOW = 1000
MAX_LAST = timedelta(days=3660)
DEFAULT_WHALE_THRESHOLD = Decimal(100_000)
BUCKET_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)  # time_bucket's default origin for timestamptz
_DURATION_RE = re.compile(r"^(\d{1,9})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


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
            return at_us(int(value) * 1000)
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


def check_row_budget(rows_per: str, start: datetime, end: datetime, bucket: timedelta, max_rows: int,
                     series_param: str = "bucket") -> None:
    """Reject a series (``rows_per`` "bucket": candles, SMA) or a day list ("day": gaps) longer than
    ``max_rows`` rows; "" has no budget.

    A too long series names ``series_param``: the range parameter the caller gave when they gave
    no bucket (the error names what they chose, not a default they never saw), else the bucket."""
    if rows_per == "bucket":
        rows, param = bucket_count(start, end, bucket), series_param
    elif rows_per == "day":
        rows, param = (end - start).days + 2, "from"
    else:
        return
    if rows > max_rows:
        raise InvalidArgument(
            param, f"the range spans {rows} rows, more than the maximum {max_rows}: shorten it"
            + (" or widen the bucket" if rows_per == "bucket" else "")
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


# --- the models: one annotated type per parameter, composed by the query specs -----------------


@dataclass(frozen=True)
class Doc:
    """How a parameter is shown: OpenAPI schema of its text, CLI flag options (argparse keywords)."""

    schema: dict[str, Any]
    cli: dict[str, Any] = field(default_factory=dict)


def _now(info: ValidationInfo) -> datetime | None:
    return info.context.get("now") if info.context else None


def _max_rows(info: ValidationInfo) -> int:
    return int(info.context["max_rows"]) if info.context else 10_000


def _at(text: str, info: ValidationInfo) -> datetime:
    return parse_time(text, "at", _now(info))


def _stream(text: str) -> tuple[str, ...]:
    return (parse_type(text, "stream"),)


def _limit(text: str, info: ValidationInfo) -> int:
    return parse_int(text, "limit", 1, _max_rows(info))


_STRING = {"type": "string"}
_DURATION = {"type": "string", "pattern": "^[0-9]+[smhd]$"}
_TRADE_TYPES = {"type": "string", "enum": list(TRADE_TYPES)}
Symbol = Annotated[str, BeforeValidator(parse_symbol), Doc(_STRING),
                   Field(description="Symbol, e.g. BTCUSDT (A-Z, 0-9; lower case is upper-cased)")]
TradeType = Annotated[str, BeforeValidator(parse_type), Doc(_TRADE_TYPES),
                      Field(description="Trade stream: trade (default) or aggTrade")]
At = Annotated[datetime | None, BeforeValidator(_at), Doc(_STRING),
               Field(description="ISO 8601 time (UTC when no offset), epoch milliseconds or now")]
Bucket = Annotated[timedelta, BeforeValidator(parse_bucket), Doc(_DURATION),
                   Field(description="Bucket width from 1s to 1d, e.g. 1m (default), 15m, 1h")]
Fill = Annotated[bool, BeforeValidator(lambda t: parse_bool(t, "fill")),
                 Doc({"type": "boolean"}, {"action": "store_true"}),
                 Field(description="Return empty buckets too (OHLC = previous close, volume 0)")]
Window = Annotated[int, BeforeValidator(lambda t: parse_int(t, "window", 1, MAX_WINDOW)),
                   Doc({"type": "integer"}),
                   Field(description="Closes per moving average, 1-1000 (default 20)")]
Threshold = Annotated[Decimal, BeforeValidator(parse_threshold), Doc({"type": "string", "format": "decimal"}),
                      Field(description="Notional price*qty threshold in the quote currency "
                            "(default 100000)")]
Limit = Annotated[int, BeforeValidator(_limit), Doc({"type": "integer"}),
                  Field(description="Most trades to return (default 100; maximum QUERY_MAX_ROWS)")]
Streams = Annotated[tuple[str, ...], BeforeValidator(_stream), Doc(_TRADE_TYPES),
                    Field(alias="stream", description="Audit only this stream: trade or aggTrade "
                          "(default both, and their consistency)")]
From = Annotated[str | None, Doc(_STRING, {"metavar": "FROM"}),
                 Field(alias="from", description="Interval start (inclusive), ISO 8601, epoch ms or now")]
To = Annotated[str | None, Doc(_STRING),
               Field(description="Interval end (exclusive), ISO 8601, epoch ms or now; default now")]
Last = Annotated[str | None, Doc(_DURATION),
                 Field(description="Interval [now - D, now), e.g. 5m, 1h, 2d; instead of from/to")]


class QueryParams(BaseModel):
    """The parameters of one query: declared as fields (in the order they are checked and listed),
    validated from name -> text with the checks above; ``InvalidArgument`` names the first bad one.

    ``required``: the parameters that must be given (and non-empty); ``positional``: those the CLI
    takes as positional arguments (the others are --flags). A query of the whole market (``markets``)
    has no symbol: it declares its parameters on this class; a query of one symbol on ``Params``.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    required: ClassVar[tuple[str, ...]] = ()
    positional: ClassVar[tuple[str, ...]] = ()

    last_fields: ClassVar[tuple[str, ...]] = ()  # listed after the subclasses' own (the range)

    @classmethod
    def fields(cls) -> list[tuple[str, str, FieldInfo]]:
        """(wire name, field name, field) of every parameter, in the order they are listed."""
        items = [(f.alias or name, name, f) for name, f in cls.model_fields.items()]
        return sorted(items, key=lambda item: item[1] in cls.last_fields)  # stable: keeps the rest's order

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameters' names as given on the wire (``from``, not ``from_``), in order."""
        return tuple(wire for wire, _, _ in cls.fields())

    @classmethod
    def parse(cls, command: str, raw: Mapping[str, str], now: datetime, max_rows: int) -> Self:
        """Rules 1-4: unknown names, then missing ones, then each value in order, then the range."""
        allowed = cls.names()
        for name in raw:
            if name not in allowed:
                raise InvalidArgument(name, f"unknown parameter for {command}; expected {', '.join(allowed)}")
        for name in cls.required:
            if not raw.get(name):
                raise InvalidArgument(name, "is required")
        return cls.model_validate(dict(raw), context={"now": now, "max_rows": max_rows})

    @property
    def start(self) -> datetime | None:
        return None

    @property
    def end(self) -> datetime | None:
        return None


class Params(QueryParams):
    """The parameters of a query about one symbol (the first, positional, parameter)."""

    required: ClassVar[tuple[str, ...]] = ("symbol",)
    positional: ClassVar[tuple[str, ...]] = ("symbol",)

    symbol: Symbol


class WindowParams(QueryParams):
    """A query over ``[from, to)`` (or ``last``; ``default_last`` when neither is given, Rule 3);
    ``rows_per`` bounds the answer's rows by QUERY_MAX_ROWS ("bucket", "day" or "" for none)."""

    default_last: ClassVar[timedelta] = timedelta(hours=1)
    rows_per: ClassVar[str] = ""
    last_fields: ClassVar[tuple[str, ...]] = ("from_", "to", "last")
    from_: From = None
    to: To = None
    last: Last = None
    _start: datetime = PrivateAttr()
    _end: datetime = PrivateAttr()

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Self:
        now, max_rows = _now(info) or datetime.now(UTC), _max_rows(info)
        raw = {k: v for k, v in (("from", self.from_), ("to", self.to), ("last", self.last)) if v is not None}
        self._start, self._end = resolve_range(raw, now, self.default_last)
        given = [k for k in ("from", "last") if k in raw]  # "to" alone is refused by resolve_range
        series_param = given[0] if given and "bucket" not in self.model_fields_set else "bucket"
        check_row_budget(self.rows_per, self._start, self._end, getattr(self, "bucket", MIN_BUCKET), max_rows,
                         series_param)
        return self

    @property
    def start(self) -> datetime:
        return self._start

    @property
    def end(self) -> datetime:
        return self._end


class RangeParams(WindowParams, Params):
    """A query of one symbol over ``[from, to)`` (WindowParams' rules)."""
