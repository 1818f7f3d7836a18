"""The Kafka event contract between ingestion (producer) and the worker (consumer).

Every message value is one JSON object (UTF-8, written with orjson). Rules:
  1. Prices and quantities are JSON *strings* holding the exchange's exact decimal text
     ("67012.35000000"); they never pass through float on either side.
  2. Every time is an integer count of microseconds since the Unix epoch, UTC.
     Ingestion asks Binance for microseconds (``timeUnit=MICROSECOND`` on streams,
     ``X-MBX-TIME-UNIT: MICROSECOND`` on REST), so a trade has the same time whichever
     path brought it, and the database's unique keys dedupe across paths.
  3. The message key is the symbol (UTF-8), so one symbol's events stay in order in one
     partition. The Kafka timestamp is the receipt time (milliseconds).
  4. Unknown fields are ignored by readers; a field's meaning never changes. A breaking
     change bumps ``CONTRACT_VERSION`` and is carried in the ``v`` field.
  5. A gap record's text fields (``gap_id``, ``reason``) are 1-200 printable ASCII characters
     without backslash (``TEXT_RE``). Writers make them so with ``bounded_text`` where a record
     is built (ingestion/records.py), the worker's decoder refuses anything else; both read
     this module, so the worker never refuses a record ingestion wrote.

Topics and value shapes (``TOPIC_*`` settings name the topics):

  trades topic, ``type`` "trade" or "aggTrade":
    {"v":1, "type":"trade", "symbol":"BTCUSDT", "id":123 (t, or a for aggTrade),
     "price":"..", "qty":"..", "first_id":null|int (f), "last_id":null|int (l),
     "trade_time":us (T), "event_time":us|null (E; null when backfilled from REST),
     "buyer_maker":bool (m), "best_match":bool|null (M), "received_at":us,
     "source":"stream"|"rest"|"archive"}
     ("archive": imported from a data.binance.vision daily file by ingestion.history)

  book-ticker topic:
    {"v":1, "type":"bookTicker", "symbol":"BTCUSDT", "update_id":int (u),
     "bid_price":"..", "bid_qty":"..", "ask_price":"..", "ask_qty":"..", "received_at":us,
     "source":"stream"}

  gaps topic (one record when a gap is detected, another with the same gap_id when it is
  repaired or given up on; readers keep the most advanced status):
    {"v":1, "type":"gap", "gap_id":"BTCUSDT/trade/ids/1001-1050", "symbol":"BTCUSDT",
     "stream":"trade"|"aggTrade"|"bookTicker", "kind":"ids"|"time",
     "first_id":int|null, "last_id":int|null, "start_time":us|null, "end_time":us|null,
     "missing":int|null, "reason":"stream"|"reconnect"|"producer_overflow"|...,
     "status":"open"|"repaired"|"unrepairable", "detected_at":us, "repaired_at":us|null}

  dead-letter topic: the value is the offending raw bytes, unchanged; headers carry
  ``dlq.reason`` (text), ``dlq.stage`` ("ingestion"|"worker"), ``dlq.received_at`` (us),
  and from the worker ``dlq.topic``, ``dlq.partition``, ``dlq.offset``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Literal, TypedDict

import orjson

CONTRACT_VERSION = 1
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
STREAM_TYPES = ("trade", "aggTrade", "bookTicker")
TEXT_MAX = 200
_TEXT_CHARS = r"\x20-\x5b\x5d-\x7e"  # printable ASCII without backslash (Rule 5)
TEXT_RE = re.compile(f"[{_TEXT_CHARS}]{{1,{TEXT_MAX}}}")
_NOT_TEXT = re.compile(f"[^{_TEXT_CHARS}]")
CUT_MARKER = "..."
GAP_KINDS = ("ids", "time")

Source = Literal["stream", "rest", "archive"]
GapStatus = Literal["open", "repaired", "unrepairable"]
GAP_STATUS_RANK: dict[str, int] = {"open": 0, "repaired": 1, "unrepairable": 1}

HDR_REASON = "dlq.reason"
HDR_STAGE = "dlq.stage"
HDR_RECEIVED_AT = "dlq.received_at"
HDR_TOPIC = "dlq.topic"
HDR_PARTITION = "dlq.partition"
HDR_OFFSET = "dlq.offset"


class TradeMessage(TypedDict):
    v: int
    type: Literal["trade", "aggTrade"]
    symbol: str
    id: int
    price: str
    qty: str
    first_id: int | None
    last_id: int | None
    trade_time: int
    event_time: int | None
    buyer_maker: bool
    best_match: bool | None
    received_at: int
    source: Source


class BookTickerMessage(TypedDict):
    v: int
    type: Literal["bookTicker"]
    symbol: str
    update_id: int
    bid_price: str
    bid_qty: str
    ask_price: str
    ask_qty: str
    received_at: int
    source: Source


class GapMessage(TypedDict):
    v: int
    type: Literal["gap"]
    gap_id: str
    symbol: str
    stream: str
    kind: Literal["ids", "time"]
    first_id: int | None
    last_id: int | None
    start_time: int | None
    end_time: int | None
    missing: int | None
    reason: str
    status: GapStatus
    detected_at: int
    repaired_at: int | None


def id_gap_id(symbol: str, stream: str, first_id: int, last_id: int) -> str:
    """The stable key of a gap in ids: the same gap always gets the same key."""
    return f"{symbol}/{stream}/ids/{first_id}-{last_id}"


def time_gap_id(symbol: str, stream: str, start_time: int) -> str:
    """The stable key of a gap in time (bookTicker reconnect windows, dropped events)."""
    return f"{symbol}/{stream}/time/{start_time}"


def bounded_text(text: str) -> str:
    """``text`` made a valid text field (Rule 5): every other character becomes "?", an empty
    text "?", and a text over TEXT_MAX characters keeps its start and ends with CUT_MARKER."""
    clean = _NOT_TEXT.sub("?", text) or "?"
    if len(clean) <= TEXT_MAX:
        return clean
    return clean[: TEXT_MAX - len(CUT_MARKER)] + CUT_MARKER


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_text(value: object) -> bool:
    return type(value) is str and TEXT_RE.fullmatch(value) is not None


def _is_one_of(allowed: tuple[str, ...], value: object) -> bool:
    """A field with named values: one of ``allowed``, as a plain str. GAP_FIELDS binds ``allowed``
    with ``functools.partial`` (no function runs at import), so tests judge this under mutation."""
    return type(value) is str and value in allowed


GAP_FIELDS: dict[str, Callable[[object], bool]] = {
    "v": lambda value: _is_int(value) and value == CONTRACT_VERSION,
    "type": functools.partial(_is_one_of, ("gap",)),
    "gap_id": _is_text,
    "symbol": lambda value: type(value) is str and SYMBOL_RE.match(value) is not None,
    "stream": functools.partial(_is_one_of, STREAM_TYPES),
    "kind": functools.partial(_is_one_of, GAP_KINDS),
    **{name: lambda value: value is None or _is_int(value)
       for name in ("first_id", "last_id", "start_time", "end_time", "missing", "repaired_at")},
    "reason": _is_text,
    "status": functools.partial(_is_one_of, tuple(GAP_STATUS_RANK)),
    "detected_at": _is_int,
}


def gap_problem(obj: object) -> str | None:
    """Why ``obj`` is not a gap record of this contract, or None: the shape every reader may rely
    on, field by field (the worker's decoder also checks that times are in range)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    for name, valid in GAP_FIELDS.items():
        if name not in obj:
            return f"missing field {name}"
        if not valid(obj[name]):
            return f"field {name} does not follow the contract"
    if obj["kind"] == "ids" and (obj["first_id"] is None or obj["last_id"] is None):
        return "an id gap without first_id and last_id"
    return None


def encode(message: TradeMessage | BookTickerMessage | GapMessage) -> bytes:
    """Serialise a message value (orjson; strings stay strings, ints stay ints)."""
    return orjson.dumps(message)
