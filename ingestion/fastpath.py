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
from typing import Any, TypeGuard

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


def _time(v: Any) -> int | None:
    """A ``TimeUs`` in microseconds, or None when the model would reject it."""
    if type(v) is int and 0 < v < TIME_BELOW:
        return v * 1000 if v < MS_BELOW else v
    return None


def _ident(v: object) -> TypeGuard[int]:
    return type(v) is int and 0 <= v <= MAX_ID


def _ref(v: object) -> TypeGuard[int]:
    return type(v) is int and -1 <= v <= MAX_ID


def _dec(v: object) -> TypeGuard[str]:
    return type(v) is str and _decimal(v) is not None


def _common(d: dict[str, Any]) -> tuple[int, int, Any, Any] | None:
    """(E, T in us, M, s) when E, T, s, p, q, m and M are what the trade models accept."""
    E, T, m, M, s = _time(d.get("E")), _time(d.get("T")), d.get("m"), d.get("M"), d.get("s")
    if (E is None or T is None or type(m) is not bool or (M is not None and type(M) is not bool)
            or type(s) is not str or _symbol(s) is None or not _dec(d.get("p")) or not _dec(d.get("q"))):
        return None  # fmt: skip
    return E, T, M, s


def trade(d: dict[str, Any], received_at: int) -> TradeMessage | None:
    """``TradePayload`` semantics (the caller has checked ``e == "trade"``)."""
    common, t = _common(d), d.get("t")
    if common is None or not _ident(t) or not is_positive(d["p"]) or not is_positive(d["q"]):
        return None
    E, T, M, s = common
    message: TradeMessage = {
        "v": CONTRACT_VERSION, "type": "trade", "symbol": s, "id": t, "price": d["p"],
        "qty": d["q"], "first_id": None, "last_id": None, "trade_time": T, "event_time": E,
        "buyer_maker": d["m"], "best_match": M, "received_at": received_at, "source": "stream",
    }  # fmt: skip
    return message


def agg_trade(d: dict[str, Any], received_at: int) -> TradeMessage | None:
    """``AggTradePayload`` semantics (the caller has checked ``e == "aggTrade"``)."""
    common, a, f, last = _common(d), d.get("a"), d.get("f"), d.get("l")
    if common is None or not _ident(a) or not _ref(f) or not _ref(last):
        return None
    if not anomaly_ok(d["p"], d["q"], f, last):  # models Rule 4: where the aggTrade anomaly applies
        return None
    E, T, M, s = common
    message: TradeMessage = {
        "v": CONTRACT_VERSION, "type": "aggTrade", "symbol": s, "id": a, "price": d["p"],
        "qty": d["q"], "first_id": f, "last_id": last, "trade_time": T, "event_time": E,
        "buyer_maker": d["m"], "best_match": M, "received_at": received_at, "source": "stream",
    }  # fmt: skip
    return message


def book_ticker(d: dict[str, Any], received_at: int) -> BookTickerMessage | None:
    """``BookTickerPayload`` semantics (``e`` is missing, null or "bookTicker": checked by the caller)."""
    u, s, b, bq, a, aq = d.get("u"), d.get("s"), d.get("b"), d.get("B"), d.get("a"), d.get("A")
    if (not _ident(u) or type(s) is not str or _symbol(s) is None
            or not _dec(b) or not _dec(bq) or not _dec(a) or not _dec(aq)):
        return None  # fmt: skip
    message: BookTickerMessage = {
        "v": CONTRACT_VERSION, "type": "bookTicker", "symbol": s, "update_id": u,
        "bid_price": b, "bid_qty": bq, "ask_price": a, "ask_qty": aq,
        "received_at": received_at, "source": "stream",
    }  # fmt: skip
    return message


CHECKERS: dict[str, Checker] = {"trade": trade, "aggTrade": agg_trade, "bookTicker": book_ticker}
