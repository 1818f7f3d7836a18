"""Fault decisions and malformed frames (pure, clock passed in).

Owns which events a drop or duplicates fault touches and what each malformed frame looks
like. Never sends anything: the hub asks :meth:`Faults.copies` per event.

Rule 1: a drop rule covers the next ``count`` events of its symbol (all stream types) and
        withholds ``share`` of them, spread evenly by an accumulator (share 0.5 drops every
        second event, 1.0 all of them): deterministic, so tests can count exactly.
Rule 2: a duplicates rule sends each of the next ``count`` events of its symbol twice in a row.
Rule 4: depth events are touched only by depth rules: a depth drop rule withholds the next
        ``count`` depthUpdate events of one symbol's one speed; other rules never see them (so
        their counts mean what they meant before depth existed).
Rule 3: dropped and duplicated events are always in the REST history exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from exchange_sim.depth import DEPTH_KINDS
from exchange_sim.events import Event, wrap_combined
from exchange_sim.frames import text_frame

MALFORMED_KINDS = (
    "invalid_json",
    "wrong_types",
    "missing_fields",
    "unknown_event",
    "oversized",
    "invalid_utf8",
)


@dataclass
class DropRule:
    """Withhold ``share`` of the next ``remaining`` events of a symbol."""

    share: float
    remaining: int
    credit: float = 0.0

    def take(self) -> bool:
        """Consume one event; True if it must be withheld."""
        self.remaining -= 1
        self.credit += self.share
        if self.credit >= 1.0 - 1e-9:
            self.credit -= 1.0
            return True
        return False


class Faults:
    """Active drop / duplicate rules, the stall and refusal deadlines."""

    def __init__(self) -> None:
        self.drops: dict[str, DropRule] = {}
        self.duplicates: dict[str, int] = {}
        self.depth_drops: dict[tuple[str, str], int] = {}  # (symbol, speed kind) -> events left
        self.stale_snapshots: dict[str, tuple[int, int]] = {}  # symbol -> (answers left, events behind)
        self.refuse_until = 0.0
        self.rest_down_until = 0.0

    def copies(self, event: Event) -> int:
        """How many times to send ``event``: 0 (dropped), 1, or 2 (duplicated)."""
        if not self.drops and not self.duplicates and not self.depth_drops:
            return 1
        if event.kind in DEPTH_KINDS:
            return 0 if self._drop_depth(event) else 1  # Rule 4
        symbol = event.symbol
        rule = self.drops.get(symbol)
        if rule is not None:
            dropped = rule.take()
            if rule.remaining <= 0:
                del self.drops[symbol]
            if dropped:
                return 0
        left = self.duplicates.get(symbol)
        if left:
            if left == 1:
                del self.duplicates[symbol]
            else:
                self.duplicates[symbol] = left - 1
            return 2
        return 1

    def _drop_depth(self, event: Event) -> bool:
        key = (event.symbol, event.kind)
        left = self.depth_drops.get(key)
        if not left:
            return False
        if left == 1:
            del self.depth_drops[key]
        else:
            self.depth_drops[key] = left - 1
        return True

    def stale_snapshot(self, symbol: str) -> int | None:
        """How many 100 ms events behind the next snapshot of ``symbol`` must be, or None (fresh)."""
        rule = self.stale_snapshots.get(symbol)
        if rule is None:
            return None
        left, behind = rule
        if left <= 1:
            del self.stale_snapshots[symbol]
        else:
            self.stale_snapshots[symbol] = (left - 1, behind)
        return behind

    def rest_down(self, now: float) -> bool:
        """True while REST requests are cut off without an answer (REST unreachable)."""
        return now < self.rest_down_until

    def refusing(self, now: float) -> bool:
        """True while new connections are refused."""
        return now < self.refuse_until


def malformed_frame(kind: str, symbol: str, now_ms: int, combined: bool, size: int) -> bytes:
    """One bad text frame of ``kind``; wrapped in a combined envelope when ``combined``.

    ``invalid_utf8`` is a TEXT frame (opcode 1) whose payload is not valid UTF-8, which a
    conforming client must reject (websockets closes with 1007).
    """
    stream = f"{symbol.lower()}@trade"
    if kind == "invalid_json":
        raw = b'{"e":"trade","E":' + str(now_ms).encode() + b',"s":"' + symbol.encode() + b'","t":'
        return text_frame(b'{"stream":"' + stream.encode() + b'","data":' + raw if combined else raw)
    if kind == "invalid_utf8":
        raw = b'{"e":"trade","E":' + str(now_ms).encode() + b',"s":"\xff\xfe' + symbol.encode() + b'\xc3"}'
    elif kind == "wrong_types":
        raw = orjson.dumps(
            {
                "e": "trade",
                "E": str(now_ms),
                "s": symbol,
                "t": "12x",
                "p": 67000.5,
                "q": None,
                "T": [now_ms],
                "m": "yes",
                "M": 1,
            }
        )
    elif kind == "missing_fields":
        raw = orjson.dumps({"e": "trade", "E": now_ms, "s": symbol})
    elif kind == "unknown_event":
        raw = orjson.dumps({"e": "mysteryEvent", "E": now_ms, "s": symbol, "x": 1})
    elif kind == "oversized":
        head = orjson.dumps({"e": "oversized", "E": now_ms, "s": symbol, "pad": ""})
        raw = head[:-2] + b"x" * max(0, size - len(head)) + b'"}'
    else:
        raise ValueError(f"unknown malformed kind: {kind}")
    return text_frame(wrap_combined(stream, raw) if combined else raw)
