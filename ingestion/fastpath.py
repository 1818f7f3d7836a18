"""Hand-written validation of the hot payloads (trade, aggTrade, bookTicker); pure.

The pydantic models in ``ingestion.models`` are the reference; this module is a shortcut
that saves their per-event cost on the payloads that make up nearly all the traffic.

Rules:
  1. A checker returns the contract message exactly as ``parse`` builds it from the model,
     or ``None``; it never raises. ``None`` means "let the model decide": the caller then
     validates with pydantic, so every rejection (and its reason) still comes from the model.
  2. A checker accepts exactly what its model accepts (property-tested against it): strict
     types (``type(v) is int``, so no bool as an id), the same ranges, the same decimal and
     symbol patterns matched on the whole string, ``M`` missing or null as ``None``, unknown
     fields ignored, times normalised with ``models.to_us``.
  3. The envelope checks (stream vs type, stream vs symbol) stay in ``parse``; they do not
     depend on which path validated the payload.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from binance_pipeline.common.bounds import DECIMAL_RE
from binance_pipeline.common.events import CONTRACT_VERSION, BookTickerMessage, TradeMessage
from ingestion.models import MAX_ID, MS_BELOW, SYMBOL_RE, anomaly_ok, is_positive

Checker = Callable[[dict[str, Any], int], TradeMessage | BookTickerMessage | None]
TIME_BELOW = 10**17  # TimeUs: 1 <= value < 10**17


def _whole(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """The model's ``^...$`` pattern as a whole-string match (``$`` would allow a final \\n)."""
    return re.compile(pattern.removeprefix("^").removesuffix("$")).fullmatch


_decimal = _whole(DECIMAL_RE)
_symbol = _whole(SYMBOL_RE)


_SYMBOLS: set[str] = set()  # symbols the pattern accepted already (a memo; Rule 2 unchanged)
SYMBOLS_MEMO = 4096  # the memo is emptied past this many (a hostile stream of new names stays bounded)


def _symbol_ok(s: str) -> bool:
    """``s`` (a str) matches the symbol pattern; remembered when it does."""
    if s in _SYMBOLS:
        return True
    if _symbol(s) is None:
        return False
    if len(_SYMBOLS) >= SYMBOLS_MEMO:
        _SYMBOLS.clear()
    _SYMBOLS.add(s)
    return True


def _us(v: int) -> int:
    """A valid ``TimeUs`` in microseconds (``models.to_us``)."""
    return v * 1000 if v < MS_BELOW else v


# The checkers below are written out flat (one expression of type tests and comparisons each, no
# helper calls on the accepting path): they run once per event.


def trade(d: dict[str, Any], received_at: int) -> TradeMessage | None:
    """``TradePayload`` semantics (the caller has checked ``e == "trade"``)."""
    get = d.get
    E, T, s, t, p, q, m, M = get("E"), get("T"), get("s"), get("t"), get("p"), get("q"), get("m"), get("M")
    if not (type(E) is int and 0 < E < TIME_BELOW and type(T) is int and 0 < T < TIME_BELOW
            and type(t) is int and 0 <= t <= MAX_ID and type(m) is bool and (M is None or type(M) is bool)
            and type(s) is str and _symbol_ok(s) and type(p) is str and _decimal(p) is not None
            and type(q) is str and _decimal(q) is not None and is_positive(p) and is_positive(q)):
        return None  # fmt: skip
    message: TradeMessage = {
        "v": CONTRACT_VERSION, "type": "trade", "symbol": s, "id": t, "price": p, "qty": q,
        "first_id": None, "last_id": None, "trade_time": _us(T), "event_time": _us(E), "buyer_maker": m,
        "best_match": M, "received_at": received_at, "source": "stream",
    }  # fmt: skip
    return message


def agg_trade(d: dict[str, Any], received_at: int) -> TradeMessage | None:
    """``AggTradePayload`` semantics (the caller has checked ``e == "aggTrade"``)."""
    get = d.get
    E, T, s, a, p, q, m, M = get("E"), get("T"), get("s"), get("a"), get("p"), get("q"), get("m"), get("M")
    f, last = get("f"), get("l")
    if not (type(E) is int and 0 < E < TIME_BELOW and type(T) is int and 0 < T < TIME_BELOW
            and type(a) is int and 0 <= a <= MAX_ID and type(f) is int and -1 <= f <= MAX_ID
            and type(last) is int and -1 <= last <= MAX_ID
            and type(m) is bool and (M is None or type(M) is bool)
            and type(s) is str and _symbol_ok(s) and type(p) is str and _decimal(p) is not None
            and type(q) is str and _decimal(q) is not None
            and anomaly_ok(p, q, f, last)):  # models Rule 4: where the aggTrade anomaly applies
        return None  # fmt: skip
    message: TradeMessage = {
        "v": CONTRACT_VERSION, "type": "aggTrade", "symbol": s, "id": a, "price": p, "qty": q,
        "first_id": f, "last_id": last, "trade_time": _us(T), "event_time": _us(E), "buyer_maker": m,
        "best_match": M, "received_at": received_at, "source": "stream",
    }  # fmt: skip
    return message


def book_ticker(d: dict[str, Any], received_at: int) -> BookTickerMessage | None:
    """``BookTickerPayload`` semantics (``e`` is missing, null or "bookTicker": checked by the caller)."""
    get = d.get
    u, s, b, bq, a, aq = get("u"), get("s"), get("b"), get("B"), get("a"), get("A")
    if not (type(u) is int and 0 <= u <= MAX_ID and type(s) is str and _symbol_ok(s)
            and type(b) is str and _decimal(b) is not None and type(bq) is str and _decimal(bq) is not None
            and type(a) is str and _decimal(a) is not None and type(aq) is str and _decimal(aq) is not None):
        return None  # fmt: skip
    message: BookTickerMessage = {
        "v": CONTRACT_VERSION, "type": "bookTicker", "symbol": s, "update_id": u,
        "bid_price": b, "bid_qty": bq, "ask_price": a, "ask_qty": aq,
        "received_at": received_at, "source": "stream",
    }  # fmt: skip
    return message


CHECKERS: dict[str, Checker] = {"trade": trade, "aggTrade": agg_trade, "bookTicker": book_ticker}
