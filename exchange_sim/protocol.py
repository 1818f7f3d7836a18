"""WebSocket control protocol and stream naming (pure).

Owns what a connection is subscribed to and how each client message is answered. Never
touches a socket: :meth:`Session.handle` takes the text of one client message and returns the
reply plus the subscription changes, which the hub applies to its routing index.

Rule 1: replies follow Binance's shapes exactly: ``{"result":...,"id":...}`` on success,
        ``{"error":{"code":C,"msg":M},"id":...}`` on failure; a failed request changes nothing.
Rule 2: a request is checked in this order: JSON syntax (code 3), object shape, ``id`` type,
        ``method`` present and known, then parameters (codes 2, 0, 1). Error replies carry the
        request's id once it was read as valid, else null.
Rule 2a: an ``id`` is valid when it is null/absent, a signed 64-bit integer, or any string of at
        most 36 characters (UUIDs with hyphens included: Binance's own SDK sends them). Anything
        else (floats, booleans, arrays, objects, longer strings, integers past 64 bits) gets the
        exchange's code 2 ``request ID must be an unsigned integer`` (its wording, not ours).
Rule 3: a well-formed stream name is accepted whether or not its symbol exists; a malformed
        one fails the whole request with code 2 ``Invalid request: invalid stream``.
Rule 4: a connection never holds more than ``max_streams`` streams.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_INTERVALS = "1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M"
STREAM_NAME = re.compile(
    r"^(?:[a-z0-9]{1,20}@(?:trade|aggTrade|bookTicker|avgPrice|miniTicker|ticker|ticker_(?:1h|4h|1d)"
    rf"|depth(?:5|10|20)?(?:@100ms|@1000ms)?|kline_(?:{_INTERVALS})(?:@\+08:00)?)"
    r"|!(?:miniTicker|ticker|ticker_(?:1h|4h|1d))@arr)$"
)
TIME_UNITS = {"MICROSECOND": True, "microsecond": True, "MILLISECOND": False, "millisecond": False}
ID_TEXT_MAX = 36  # Binance: "a string of up to 36 characters"; its own SDK sends uuid4() with hyphens
INT64 = (-(2**63), 2**63 - 1)


class ProtocolError(Exception):
    """A request that gets an error reply (code and message as Binance sends them)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


@dataclass(frozen=True)
class Outcome:
    """The reply to one client message and the streams it added or removed."""

    reply: dict[str, Any]
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass
class Session:
    """Subscriptions (in subscription order) and properties of one connection."""

    combined: bool
    max_streams: int
    streams: dict[str, None] = field(default_factory=dict)

    def handle(self, text: str) -> Outcome:
        """Answer one client text message (never raises)."""
        request_id: Any = None
        try:
            request = _parse(text)
            request_id = _request_id(request)
            method = _method(request, text)
            return _DISPATCH[method](self, request.get("params"), request_id)
        except ProtocolError as exc:
            return Outcome({"error": {"code": exc.code, "msg": exc.msg}, "id": request_id})

    def _subscribe(self, params: Any, request_id: Any) -> Outcome:
        names = _stream_params(params)
        added = tuple(n for n in dict.fromkeys(names) if n not in self.streams)
        if len(self.streams) + len(added) > self.max_streams:
            raise ProtocolError(
                2, f"Invalid request: too many streams (at most {self.max_streams} per connection)"
            )
        self.streams.update(dict.fromkeys(added))
        return Outcome({"result": None, "id": request_id}, added=added)

    def _unsubscribe(self, params: Any, request_id: Any) -> Outcome:
        names = _stream_params(params)
        removed = tuple(n for n in dict.fromkeys(names) if n in self.streams)
        for name in removed:
            del self.streams[name]
        return Outcome({"result": None, "id": request_id}, removed=removed)

    def _list(self, params: Any, request_id: Any) -> Outcome:
        if params:
            raise ProtocolError(2, "Invalid request: too many parameters")
        return Outcome({"result": list(self.streams), "id": request_id})

    def _set_property(self, params: Any, request_id: Any) -> Outcome:
        _property_name(params, 2)
        value = params[1] if len(params) > 1 else None
        if not isinstance(value, bool):
            raise ProtocolError(1, "Invalid value type: expected Boolean")
        self.combined = value
        return Outcome({"result": None, "id": request_id})

    def _get_property(self, params: Any, request_id: Any) -> Outcome:
        _property_name(params, 1)
        return Outcome({"result": self.combined, "id": request_id})


_DISPATCH = {
    "SUBSCRIBE": Session._subscribe,
    "UNSUBSCRIBE": Session._unsubscribe,
    "LIST_SUBSCRIPTIONS": Session._list,
    "SET_PROPERTY": Session._set_property,
    "GET_PROPERTY": Session._get_property,
}


def _parse(text: str) -> dict[str, Any]:
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(
            3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(request, dict):
        raise ProtocolError(2, "Invalid request: expected a JSON object")
    return request


def _method(request: dict[str, Any], text: str) -> str:
    method = request.get("method")
    if "method" not in request:
        raise ProtocolError(2, f"Invalid request: missing field `method` at line 1 column {len(text)}")
    if method not in METHODS:
        expected = ", ".join(f"`{m}`" for m in METHODS)
        column = text.find(str(method)) + len(str(method)) + 1 if isinstance(method, str) else len(text)
        raise ProtocolError(
            2,
            f"Invalid request: unknown variant `{method}`, expected one of {expected} "
            f"at line 1 column {column}",
        )
    return str(method)


def _request_id(request: dict[str, Any]) -> Any:
    value = request.get("id")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and INT64[0] <= value <= INT64[1]:
        return value
    if isinstance(value, str) and len(value) <= ID_TEXT_MAX:
        return value
    raise ProtocolError(2, "Invalid request: request ID must be an unsigned integer")


def _stream_params(params: Any) -> list[str]:
    if not isinstance(params, list):
        raise ProtocolError(2, "Invalid request: missing or invalid field `params`")
    if not all(isinstance(p, str) and STREAM_NAME.match(p) for p in params):
        raise ProtocolError(2, "Invalid request: invalid stream")
    return list(params)


def _property_name(params: Any, arity: int) -> str:
    if not isinstance(params, list) or not params or not isinstance(params[0], str):
        raise ProtocolError(2, "Invalid request: property name must be a string")
    if len(params) > arity:
        raise ProtocolError(2, "Invalid request: too many parameters")
    if params[0] != "combined":
        raise ProtocolError(0, "Unknown property")
    return params[0]


def parse_url(path: str, query: dict[str, str]) -> tuple[list[str], bool, bool]:
    """Streams, combined flag and microsecond flag of a connection URL.

    Raises ValueError for an unknown path, a malformed stream name or a bad ``timeUnit``.
    """
    unit = query.get("timeUnit", "MILLISECOND")
    if unit not in TIME_UNITS:
        raise ValueError(f"invalid timeUnit: {unit}")
    if path == "/stream" or path == "/stream/":
        names, combined = [n for n in query.get("streams", "").split("/") if n], True
    elif path == "/ws" or path.startswith("/ws/"):
        names, combined = [n for n in path[4:].split("/") if n], False
    else:
        raise ValueError(f"unknown path: {path}")
    bad = [n for n in names if not STREAM_NAME.match(n)]
    if bad:
        raise ValueError(f"invalid stream: {bad[0]}")
    return list(dict.fromkeys(names)), combined, TIME_UNITS[unit]


def reply_bytes(reply: dict[str, Any]) -> bytes:
    """Serialize a control reply exactly as sent."""
    return orjson.dumps(reply)
