"""Pure decoding: one Kafka message value -> one database row, or ``DecodeError``.

Rules:
  1. Every input is either accepted or rejected with ``DecodeError`` (its ``reason`` names the
     field); nothing else escapes. Property-tested.
  2. Prices and quantities stay the exchange's decimal text; they never pass through float.
     Ranges (negative, too large) are the database's CHECKs to judge, so there is one
     authority for them; decoding only guarantees well-formed decimal text.
  3. A row for a COPY table (trades, book_ticker) is one line of PostgreSQL COPY text format.
     Every text field is validated against a pattern that excludes tab, newline and backslash,
     so no escaping is needed and no message can inject a column or a row.
  4. Times are integer microseconds since the epoch (UTC) in the message and
     ``YYYY-MM-DD HH:MM:SS.ffffff+00`` in the row: exact, no float.
  5. A trade, the worker's hot path, is decoded first by ``_trade_fast``: every check inline,
     returning the row only when all pass (a symbol seen before), else nothing, and then the
     field-by-field ``_trade_checked`` decides, with its reason. A property test holds the two
     to the same rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from binance_pipeline.common.events import (
    CONTRACT_VERSION,
    GAP_KINDS,
    GAP_STATUS_RANK,
    STREAM_TYPES,
    SYMBOL_RE,
    TEXT_RE,
)
from binance_pipeline.common.utc import at_us
from consumer.errors import DecodeError

TRADES, BOOK_TICKER, GAPS = "trades", "book_ticker", "gaps"
COPY_TABLES = (TRADES, BOOK_TICKER)

# Column order of the COPY lines; sink.py uses the same tuples.
TRADE_COLUMNS = (
    "time", "symbol", "type", "id", "first_id", "last_id", "price", "qty",
    "buyer_maker", "best_match", "event_time", "received_at", "source",
)
BOOK_COLUMNS = ("time", "symbol", "update_id", "bid_price", "bid_qty", "ask_price", "ask_qty")
GAP_COLUMNS = (
    "gap_id", "symbol", "stream", "kind", "first_id", "last_id", "start_time", "end_time",
    "missing", "reason", "status", "detected_at", "repaired_at",
)

Row = str | tuple[Any, ...]
Decoded = tuple[Row, int]  # (row, received_at in µs)

_DECIMAL = re.compile(r"-?[0-9]{1,40}(?:\.[0-9]{1,40})?")
_TEXT = TEXT_RE  # the contract's text fields (events.py Rule 5), the same pattern ingestion writes to
_MAX_US = 253_402_300_800_000_000  # 10000-01-01T00:00:00Z, exclusive
_NULL = "\\N"
_TRADE_TYPES = ("trade", "aggTrade")
_SOURCES = ("stream", "rest", "archive")
_SECOND_CACHE: dict[int, str] = {}
_SYMBOLS: set[str] = set()


def _obj(value: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}"[:200]) from None
    if type(obj) is not dict:
        raise DecodeError("not a JSON object")
    version = obj.get("v")
    if version != CONTRACT_VERSION or type(version) is not int:
        raise DecodeError(f"unsupported contract version {version!r}"[:200])
    return obj


def _field(obj: dict[str, Any], name: str) -> Any:
    try:
        return obj[name]
    except KeyError:
        raise DecodeError(f"missing field {name}") from None


def _int(obj: dict[str, Any], name: str) -> int:
    value = _field(obj, name)
    if type(value) is int:
        return value
    raise DecodeError(f"field {name} must be an integer")


def _int_or_none(obj: dict[str, Any], name: str) -> int | None:
    value = _field(obj, name)
    if value is None or type(value) is int:
        return value
    raise DecodeError(f"field {name} must be an integer or null")


def _time(obj: dict[str, Any], name: str) -> int:
    value = _int(obj, name)
    if not 0 <= value < _MAX_US:
        raise DecodeError(f"field {name} is out of range for a time in microseconds")
    return value


def _time_or_none(obj: dict[str, Any], name: str) -> int | None:
    return None if _field(obj, name) is None else _time(obj, name)


def _decimal(obj: dict[str, Any], name: str) -> str:
    value = _field(obj, name)
    if type(value) is str and _DECIMAL.fullmatch(value):
        return value
    raise DecodeError(f"field {name} must be a decimal string")


def _bool(obj: dict[str, Any], name: str, nullable: bool = False) -> bool | None:
    value = _field(obj, name)
    if type(value) is bool or (value is None and nullable):
        return value
    raise DecodeError(f"field {name} must be a boolean{' or null' if nullable else ''}")


def _choice(obj: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = _field(obj, name)
    if value in allowed and type(value) is str:
        return value
    raise DecodeError(f"field {name} must be one of {', '.join(allowed)}")


def _symbol(obj: dict[str, Any]) -> str:
    value = _field(obj, "symbol")
    if type(value) is not str:
        raise DecodeError("field symbol must be a string")
    if value in _SYMBOLS:
        return value
    if SYMBOL_RE.match(value):
        if len(_SYMBOLS) < 100_000:
            _SYMBOLS.add(value)
        return value
    raise DecodeError("field symbol must match [A-Z0-9]{2,20}")


def _text(obj: dict[str, Any], name: str) -> str:
    value = _field(obj, name)
    if type(value) is str and _TEXT.fullmatch(value):
        return value
    raise DecodeError(f"field {name} must be 1-200 printable ASCII characters")


def timestamp_text(us: int) -> str:
    """Microseconds since the epoch as PostgreSQL timestamptz text (cached per second)."""
    second, micro = divmod(us, 1_000_000)
    prefix = _SECOND_CACHE.get(second)
    if prefix is None:
        if len(_SECOND_CACHE) >= 100_000:
            _SECOND_CACHE.clear()
        t = at_us(second * 1_000_000)
        prefix = f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}."
        _SECOND_CACHE[second] = prefix
    return f"{prefix}{str(1_000_000 + micro)[1:]}+00"  # zero-padded; cheaper than a format spec


def to_datetime(us: int | None) -> datetime | None:
    """Microseconds since the epoch as an aware UTC datetime (exact integer arithmetic)."""
    return None if us is None else at_us(us)


def _opt(value: int | None) -> str:
    return _NULL if value is None else str(value)


def _flag(value: bool | None) -> str:
    return _NULL if value is None else ("t" if value else "f")


def decode_trade(value: bytes) -> Decoded:
    """A trades-topic message -> a COPY line for ``trades`` (columns TRADE_COLUMNS); Rule 5."""
    decoded = _trade_fast(value)
    return decoded if decoded is not None else _trade_checked(value)


def _trade_checked(value: bytes) -> Decoded:
    """``decode_trade`` one field at a time: the row, or DecodeError naming the field."""
    o = _obj(value)
    kind = _choice(o, "type", _TRADE_TYPES)
    received, event_time = _time(o, "received_at"), _time_or_none(o, "event_time")
    fields = (
        timestamp_text(_time(o, "trade_time")), _symbol(o), kind, str(_int(o, "id")),
        _opt(_int_or_none(o, "first_id")), _opt(_int_or_none(o, "last_id")),
        _decimal(o, "price"), _decimal(o, "qty"), _flag(_bool(o, "buyer_maker")),
        _flag(_bool(o, "best_match", True)),
        _NULL if event_time is None else timestamp_text(event_time),
        timestamp_text(received), _choice(o, "source", _SOURCES),
    )
    return "\t".join(fields) + "\n", received


def _trade_fast(value: bytes) -> Decoded | None:
    """Rule 5: the same row as ``_trade_checked`` for a message that passes every one of its checks
    (written out inline, the worker's hot path), else None (and ``_trade_checked`` says why)."""
    try:
        o = orjson.loads(value)
        v, kind, symbol, ident = o["v"], o["type"], o["symbol"], o["id"]
        first, last, price, qty = o["first_id"], o["last_id"], o["price"], o["qty"]
        maker, best, at, event, received = o["buyer_maker"], o["best_match"], o["trade_time"], \
            o["event_time"], o["received_at"]
        source = o["source"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not (type(v) is int and v == CONTRACT_VERSION and type(kind) is str and kind in _TRADE_TYPES
            and type(symbol) is str and symbol in _SYMBOLS and type(ident) is int
            and (first is None or type(first) is int) and (last is None or type(last) is int)
            and type(price) is str and _DECIMAL.fullmatch(price) and type(qty) is str
            and _DECIMAL.fullmatch(qty) and type(maker) is bool and (best is None or type(best) is bool)
            and type(at) is int and 0 <= at < _MAX_US and type(received) is int and 0 <= received < _MAX_US
            and (event is None or (type(event) is int and 0 <= event < _MAX_US))
            and type(source) is str and source in _SOURCES):
        return None
    return (f"{timestamp_text(at)}\t{symbol}\t{kind}\t{ident}\t{_opt(first)}\t{_opt(last)}\t{price}\t{qty}\t"
            f"{_flag(maker)}\t{_flag(best)}\t{_NULL if event is None else timestamp_text(event)}\t"
            f"{timestamp_text(received)}\t{source}\n"), received


def decode_book_ticker(value: bytes) -> Decoded:
    """A book-ticker message -> a COPY line for ``book_ticker`` (time = receipt time)."""
    o = _obj(value)
    _choice(o, "type", ("bookTicker",))
    received = _time(o, "received_at")
    fields = (
        timestamp_text(received), _symbol(o), str(_int(o, "update_id")),
        _decimal(o, "bid_price"), _decimal(o, "bid_qty"),
        _decimal(o, "ask_price"), _decimal(o, "ask_qty"),
    )
    return "\t".join(fields) + "\n", received


def decode_gap(value: bytes) -> Decoded:
    """A gap record -> a parameter tuple for ``gaps`` (columns GAP_COLUMNS)."""
    o = _obj(value)
    _choice(o, "type", ("gap",))
    detected = _time(o, "detected_at")
    row = (
        _text(o, "gap_id"), _symbol(o), _choice(o, "stream", STREAM_TYPES),
        _choice(o, "kind", GAP_KINDS), _int_or_none(o, "first_id"),
        _int_or_none(o, "last_id"), to_datetime(_time_or_none(o, "start_time")),
        to_datetime(_time_or_none(o, "end_time")), _int_or_none(o, "missing"),
        _text(o, "reason"), _choice(o, "status", tuple(GAP_STATUS_RANK)),
        to_datetime(detected), to_datetime(_time_or_none(o, "repaired_at")),
    )
    return row, detected


DECODERS: dict[str, Callable[[bytes], Decoded]] = {
    TRADES: decode_trade,
    BOOK_TICKER: decode_book_ticker,
    GAPS: decode_gap,
}


def decode(table: str, value: bytes | None) -> Decoded:
    """Decode a message for ``table``; DecodeError for anything else (Rule 1)."""
    if value is None:
        raise DecodeError("empty message value (tombstone)")
    return DECODERS[table](value)
