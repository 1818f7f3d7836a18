"""Readers of recorded Binance data for replay (pure apart from reading the file).

Owns format sniffing and the mapping of recorded records to :class:`Event`. Never paces,
never sends. Formats (sniffed from the first lines, gzip/zip detected by magic bytes):

===============  ==========================================================================
``frames``       ``<receive_ts> <combined JSON>`` (hftbacktest; ts in ns or us)
``cryptofeed``   ``<float seconds>: <JSON>``; ``wss://`` / ``https:// ... ->`` lines skipped
``jsonl``        one raw or combined JSON message per line, no receive time
``bdp_csv``      Binance-Data-Processor CSV with the ``TimestampOfReceive,...`` header
``vision``       data.binance.vision trades (7 columns) or aggTrades (8 columns) CSV,
                 header optional, symbol taken from the file name
===============  ==========================================================================

Rule 1: recorded values are kept byte-for-byte: prices and quantities stay the recorded
        strings, extra fields (old ``b``/``a`` order ids) stay in the body.
Rule 2: every timestamp's unit is sniffed by :func:`epoch_to_us`, never assumed; the body
        carries milliseconds, ``Event.times_us`` microseconds.
Rule 3: lines that are not trade, aggTrade or bookTicker messages (depthUpdate, kline, REST
        snapshots without an envelope, header lines) are skipped; an unreadable line raises
        :class:`ReplayFormatError` naming the file and line.
Rule 4: ``read_with_depth`` also yields depthUpdate events (kind from the combined stream name:
        ``depth`` for ``<s>@depth``, else ``depth@100ms``; one lacking U, u, b or a is skipped) and
        each bare REST snapshot line (``lastUpdateId``, ``bids``, ``asks``) as a
        :class:`RecordedSnapshot` of the symbol of the depth events before it (else the default
        symbol; with neither it is skipped).
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import orjson

from exchange_sim.book import OrderBook, from_snapshot
from exchange_sim.depth import DEPTH_1S, DEPTH_100MS
from exchange_sim.errors import ReplayFormatError
from exchange_sim.events import Event, agg_event, book_event, trade_event
from exchange_sim.units import epoch_to_us, float_seconds_to_us

VISION_NAME = re.compile(r"^([A-Z0-9]+)-(trades|aggTrades)-")
BOOK_KEYS = frozenset("usbBaA")
DEPTH_KEYS = frozenset("EsUuba")


@dataclass(frozen=True)
class Recorded:
    """A replayable event and the recorded clock (us) it is paced by."""

    clock_us: int
    event: Event


@dataclass(frozen=True)
class RecordedSnapshot:
    """A recording's inline REST depth snapshot (Rule 4) and the recorded clock (us)."""

    clock_us: int
    symbol: str | None
    book: OrderBook


Record = Recorded | RecordedSnapshot


def open_lines(path: Path) -> Iterator[str]:
    """Text lines of a plain, gzip or zip (first member) file, newline stripped."""
    with path.open("rb") as raw:
        magic = raw.read(4)
    if magic[:2] == b"\x1f\x8b":
        stream: io.TextIOBase = io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    elif magic == b"PK\x03\x04":
        archive = zipfile.ZipFile(path)
        stream = io.TextIOWrapper(archive.open(archive.namelist()[0]), encoding="utf-8")
    else:
        stream = io.TextIOWrapper(path.open("rb"), encoding="utf-8")
    with stream:
        for line in stream:
            yield line.rstrip("\r\n")


def sniff(lines: list[str]) -> str:
    """Name the format of a file from its first non-empty lines."""
    for line in lines:
        if line.startswith(("wss://", "https://")) or re.match(r"^\d+\.\d+: ", line):
            return "cryptofeed"
        if re.match(r"^\d+ [\[{]", line):
            return "frames"
        if line.startswith("{"):
            return "jsonl"
        if line.startswith("TimestampOfReceive,"):
            return "bdp_csv"
        if line.count(",") in (6, 7):
            return "vision"
    raise ReplayFormatError(f"unknown replay format; first line: {lines[:1]!r}")


def read_file(path: Path, default_symbol: str | None = None) -> Iterator[Recorded]:
    """Sniff ``path`` and yield its trade, aggTrade and bookTicker events in file order."""
    for record in _read(path, default_symbol, False):
        if isinstance(record, Recorded):
            yield record


def read_with_depth(path: Path, default_symbol: str | None = None) -> Iterator[Record]:
    """Like :func:`read_file`, with depthUpdate events and inline snapshots too (Rule 4)."""
    last_symbol = default_symbol
    for record in _read(path, default_symbol, True):
        if isinstance(record, Recorded):
            if record.event.kind in (DEPTH_100MS, DEPTH_1S):
                last_symbol = record.event.symbol
            yield record
        elif last_symbol is not None:
            yield RecordedSnapshot(record.clock_us, last_symbol, record.book)


def _read(path: Path, default_symbol: str | None, depth: bool) -> Iterator[Record]:
    lines = open_lines(path)
    head = [line for _, line in zip(range(20), lines, strict=False)]
    fmt = sniff([line for line in head if line.strip()])
    every = chain(head, lines)
    if fmt == "vision":
        yield from _read_vision(path, every, default_symbol)
        return
    if fmt == "bdp_csv":
        yield from _read_bdp(path, every)
        return
    parse = {"cryptofeed": _parse_cryptofeed, "frames": _parse_frames, "jsonl": _parse_jsonl}[fmt]
    for number, line in enumerate(every, 1):
        try:
            record = parse(line, depth) if line.strip() else None
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise ReplayFormatError(f"{path}:{number}: unreadable line: {exc}") from exc
        if record is not None:
            yield record


def _parse_frames(line: str, depth: bool = False) -> Record | None:
    stamp, _, text = line.partition(" ")
    return from_message(orjson.loads(text), epoch_to_us(int(stamp)), depth)


def _parse_cryptofeed(line: str, depth: bool = False) -> Record | None:
    if line.startswith(("wss://", "https://")):
        return None
    stamp, _, text = line.partition(": ")
    return from_message(orjson.loads(text), float_seconds_to_us(stamp), depth)


def _parse_jsonl(line: str, depth: bool = False) -> Record | None:
    return from_message(orjson.loads(line), None, depth)


def from_message(message: Any, clock_us: int | None, depth: bool = False) -> Record | None:
    """Map one recorded raw or combined message to a replayable event, or None to skip."""
    if not isinstance(message, dict):
        return None
    if depth and {"lastUpdateId", "bids", "asks"} <= message.keys():
        book = from_snapshot(int(message["lastUpdateId"]), message["bids"], message["asks"])
        return RecordedSnapshot(clock_us or 0, None, book)
    data = message.get("data", message) if "stream" in message else message
    if not isinstance(data, dict):
        return None
    stream = message.get("stream")
    event = depth_from_payload(data, stream) if depth else None
    event = event or event_from_payload(data)
    if event is None:
        return None
    return Recorded(clock_us if clock_us is not None else event.time_us, event)


def event_from_payload(data: dict[str, Any]) -> Event | None:
    """Build an event from a bare recorded payload, keeping its values as recorded."""
    kind = data.get("e")
    if kind in ("trade", "aggTrade"):
        body = dict(data)
        event_us, trade_us = epoch_to_us(int(body["E"])), epoch_to_us(int(body["T"]))
        body["E"], body["T"] = event_us // 1000, trade_us // 1000
        build = trade_event if kind == "trade" else agg_event
        return build(str(body["s"]), body, event_us, trade_us)
    if kind is None and BOOK_KEYS <= data.keys():
        return book_event(str(data["s"]), dict(data))
    return None


def depth_from_payload(data: dict[str, Any], stream: Any) -> Event | None:
    """A recorded depthUpdate as an event of its speed (Rule 4), values kept as recorded."""
    if data.get("e") != "depthUpdate" or not DEPTH_KEYS <= data.keys():
        return None
    kind = DEPTH_1S if isinstance(stream, str) and stream.endswith("@depth") else DEPTH_100MS
    body = dict(data)
    event_us = epoch_to_us(int(body["E"]))
    body["E"] = event_us // 1000
    return Event(kind, str(body["s"]), int(body["u"]), body, {"E": event_us})


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _read_bdp(path: Path, lines: Iterator[str]) -> Iterator[Recorded]:
    header = next(lines).split(",")
    col = {name: i for i, name in enumerate(header)}
    for number, line in enumerate(lines, 2):
        if not line.strip():
            continue
        try:
            f = line.split(",")
            event_us, trade_us = (
                epoch_to_us(int(f[col["EventTime"]])),
                epoch_to_us(int(f[col["TransactionTime"]])),
            )
            symbol = f[col["Symbol"]]
            body = {
                "e": "trade",
                "E": event_us // 1000,
                "s": symbol,
                "t": int(f[col["TradeId"]]),
                "p": f[col["Price"]],
                "q": f[col["Quantity"]],
                "T": trade_us // 1000,
                "m": _bool(f[col["IsBuyerMarketMaker"]]),
                "M": _bool(f[col["MUnknownParameter"]]),
            }
            clock = epoch_to_us(int(f[col["TimestampOfReceive"]]))
        except (ValueError, KeyError, IndexError) as exc:
            raise ReplayFormatError(f"{path}:{number}: unreadable row: {exc}") from exc
        yield Recorded(clock, trade_event(symbol, body, event_us, trade_us))


def _read_vision(path: Path, lines: Iterator[str], default_symbol: str | None) -> Iterator[Recorded]:
    match = VISION_NAME.match(path.name)
    symbol = match.group(1) if match else default_symbol
    if symbol is None:
        raise ReplayFormatError(f"{path}: cannot tell the symbol from the file name; pass --symbols")
    for number, line in enumerate(lines, 1):
        f = line.split(",")
        if not line.strip() or (number == 1 and not f[0].strip().isdigit()):
            continue  # blank line or header row
        try:
            yield Recorded(*_vision_row(symbol, f))
        except (ValueError, IndexError) as exc:
            raise ReplayFormatError(f"{path}:{number}: unreadable row: {exc}") from exc


def _vision_row(symbol: str, f: list[str]) -> tuple[int, Event]:
    if len(f) == 7:  # trade id, price, qty, quoteQty, time, isBuyerMaker, isBestMatch
        t_us = epoch_to_us(int(f[4]))
        body = {
            "e": "trade",
            "E": t_us // 1000,
            "s": symbol,
            "t": int(f[0]),
            "p": f[1],
            "q": f[2],
            "T": t_us // 1000,
            "m": _bool(f[5]),
            "M": _bool(f[6]),
        }
        return t_us, trade_event(symbol, body, t_us, t_us)
    if len(f) == 8:  # agg id, price, qty, first id, last id, time, isBuyerMaker, isBestMatch
        t_us = epoch_to_us(int(f[5]))
        body = {
            "e": "aggTrade",
            "E": t_us // 1000,
            "s": symbol,
            "a": int(f[0]),
            "p": f[1],
            "q": f[2],
            "f": int(f[3]),
            "l": int(f[4]),
            "T": t_us // 1000,
            "m": _bool(f[6]),
            "M": _bool(f[7]),
        }
        return t_us, agg_event(symbol, body, t_us, t_us)
    raise ValueError(f"expected 7 or 8 columns, got {len(f)}")
