"""Market events and their pre-serialized frames (pure).

Owns the one representation of an event that the whole simulator shares: the stream name,
its JSON body with millisecond times, the same times in microseconds, and up to four cached
WebSocket frames (raw/combined x ms/us). It never writes to a socket.

Rule 1: a frame variant is serialized at most once per event, however many connections
        receive it: every connection gets the very same bytes.
Rule 2: the body is emitted exactly as held: recorded strings stay byte-identical, and key
        order is the order of the body dict.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from exchange_sim.frames import text_frame

TRADE: Final = "trade"
AGG_TRADE: Final = "aggTrade"
BOOK_TICKER: Final = "bookTicker"
KINDS: Final = (TRADE, AGG_TRADE, BOOK_TICKER)

Body = dict[str, Any]


class Event:
    """One stream event of one symbol.

    ``body`` holds millisecond times; ``times_us`` maps the same time keys to microseconds
    (empty for bookTicker). ``ident`` is the id the stream is sequenced by: ``t``, ``a`` or
    ``u``. ``time_us`` is the trade time (0 for bookTicker).
    """

    __slots__ = ("_frames", "body", "ident", "kind", "stream", "symbol", "time_us", "times_us")

    def __init__(self, kind: str, symbol: str, ident: int, body: Body, times_us: dict[str, int]) -> None:
        self.kind = kind
        self.symbol = symbol
        self.stream = f"{symbol.lower()}@{kind}"
        self.ident = ident
        self.body = body
        self.times_us = times_us
        self.time_us = times_us.get("T", 0)
        self._frames: list[bytes | None] = [None, None, None, None]

    def payload(self, micro: bool) -> bytes:
        """The bare JSON payload in the requested time unit."""
        if micro and self.times_us:
            return orjson.dumps({**self.body, **self.times_us})
        return orjson.dumps(self.body)

    def frame(self, combined: bool, micro: bool) -> bytes:
        """The complete WebSocket text frame for one connection flavour (cached)."""
        index = (2 if combined else 0) + (1 if micro and self.times_us else 0)
        cached = self._frames[index]
        if cached is None:
            raw = self.payload(micro)
            if combined:
                raw = wrap_combined(self.stream, raw)
            cached = self._frames[index] = text_frame(raw)
        return cached


def wrap_combined(stream: str, raw: bytes) -> bytes:
    """Wrap a bare payload as ``{"stream":...,"data":...}`` without re-parsing it."""
    return b'{"stream":"' + stream.encode() + b'","data":' + raw + b"}"


def server_shutdown_frame(now_us: int, combined: bool, micro: bool) -> bytes:
    """The ``serverShutdown`` notice frame, raw or combined (``!serverShutdown``)."""
    raw = orjson.dumps({"e": "serverShutdown", "E": now_us if micro else now_us // 1000})
    if combined:
        raw = wrap_combined("!serverShutdown", raw)
    return text_frame(raw)


def trade_event(symbol: str, body: Body, event_us: int, trade_us: int) -> Event:
    """Build a trade event; ``body`` already has E/T in milliseconds."""
    return Event(TRADE, symbol, int(body["t"]), body, {"E": event_us, "T": trade_us})


def agg_event(symbol: str, body: Body, event_us: int, trade_us: int) -> Event:
    """Build an aggTrade event; ``body`` already has E/T in milliseconds."""
    return Event(AGG_TRADE, symbol, int(body["a"]), body, {"E": event_us, "T": trade_us})


def book_event(symbol: str, body: Body) -> Event:
    """Build a bookTicker event (spot: no time fields at all)."""
    return Event(BOOK_TICKER, symbol, int(body["u"]), body, {})
