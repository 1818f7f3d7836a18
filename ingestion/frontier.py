"""The frontier: how far each (stream, symbol) is safely in Kafka, and what is still open (pure).

One ``FrontierEntry`` per (type, symbol) says: every id up to ``last_id`` (every moment up to
``last_time`` for bookTicker) is either acknowledged by Kafka or inside one of ``open_gaps``.
The entries are written to a compacted topic (``ingestion.frontier_store``) and read back by
the next instance, which resumes from them (``first_contact``) and finishes the open gaps
(``ingestion.unfinished``).

Rules:
  1. ``last_id`` only moves up, and only on an acknowledgement (``acked``); an acknowledged
     backfill row (lower id) never moves it back.
  2. An event Kafka did not take (``lost``) holds ``last_id`` below it until a gap covering it
     is published: a frontier never claims an id that is neither in Kafka nor in a gap.
  3. A gap enters ``open_gaps`` when it is published as open, before its revealing event can be
     acknowledged; it leaves only when the record that resolves it is acknowledged.
  4. ``due(now)`` returns the entries changed since they were last written, at most once per
     ``interval`` per entry, plus every entry not written for ``heartbeat`` (so its
     ``written_at`` says when the instance was last alive); ``everything(now)`` returns all.
  5. ``first_contact`` compares the first id of a new connection with the frontier: contiguous
     resumes silently; a hole opens a ``restart`` gap (or, beyond ``max_age``, records it as
     unrepairable at once); ids that went backwards while time went forward mean the exchange's
     history is not the one the frontier describes, and the frontier is dropped (said, not hidden).
  6. ``decode_entry`` takes any bytes: a record is accepted only if every field the resume reads
     has its type and every open gap follows the contract (events.py ``gap_problem``); anything
     else raises ValueError, and nothing else escapes, so a poison record is skipped, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from binance_pipeline.common.events import STREAM_TYPES, GapMessage, gap_problem
from ingestion.records import id_gap, resolve

Key = tuple[str, str]  # (type, symbol), as in ingestion.flow
FRONTIER_VERSION = 1


@dataclass(slots=True)
class FrontierEntry:
    """What the last instance left for one (type, symbol)."""

    kind: str
    symbol: str
    last_id: int | None = None
    last_time: int | None = None  # us: trade time of last_id, or bookTicker receipt time
    open_gaps: dict[str, GapMessage] = field(default_factory=dict)
    written_at: int = 0  # us

    @property
    def key(self) -> Key:
        return (self.kind, self.symbol)


def record_key(key: Key) -> bytes:
    """The compacted topic's key of one (type, symbol): ``SYMBOL/type``."""
    return f"{key[1]}/{key[0]}".encode()


def encode_entry(entry: FrontierEntry) -> bytes:
    return orjson.dumps({
        "v": FRONTIER_VERSION, "type": entry.kind, "symbol": entry.symbol, "last_id": entry.last_id,
        "last_time": entry.last_time, "open": list(entry.open_gaps.values()),
        "written_at": entry.written_at,
    })  # fmt: skip


def decode_entry(raw: bytes) -> FrontierEntry:
    """Parse one frontier record; ValueError (with why) for any bytes that are not one (Rule 6)."""
    try:
        obj: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not a frontier record: not JSON ({exc})") from exc
    problem = _entry_problem(obj)
    if problem is not None:
        raise ValueError(f"not a frontier record: {problem}")
    gaps = {g["gap_id"]: g for g in obj["open"]}
    return FrontierEntry(obj["type"], obj["symbol"], obj["last_id"], obj["last_time"], gaps,
                         obj["written_at"])  # fmt: skip


def _entry_problem(obj: Any) -> str | None:
    """Why ``obj`` is not an entry the resume can act on, or None (its open gaps per the contract)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    if obj.get("type") not in STREAM_TYPES or not isinstance(obj.get("symbol"), str):
        return "no stream type and symbol"
    if not all(obj.get(f) is None or type(obj[f]) is int for f in ("last_id", "last_time")):
        return "last_id and last_time must be integers or null"
    if type(obj.get("written_at")) is not int or not isinstance(obj.get("open"), list):
        return "written_at must be an integer and open a list"
    for gap in obj["open"]:
        problem = gap_problem(gap)
        if problem is not None:
            return f"open gap: {problem}"
    return None


@dataclass(slots=True)
class _State:
    entry: FrontierEntry
    lost: list[list[int]] = field(default_factory=list)  # id ranges not in Kafka nor in a gap
    dirty: bool = False
    written: int = 0  # monotonic us of the last write


class FrontierBook:
    """The live frontier of this instance, seeded with what the last one left."""

    def __init__(self, entries: Iterable[FrontierEntry] = (), interval_us: int = 500_000,
                 heartbeat_us: int = 60_000_000) -> None:  # fmt: skip
        self._states = {e.key: _State(replace(e, open_gaps=dict(e.open_gaps))) for e in entries}
        self.interval_us, self.heartbeat_us = interval_us, heartbeat_us

    def _state(self, key: Key) -> _State:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State(FrontierEntry(key[0], key[1]))
        return state

    def acked(self, key: Key, ident: int | None, at: int | None) -> None:
        """Kafka acknowledged an event of ``key`` (Rule 1)."""
        e = self._state(key).entry
        if ident is not None and (e.last_id is None or ident > e.last_id):
            e.last_id, e.last_time = ident, at
            self._states[key].dirty = True
        elif ident is None and at is not None and (e.last_time is None or at > e.last_time):
            e.last_time = at
            self._states[key].dirty = True

    def lost(self, key: Key, ident: int | None) -> None:
        """An event of ``key`` will never be acknowledged (Rule 2); bookTicker: nothing to hold."""
        if ident is None:
            return
        ranges = self._state(key).lost
        if ranges and ranges[-1][1] + 1 == ident:
            ranges[-1][1] = ident
        else:
            ranges.append([ident, ident])

    def gap_published(self, record: GapMessage) -> None:
        """A gap record was queued: an open one is tracked from now on (Rules 2, 3)."""
        if record["status"] != "open":
            return
        state = self._state((record["stream"], record["symbol"]))
        state.entry.open_gaps[record["gap_id"]] = record
        first, last = record["first_id"], record["last_id"]
        if first is not None and last is not None:
            state.lost = [r for r in state.lost if not (first <= r[0] and r[1] <= last)]
        state.dirty = True

    def gap_acked(self, record: GapMessage) -> None:
        """Kafka acknowledged a gap record: a resolved one leaves the open set (Rule 3)."""
        if record["status"] == "open":
            return
        state = self._states.get((record["stream"], record["symbol"]))
        if state is not None and state.entry.open_gaps.pop(record["gap_id"], None) is not None:
            state.dirty = True

    def settle_time(self, key: Key, at: int) -> None:
        """Everything of ``key`` up to ``at`` is accounted for (a clean stop closed its windows)."""
        self.acked(key, None, at)

    def open_gaps(self) -> list[GapMessage]:
        return [g for s in self._states.values() for g in s.entry.open_gaps.values()]

    def snapshot(self, key: Key, now: int) -> FrontierEntry:
        """The entry to write for ``key``: ``last_id`` held below any uncovered loss (Rule 2)."""
        state = self._states[key]
        e = state.entry
        last_id = e.last_id
        if state.lost and last_id is not None:
            last_id = min(last_id, min(r[0] for r in state.lost) - 1)
        return FrontierEntry(e.kind, e.symbol, last_id, e.last_time, dict(e.open_gaps), now)

    def due(self, now: int, mono: int) -> list[FrontierEntry]:
        """Entries to write now (Rule 4); ``now`` is wall-clock us, ``mono`` monotonic us."""
        out = []
        for key, state in self._states.items():
            age = mono - state.written
            if (state.dirty and age >= self.interval_us) or age >= self.heartbeat_us:
                out.append(self.snapshot(key, now))
                state.dirty, state.written = False, mono
        return out

    def everything(self, now: int, mono: int) -> list[FrontierEntry]:
        """Every entry, written now whatever its age (shutdown)."""
        for state in self._states.values():
            state.dirty, state.written = False, mono
        return [self.snapshot(key, now) for key in self._states]

    def mark_dirty(self, key: Key) -> None:
        """A write of ``key`` failed: write it again at the next ``due``."""
        state = self._states.get(key)
        if state is not None:
            state.dirty, state.written = True, 0


# ------------------------------------------------------------------ resuming
@dataclass(frozen=True, slots=True)
class Resume:
    """How a resumed stream starts: the sequencer's baseline, and the gap record to publish."""

    baseline: int | None
    record: GapMessage | None
    note: str  # one line for the log ("" when nothing to say)


def first_contact(
    entry: FrontierEntry, first_id: int, first_time: int, now: int, max_age_us: int
) -> Resume:
    """Compare the first id of a new connection with the frontier ``entry`` (Rule 5)."""
    last = entry.last_id
    if last is None:
        return Resume(None, None, "")
    if first_id <= last + 1:
        if first_id <= last and entry.last_time is not None and first_time > entry.last_time:
            note = (f"ids went backwards ({first_id} <= frontier {last}) while time went forward: the "
                    "exchange's history is not the one the frontier describes; frontier dropped")  # fmt: skip
            return Resume(None, None, note)
        return Resume(last, None, f"resumed at {first_id}, contiguous with the frontier {last}")
    record = id_gap(entry.symbol, entry.kind, last + 1, first_id - 1, "restart", now)
    age = now - entry.written_at
    if age <= max_age_us:
        note = f"restart gap of {first_id - 1 - last} ids ({last + 1}-{first_id - 1}): backfilling"
        return Resume(first_id - 1, record, note)
    why = (f"frontier is {age / 3.6e9:.1f} h old, beyond RESUME_MAX_AGE_S={max_age_us / 1e6:g}; "
           "not backfilled")  # fmt: skip
    closed = resolve(record, "unrepairable", now, None, why)
    return Resume(first_id - 1, closed, f"restart gap of {first_id - 1 - last} ids unrepairable: {why}")


class Resumer:
    """The keys armed for ``first_contact``, each used once (the flow's resume seam)."""

    def __init__(self, armed: dict[Key, FrontierEntry], max_age_us: int) -> None:
        self.pending = dict(armed)
        self.max_age_us = max_age_us

    def first_contact(self, key: Key, ident: int, when: int, now: int) -> Resume:
        return first_contact(self.pending.pop(key), ident, when, now, self.max_age_us)
