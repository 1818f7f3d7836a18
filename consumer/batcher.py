"""Pure batching: per-partition buffers, flushed per table by size or age. No I/O, no clock.

Rules:
  1. Buffers are keyed by (topic, partition); each partition belongs to one table (its topic's).
  2. A table is due when its buffered entries reach ``max_rows`` or its oldest entry is
     ``max_seconds`` old (``now`` is passed in, so tests never sleep).
  3. An entry is a row to write or a dead letter (a message that failed decoding). Both
     count, because both must be handled before the partition's offset may move past them.
  4. ``drain`` hands over everything buffered for a table with, per partition, the offset to
     commit once the batch is durable: the last drained offset + 1. Offsets within a
     partition only grow; a drained batch never overlaps a later one.
  5. Rule 4 is checked, not assumed: ``add``/``add_dead`` raise OffsetOrderError for an offset
     below the partition's next one, across drains too, and buffer nothing. ``discard`` (a
     revoked, lost or recreated partition) forgets the partition's offsets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from consumer.decode import Row
from consumer.errors import OffsetOrderError

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class DeadLetter:
    """A message to send to the dead-letter topic, with why and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    received_at: int  # µs, when the worker received it

    def fitted(self, max_value: int) -> DeadLetter:
        """This dead letter with a value of at most ``max_value`` bytes; a cut is said in the reason."""
        if self.value is None or len(self.value) <= max_value:
            return self
        reason = f"{self.reason} (value cut to its first {max_value} of {len(self.value)} bytes)"
        return replace(self, value=self.value[:max_value], reason=reason)


@dataclass
class Segment:
    """One partition's buffered entries (parallel lists, one element per row)."""

    topic: str
    partition: int
    table: str
    first_at: float
    rows: list[Row] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    next_offset: int = -1

    def __len__(self) -> int:
        return len(self.rows) + len(self.dead)


@dataclass(frozen=True)
class Batch:
    """Everything drained for one table: what to write, dead-letter and commit."""

    table: str
    segments: tuple[Segment, ...]

    def rows(self) -> list[Row]:
        return [row for seg in self.segments for row in seg.rows]

    def dead_letter_for(self, index: int, reason: str, now_us: int) -> DeadLetter:
        """The dead letter for row ``index`` of ``rows()`` (a row the database rejected)."""
        for seg in self.segments:
            if index < len(seg.rows):
                return DeadLetter(seg.topic, seg.partition, seg.offsets[index], seg.keys[index],
                                  seg.values[index], reason, seg.received[index])
            index -= len(seg.rows)
        raise IndexError("row index out of range")

    def offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset to commit once this batch is durable (last + 1)."""
        return {(s.topic, s.partition): s.next_offset for s in self.segments}

    def received(self) -> list[int]:
        return [us for seg in self.segments for us in seg.received]

    def __len__(self) -> int:
        return sum(len(seg) for seg in self.segments)


class Batcher:
    """Per-partition buffers with per-table size and age caps (Rules 1-2)."""

    def __init__(self, max_rows: int, max_seconds: float) -> None:
        self.max_rows, self.max_seconds = max_rows, max_seconds
        self._segments: dict[TopicPartition, Segment] = {}
        self._counts: dict[str, int] = {}
        self._next: dict[TopicPartition, int] = {}  # per partition: the lowest acceptable offset

    def segment(self, topic: str, partition: int, table: str, now: float) -> Segment:
        """The open segment of a partition (created with ``now`` as its first entry's time)."""
        seg = self._segments.get((topic, partition))
        if seg is None:
            seg = self._segments[(topic, partition)] = Segment(topic, partition, table, now)
        return seg

    def add(self, seg: Segment, offset: int, key: bytes | None, value: bytes, row: Row,
            received_at: int) -> None:
        """Buffer one decoded row of ``seg``'s partition (Rule 5)."""
        self._advance(seg, offset)
        seg.rows.append(row)
        seg.keys.append(key)
        seg.values.append(value)
        seg.offsets.append(offset)
        seg.received.append(received_at)
        seg.next_offset = offset + 1
        self._counts[seg.table] = self._counts.get(seg.table, 0) + 1

    def add_dead(self, seg: Segment, dead: DeadLetter) -> None:
        """Buffer one undecodable message: it is dead-lettered, then committed past (Rule 5)."""
        self._advance(seg, dead.offset)
        seg.dead.append(dead)
        seg.next_offset = dead.offset + 1
        self._counts[seg.table] = self._counts.get(seg.table, 0) + 1

    def due(self, now: float) -> list[str]:
        """Tables to flush now: full (``max_rows``) or old (``max_seconds``), oldest first."""
        oldest: dict[str, float] = {}
        for seg in self._segments.values():
            if len(seg):
                oldest[seg.table] = min(seg.first_at, oldest.get(seg.table, seg.first_at))
        due = [t for t, first in oldest.items()
               if self._counts.get(t, 0) >= self.max_rows or now - first >= self.max_seconds]
        return sorted(due, key=oldest.__getitem__)

    def next_deadline(self) -> float | None:
        """When the oldest buffered row reaches ``max_seconds`` (None when nothing is buffered)."""
        firsts = [seg.first_at for seg in self._segments.values() if len(seg)]
        return min(firsts) + self.max_seconds if firsts else None

    def drain(self, table: str) -> Batch | None:
        """Take everything buffered for ``table`` (None when nothing is)."""
        keys = [tp for tp, seg in self._segments.items() if seg.table == table and len(seg)]
        return self._take(table, keys)

    def drain_partitions(self, partitions: Iterable[TopicPartition]) -> list[Batch]:
        """Take everything buffered for these partitions, one batch per table."""
        partitions = list(partitions)
        by_table: dict[str, list[TopicPartition]] = {}
        for tp in partitions:
            seg = self._segments.get(tp)
            if seg is not None and len(seg):
                by_table.setdefault(seg.table, []).append(tp)
        batches = [self._take(table, by_table[table]) for table in sorted(by_table)]
        self.discard(partitions)
        return [b for b in batches if b is not None]

    def discard(self, partitions: Iterable[TopicPartition]) -> int:
        """Forget these partitions' buffers (uncommitted, so they will be consumed again)."""
        dropped = 0
        for tp in partitions:
            self._next.pop(tp, None)
            seg = self._segments.pop(tp, None)
            if seg is not None:
                dropped += len(seg)
                self._counts[seg.table] -= len(seg)
        return dropped

    def pending(self, table: str | None = None) -> int:
        """Entries buffered (for one table, or in all)."""
        return self._counts.get(table, 0) if table else sum(self._counts.values())

    def _advance(self, seg: Segment, offset: int) -> None:
        tp = (seg.topic, seg.partition)
        expected = self._next.get(tp, 0)
        if offset < expected:
            raise OffsetOrderError(seg.topic, seg.partition, offset, expected)
        self._next[tp] = offset + 1

    def _take(self, table: str, keys: list[TopicPartition]) -> Batch | None:
        segments = tuple(self._segments.pop(tp) for tp in keys)
        if not segments:
            return None
        self._counts[table] -= sum(len(s) for s in segments)
        return Batch(table, segments)
