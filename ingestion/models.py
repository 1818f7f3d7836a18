"""Pydantic models of what Binance sends: stream payloads, control replies, REST rows (pure).

Rules:
  1. Prices and quantities stay the exchange's exact decimal text (a ``str`` matching
     ``DECIMAL_RE``); a JSON number there is rejected, never converted, so no float ever
     touches them.
  2. Every model is strict (no coercion: ``"12"`` is not an id, ``1`` is not a flag) and
     ignores unknown fields (old trade captures carry ``b``/``a``).
  3. Every time field is returned in microseconds: a value below 10^14 is taken as
     milliseconds and multiplied by 1000 (the safety net behind ``timeUnit=MICROSECOND``).
  4. The aggTrade anomaly ``p="0", q="0", f=-1, l=-1`` is valid: first/last ids may be -1,
     and only such an aggTrade (``f == l == -1``) may carry a zero price or quantity.
  5. Trade prices and quantities are positive (Rule 4 aside); bookTicker's may be zero (an
     empty book side). Every number fits the database (``binance_pipeline.common.bounds``, the same bounds as
     the migrations' CHECKs): below 10^20, ids within bigint.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from binance_pipeline.common.bounds import BIGINT_MAX, DECIMAL_RE

SYMBOL_RE = r"^[A-Z0-9]{2,20}$"
MS_BELOW = 10**14  # an epoch time below this many units is milliseconds (year 5138 in ms)
MAX_ID = BIGINT_MAX


def to_us(value: int) -> int:
    """Normalise an epoch time to microseconds (Rule 3)."""
    return value * 1000 if value < MS_BELOW else value


def is_positive(decimal: str) -> bool:
    """True unless a valid decimal string is zero ("0", "0.00000000")."""
    return decimal.strip("0.") != ""


def _positive(value: str) -> str:
    if not is_positive(value):
        raise ValueError("must be positive")
    return value


def anomaly_ok(p: str, q: str, f: int, last: int) -> bool:
    """Rule 4: an aggTrade's price and quantity are positive, or it is the f = l = -1 anomaly."""
    return (is_positive(p) and is_positive(q)) or (f == -1 and last == -1)


Decimal = Annotated[StrictStr, Field(pattern=DECIMAL_RE)]
PositiveDecimal = Annotated[StrictStr, Field(pattern=DECIMAL_RE), AfterValidator(_positive)]
Symbol = Annotated[StrictStr, Field(pattern=SYMBOL_RE)]
TimeUs = Annotated[StrictInt, Field(ge=1, lt=10**17), AfterValidator(to_us)]
Ident = Annotated[StrictInt, Field(ge=0, le=MAX_ID)]
TradeRef = Annotated[StrictInt, Field(ge=-1, le=MAX_ID)]

_STRICT = ConfigDict(strict=True, extra="ignore", frozen=True)


class TradePayload(BaseModel):
    """``<symbol>@trade``."""

    model_config = _STRICT
    e: Literal["trade"]
    E: TimeUs
    s: Symbol
    t: Ident
    p: PositiveDecimal
    q: PositiveDecimal
    T: TimeUs
    m: StrictBool
    M: StrictBool | None = None


class AggTradePayload(BaseModel):
    """``<symbol>@aggTrade`` (Rule 4: ``f``/``l`` may be -1)."""

    model_config = _STRICT
    e: Literal["aggTrade"]
    E: TimeUs
    s: Symbol
    a: Ident
    p: Decimal
    q: Decimal
    f: TradeRef
    l: TradeRef  # noqa: E741 - Binance's field name
    T: TimeUs
    m: StrictBool
    M: StrictBool | None = None

    @model_validator(mode="after")
    def _anomaly(self) -> AggTradePayload:
        if not anomaly_ok(self.p, self.q, self.f, self.l):
            raise ValueError("price and quantity must be positive (zero only when f = l = -1)")
        return self


class BookTickerPayload(BaseModel):
    """``<symbol>@bookTicker`` (spot: no ``e``/``E``/``T``; futures' ``e`` is tolerated)."""

    model_config = _STRICT
    e: Literal["bookTicker"] | None = None
    u: Ident
    s: Symbol
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal


class ShutdownPayload(BaseModel):
    """``serverShutdown``: the server will close this connection soon."""

    model_config = _STRICT
    e: Literal["serverShutdown"]
    E: TimeUs


class ErrorBody(BaseModel):
    """The ``error`` member of a control reply."""

    model_config = _STRICT
    code: StrictInt
    msg: StrictStr


class ControlReply(BaseModel):
    """``{"result": .., "id": ..}`` or ``{"error": {..}, "id": ..}``."""

    model_config = _STRICT
    id: StrictInt | StrictStr | None
    result: Any = None
    error: ErrorBody | None = None


class RestTrade(BaseModel):
    """A ``/api/v3/historicalTrades`` row."""

    model_config = _STRICT
    id: Ident
    price: PositiveDecimal
    qty: PositiveDecimal
    time: TimeUs
    isBuyerMaker: StrictBool
    isBestMatch: StrictBool | None = None


class RestAggTrade(BaseModel):
    """An ``/api/v3/aggTrades`` row (the stream's letters)."""

    model_config = _STRICT
    a: Ident
    p: Decimal
    q: Decimal
    f: TradeRef
    l: TradeRef  # noqa: E741 - Binance's field name
    T: TimeUs
    m: StrictBool
    M: StrictBool | None = None

    @model_validator(mode="after")
    def _anomaly(self) -> RestAggTrade:
        if not anomaly_ok(self.p, self.q, self.f, self.l):
            raise ValueError("price and quantity must be positive (zero only when f = l = -1)")
        return self


PAYLOAD_MODELS: dict[str, type[BaseModel]] = {
    "trade": TradePayload,
    "aggTrade": AggTradePayload,
    "bookTicker": BookTickerPayload,
    "serverShutdown": ShutdownPayload,
}
