"""Frames and REST bodies -> contract messages (pure: bytes and a receipt time in, values out).

Rules:
  1. ``parse_frame`` returns a :class:`~binance_pipeline.common.events.TradeMessage`,
     :class:`~binance_pipeline.common.events.BookTickerMessage`, :class:`Shutdown` or
     :class:`~ingestion.models.ControlReply`, or raises :class:`ParseError`; no other
     exception escapes, whatever the bytes (property-tested).
  2. Values are copied, never reinterpreted: prices and quantities are the exchange's strings,
     ids are the exchange's integers, times are microseconds (``models.to_us``).
  3. A payload must agree with its envelope: the stream name's symbol and type are the
     payload's (``btcusdt@trade`` carries a trade of BTCUSDT).
  4. Frames over ``MAX_FRAME_BYTES`` are rejected before decoding; no event is that large.
  5. trade, aggTrade and bookTicker payloads first go through ``fastpath`` (same semantics,
     property-tested); what it declines is validated by the pydantic models, the reference,
     which also word every rejection. ``fast=False`` skips the shortcut.
  6. A JSON object with a duplicate key is rejected: JSON parsers disagree on which copy
     wins, so such a frame has no single meaning (a second ``"t"`` 500,000 ahead was once
     stored under the far id). Tested in three tiers, each exact when it passes: the frame's
     colons against the keys of its top level and ``data`` (every key written has a colon);
     then its key ends against the keys of every nested object; then a parse that sees every
     pair.
  7. ``decode_frame`` also says which combined-stream envelope the frame came in (None for a
     bare payload), for the checks that depend on the connection (``ingestion.flow``).
  8. Memos of what the checks concluded (a stream name's kind and symbol here, a valid symbol in
     ``fastpath``) spare a stream's later frames the string work; they change no answer, and are
     emptied past a few thousand names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from binance_pipeline.common.events import CONTRACT_VERSION, BookTickerMessage, TradeMessage
from ingestion.errors import ParseError
from ingestion.fastpath import CHECKERS
from ingestion.models import (
    PAYLOAD_MODELS,
    AggTradePayload,
    BookTickerPayload,
    ControlReply,
    RestAggTrade,
    RestTrade,
    ShutdownPayload,
    TradePayload,
)

MAX_FRAME_BYTES = 65_536
SHUTDOWN_STREAM = "!serverShutdown"


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The server announced it will close this connection (``serverShutdown``)."""

    event_time: int


Parsed = TradeMessage | BookTickerMessage | Shutdown | ControlReply


class Framed(NamedTuple):
    """A parsed frame and the stream its combined envelope named (None: no envelope); ``decode``
    returns the same pair as a plain tuple."""

    stream: str | None
    item: Parsed


# The end of every key: a string's closing quote, optional whitespace, then a colon. Inside a
# string a quote is escaped, so extra matches can only come from values (Rule 6's fast test).
_KEY_END = re.compile(rb'"\s*:')
_SPACED_COLON = re.compile(rb"\s:")

_REST_TRADES = TypeAdapter(list[RestTrade])
_REST_AGGS = TypeAdapter(list[RestAggTrade])


def parse_frame(raw: bytes, received_at: int, fast: bool = True) -> Parsed:
    """Decode and validate one WebSocket frame (Rules 1 and 5)."""
    return decode_frame(raw, received_at, fast).item


def decode_frame(raw: bytes, received_at: int, fast: bool = True) -> Framed:
    """``parse_frame``, with the envelope's stream name (Rule 7)."""
    return Framed(*decode(raw, received_at, fast))


def decode(raw: bytes, received_at: int, fast: bool = True) -> tuple[str | None, Parsed]:
    """``decode_frame`` as a plain (stream, item) pair: the per-frame path."""
    if len(raw) > MAX_FRAME_BYTES:
        raise ParseError(f"oversized frame: {len(raw)} bytes > {MAX_FRAME_BYTES}")
    doc = _loads(raw)
    stream, data = _unwrap(doc)
    if stream is None and "id" in data and ("result" in data or "error" in data):
        return None, _validate(ControlReply, data, "control reply", None)  # type: ignore[return-value]
    known = _STREAMS.get(stream) if stream is not None else None
    if known is not None and _same_kind(data.get("e"), known[1], data):
        kind = known[1]  # what _kind_of concluded for this stream before
    else:
        kind = _kind_of(stream, data)
    checker = CHECKERS.get(kind) if fast else None
    message = checker(data, received_at) if checker is not None else None
    if message is None:
        return stream, _from_model(kind, data, stream, received_at)
    if known is None or message["symbol"] != known[0]:
        _check_symbol(stream, message["symbol"])
        if stream is not None:
            _remember(stream, message["symbol"], kind)
    return stream, message


# Stream names whose kind and symbol the checks accepted: (symbol, kind). A memo of what
# ``_kind_of`` and ``_check_symbol`` concluded, so a stream's later frames skip the string work;
# emptied past STREAMS_MEMO names, so a hostile run of new names stays bounded.
_STREAMS: dict[str, tuple[str, str]] = {}
STREAMS_MEMO = 8192


def _same_kind(event: object, kind: str, data: dict[str, Any]) -> bool:
    """``_kind_of`` would find ``kind`` in ``data`` (``e``, or a bookTicker's shape)."""
    return event == kind or (event is None and kind == "bookTicker" and "u" in data)


def _remember(stream: str, symbol: str, kind: str) -> None:
    if len(_STREAMS) >= STREAMS_MEMO:
        _STREAMS.clear()
    _STREAMS[stream] = (symbol, kind)


def _from_model(kind: str, data: dict[str, Any], stream: str | None, received_at: int) -> Parsed:
    payload = _validate(PAYLOAD_MODELS[kind], data, kind, stream)
    if isinstance(payload, ShutdownPayload):
        return Shutdown(payload.E)
    _check_symbol(stream, payload.s)  # type: ignore[attr-defined]
    if isinstance(payload, TradePayload):
        return trade_message(payload, received_at)
    if isinstance(payload, AggTradePayload):
        return agg_trade_message(payload, received_at)
    assert isinstance(payload, BookTickerPayload)  # noqa: S101 - PAYLOAD_MODELS has no other
    return book_ticker_message(payload, received_at)


def _loads(raw: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    if type(doc) is not dict:
        raise ParseError(f"not a JSON object but {type(doc).__name__}")
    data = doc.get("data")
    # Rule 6, first test: every member written has its colon, so the colons are at least the keys
    # written, which are at least the keys decoded; equal to the top level's and ``data``'s keys,
    # all three are equal and no key was written twice
    least = len(doc) + (len(data) if type(data) is dict else 0)
    if raw.count(b":") != least and _key_ends(raw) != _count_keys(doc):
        _reject_duplicate_keys(raw)
    return doc


def _key_ends(raw: bytes) -> int:
    """At least the number of keys written in ``raw`` (Rule 6); exact for compact JSON without
    ``":`` inside strings. ``bytes.count`` when no colon follows whitespace, else the regex."""
    if _SPACED_COLON.search(raw) is None:
        return raw.count(b'":')
    return len(_KEY_END.findall(raw))


def _count_keys(value: Any) -> int:
    """Keys of every object in a decoded JSON value."""
    kind = type(value)
    if kind is dict:
        n = len(value)
        for v in value.values():
            if type(v) is dict or type(v) is list:
                n += _count_keys(v)
        return n
    return sum(_count_keys(v) for v in value) if kind is list else 0


class _DuplicateKey(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _reject_duplicate_keys(raw: bytes) -> None:
    """The exact test behind Rule 6's fast one: raise ParseError naming a repeated key."""
    try:
        json.loads(raw, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as exc:
        raise ParseError(f"duplicate key {str(exc.args[0])[:40]!r} in a JSON object") from None
    except ValueError:  # orjson accepted it, so this cannot happen; be strict anyway
        raise ParseError("invalid JSON") from None


def _unwrap(doc: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Split a combined-stream envelope into (stream name, payload); raw payloads pass."""
    if "stream" not in doc and "data" not in doc:
        return None, doc
    stream, data = doc.get("stream"), doc.get("data")
    if not isinstance(stream, str):
        raise ParseError("combined envelope: 'stream' is not a string")
    if not isinstance(data, dict):
        raise ParseError("combined envelope: 'data' is not an object", stream)
    return stream, data


def _kind_of(stream: str | None, data: dict[str, Any]) -> str:
    """The payload type: its ``e`` (or bookTicker's shape), checked against the stream name."""
    event = data.get("e")
    kind = event if event is not None else ("bookTicker" if "u" in data else None)
    if not isinstance(kind, str) or kind not in PAYLOAD_MODELS:
        raise ParseError(f"unknown event type {str(kind)[:40]!r}", stream)
    if stream is None:
        return kind
    expected = "serverShutdown" if stream == SHUTDOWN_STREAM else stream.rpartition("@")[2]
    if expected != kind:
        raise ParseError(f"stream {stream[:60]!r} carries a {kind!r} event", stream)
    return kind


def _validate(model: type[BaseModel], data: dict[str, Any], what: str, stream: str | None) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ParseError(f"invalid {what}: {describe(exc)}", stream) from None


def describe(exc: ValidationError) -> str:
    """The first three validation errors as ``field: message`` on one line."""
    parts = []
    for err in exc.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "value"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _check_symbol(stream: str | None, symbol: str) -> None:
    if stream is not None and stream.partition("@")[0] != symbol.lower():
        raise ParseError(f"symbol {symbol!r} does not match stream {stream[:60]!r}", stream)


def trade_message(p: TradePayload, received_at: int) -> TradeMessage:
    return {
        "v": CONTRACT_VERSION, "type": "trade", "symbol": p.s, "id": p.t, "price": p.p,
        "qty": p.q, "first_id": None, "last_id": None, "trade_time": p.T, "event_time": p.E,
        "buyer_maker": p.m, "best_match": p.M, "received_at": received_at, "source": "stream",
    }  # fmt: skip


def agg_trade_message(p: AggTradePayload, received_at: int) -> TradeMessage:
    return {
        "v": CONTRACT_VERSION, "type": "aggTrade", "symbol": p.s, "id": p.a, "price": p.p,
        "qty": p.q, "first_id": p.f, "last_id": p.l, "trade_time": p.T, "event_time": p.E,
        "buyer_maker": p.m, "best_match": p.M, "received_at": received_at, "source": "stream",
    }  # fmt: skip


def book_ticker_message(p: BookTickerPayload, received_at: int) -> BookTickerMessage:
    return {
        "v": CONTRACT_VERSION, "type": "bookTicker", "symbol": p.s, "update_id": p.u,
        "bid_price": p.b, "bid_qty": p.B, "ask_price": p.a, "ask_qty": p.A,
        "received_at": received_at, "source": "stream",
    }  # fmt: skip


def parse_rest_rows(stream: str, symbol: str, body: bytes, received_at: int) -> list[TradeMessage]:
    """A ``historicalTrades`` (stream "trade") or ``aggTrades`` body -> messages, source "rest"."""
    try:
        if stream == "trade":
            return [_rest_trade(r, symbol, received_at) for r in _REST_TRADES.validate_json(body)]
        return [_rest_agg(r, symbol, received_at) for r in _REST_AGGS.validate_json(body)]
    except ValidationError as exc:
        raise ParseError(f"invalid REST {stream} rows: {describe(exc)}") from None


def _rest_trade(r: RestTrade, symbol: str, received_at: int) -> TradeMessage:
    return {
        "v": CONTRACT_VERSION, "type": "trade", "symbol": symbol, "id": r.id, "price": r.price,
        "qty": r.qty, "first_id": None, "last_id": None, "trade_time": r.time,
        "event_time": None, "buyer_maker": r.isBuyerMaker, "best_match": r.isBestMatch,
        "received_at": received_at, "source": "rest",
    }  # fmt: skip


def _rest_agg(r: RestAggTrade, symbol: str, received_at: int) -> TradeMessage:
    return {
        "v": CONTRACT_VERSION, "type": "aggTrade", "symbol": symbol, "id": r.a, "price": r.p,
        "qty": r.q, "first_id": r.f, "last_id": r.l, "trade_time": r.T, "event_time": None,
        "buyer_maker": r.m, "best_match": r.M, "received_at": received_at, "source": "rest",
    }  # fmt: skip
