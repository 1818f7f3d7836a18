"""Which symbols to capture, and how to move the open connections there (pure, no I/O).

``SYMBOLS`` entries are exact symbols (``BTCUSDT``), patterns where ``*`` stands for any run of
A-Z/0-9 (``*USDT``, ``BTC*``), or ``ALL``. Patterns are resolved against exchangeInfo;
ingestion/refresh.py fetches it and hands the answer here, then hands the resulting
``Placement`` to the supervisor, which only applies it.

Rules:
  1. A pattern (or ALL) matches the symbols exchangeInfo lists with status TRADING; an exact
     symbol is always captured, whatever exchangeInfo says (it was asked for by name).
  2. A change of universe is (added, removed) symbols; streams that stay are never touched, so
     a refresh costs the connections nothing but the control messages for the change.
  3. Placement: removed streams are UNSUBSCRIBEd from the connection that holds them; added
     streams fill the room left on existing connections (lowest slot first, never above
     ``per_connection`` streams), and what does not fit opens new connections of at most
     ``per_connection`` streams. Existing streams never move.
  4. A SUBSCRIBE/UNSUBSCRIBE carries at most ``per_message`` streams; messages are paced per
     connection by ``ingestion.limits.CONTROL_MESSAGES`` (under Binance's 5 per second).
  5. A malformed exchangeInfo answer raises ``UniverseError`` (and nothing else).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingestion.errors import UniverseError

TRADING = "TRADING"
ALL = "ALL"
PATTERN_RE = re.compile(r"^(?:ALL|[A-Z0-9*]{1,20})$")


def is_pattern(entry: str) -> bool:
    """True for ALL and for entries with a ``*`` wildcard."""
    return entry == ALL or "*" in entry


def needs_exchange_info(entries: Iterable[str]) -> bool:
    """Whether any entry is a pattern (then the universe is resolved and refreshed)."""
    return any(is_pattern(e) for e in entries)


def _regex(entries: Iterable[str]) -> re.Pattern[str]:
    parts = [".*" if e == ALL else ".*".join(map(re.escape, e.split("*"))) for e in entries if is_pattern(e)]
    return re.compile("^(?:" + "|".join(parts) + ")$") if parts else re.compile(r"(?!)")


def parse_exchange_info(body: bytes) -> dict[str, str]:
    """symbol -> status from an exchangeInfo answer (Rule 5)."""
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UniverseError(f"exchangeInfo is not JSON: {exc}") from exc
    symbols = doc.get("symbols") if isinstance(doc, dict) else None
    if not isinstance(symbols, list):
        raise UniverseError("exchangeInfo has no 'symbols' list")
    out: dict[str, str] = {}
    for item in symbols:
        if not isinstance(item, dict) or not isinstance(item.get("symbol"), str) \
                or not isinstance(item.get("status"), str):
            raise UniverseError(f"exchangeInfo symbol entry without symbol/status: {item!r}"[:200])
        out[item["symbol"]] = item["status"]
    return out


def resolve(entries: Sequence[str], statuses: Mapping[str, str]) -> list[str]:
    """The symbols to capture (Rule 1): exact entries first, in order, then matches sorted."""
    exact = [e for e in entries if not is_pattern(e)]
    regex = _regex(entries)
    matched = sorted(s for s, status in statuses.items()
                     if status == TRADING and regex.match(s) and s not in exact)
    return exact + matched


@dataclass(frozen=True)
class Change:
    """Symbols to start and to stop capturing (Rule 2)."""

    added: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def diff(current: Sequence[str], wanted: Sequence[str]) -> Change:
    """What turns ``current`` into ``wanted``; order follows ``wanted`` / ``current``."""
    now, target = set(current), set(wanted)
    return Change([s for s in wanted if s not in now], [s for s in current if s not in target])


def stream_names(symbols: Iterable[str], types: Sequence[str]) -> list[str]:
    """``btcusdt@trade``-style names, symbol by symbol, in the order of ``types``."""
    return [f"{symbol.lower()}@{kind}" for symbol in symbols for kind in types]


@dataclass
class Placement:
    """Control messages per existing slot, and the stream lists of new connections (Rule 3)."""

    unsubscribe: dict[int, list[str]] = field(default_factory=dict)
    subscribe: dict[int, list[str]] = field(default_factory=dict)
    new_slots: list[list[str]] = field(default_factory=list)

    def messages(self, per_message: int) -> int:
        """How many control messages applying this takes on the existing connections."""
        lists = [*self.unsubscribe.values(), *self.subscribe.values()]
        return sum(len(chunks(streams, per_message)) for streams in lists)


def place(slots: Sequence[Sequence[str]], add: Sequence[str], remove: Sequence[str],
          per_connection: int) -> Placement:
    """Where each added stream goes and which slot drops each removed one (Rule 3)."""
    gone, plan = set(remove), Placement()
    sizes = []
    for index, streams in enumerate(slots):
        dropped = [s for s in streams if s in gone]
        if dropped:
            plan.unsubscribe[index] = dropped
        sizes.append(len(streams) - len(dropped))
    present = {s for streams in slots for s in streams} - gone
    todo = [s for s in dict.fromkeys(add) if s not in present]
    for index, size in enumerate(sizes):
        room = max(0, per_connection - size)
        if todo and room:
            plan.subscribe[index], todo = todo[:room], todo[room:]
    plan.new_slots = chunks(todo, per_connection)
    return plan


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    """``items`` cut into lists of at most ``size`` (Rule 4)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
