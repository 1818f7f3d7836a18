"""consumer.batcher: tables with several partitions: their age, order, offsets and dead letters."""

from __future__ import annotations

import pytest

from consumer.batcher import Batcher, DeadLetter, Segment
from consumer.errors import OffsetOrderError


def put(b: Batcher, partition: int, table: str, offsets: range, now: float, topic: str = "t") -> Segment:
    seg = b.segment(topic, partition, table, now)
    for o in offsets:
        b.add(seg, o, b"k%d" % o, b"v%d" % o, f"{table}{o}\n", 1_000 + o)
    return seg


def dead(partition: int, offset: int, topic: str = "t") -> DeadLetter:
    return DeadLetter(topic, partition, offset, b"key", b"junk", "not JSON", 5_000 + offset)


def test_a_table_is_as_old_as_its_oldest_partition() -> None:
    """With partitions opened at 1 s and 5 s, the table is due max_seconds after 1 s."""
    b = Batcher(max_rows=100, max_seconds=2.0)
    put(b, 0, "trades", range(2), now=1.0)
    put(b, 1, "trades", range(2), now=5.0)
    assert b.due(2.99) == [] and b.due(3.0) == ["trades"]
    assert b.next_deadline() == 3.0


def test_due_tables_come_oldest_first() -> None:
    """Two due tables are returned by the age of their oldest partition, whatever the insertion order."""
    b = Batcher(max_rows=100, max_seconds=1.0)
    put(b, 0, "trades", range(1), now=4.0)
    put(b, 0, "book_ticker", range(1), now=3.5, topic="b")
    put(b, 1, "trades", range(1), now=2.0)
    put(b, 0, "gaps", range(1), now=3.0, topic="g")
    assert b.due(10.0) == ["trades", "gaps", "book_ticker"]


def test_an_empty_partition_adds_no_age() -> None:
    """A partition opened but holding nothing does not make its table due or set a deadline."""
    b = Batcher(max_rows=100, max_seconds=1.0)
    b.segment("t", 0, "trades", 0.0)
    put(b, 1, "trades", range(1), now=8.0)
    assert b.due(8.5) == [] and b.next_deadline() == 9.0


def test_a_full_table_is_due_at_once_and_only_that_table() -> None:
    """Reaching max_rows makes a table due at its first second; other tables wait for their age."""
    b = Batcher(max_rows=3, max_seconds=60.0)
    put(b, 0, "trades", range(2), now=0.0)
    put(b, 0, "book_ticker", range(2), now=0.0, topic="b")
    assert b.due(0.0) == []
    put(b, 1, "trades", range(1), now=0.0)
    assert b.due(0.0) == ["trades"]


def test_dead_letters_count_towards_size_and_move_the_offset() -> None:
    """A dead letter counts as one entry and the commit offset passes it."""
    b = Batcher(max_rows=3, max_seconds=60.0)
    seg = put(b, 0, "trades", range(10, 12), now=0.0)
    b.add_dead(seg, dead(0, 12))
    assert b.pending("trades") == 3 and b.due(0.0) == ["trades"]
    batch = b.drain("trades")
    assert batch is not None and len(batch) == 3 and batch.offsets() == {("t", 0): 13}
    assert batch.segments[0].dead == [dead(0, 12)] and b.pending() == 0


def test_a_batch_lists_partitions_in_order_with_their_commit_offsets() -> None:
    """Rows, receipt times and offsets follow the partitions; each commit offset is its last + 1."""
    b = Batcher(max_rows=100, max_seconds=60.0)
    put(b, 0, "trades", range(5, 7), now=0.0)
    put(b, 1, "trades", range(20, 21), now=0.0)
    batch = b.drain("trades")
    assert batch is not None and batch.table == "trades"
    assert batch.rows() == ["trades5\n", "trades6\n", "trades20\n"]
    assert batch.received() == [1005, 1006, 1020]
    assert batch.offsets() == {("t", 0): 7, ("t", 1): 21}
    assert b.drain("trades") is None


def test_a_rejected_row_is_found_in_its_own_partition() -> None:
    """Row index i of rows() maps to the right partition, offset, key, value and receipt time."""
    b = Batcher(max_rows=100, max_seconds=60.0)
    put(b, 0, "trades", range(5, 7), now=0.0)
    put(b, 1, "trades", range(20, 22), now=0.0)
    batch = b.drain("trades")
    assert batch is not None
    assert batch.dead_letter_for(1, "bad", 0) == DeadLetter("t", 0, 6, b"k6", b"v6", "bad", 1006)
    assert batch.dead_letter_for(2, "bad", 0) == DeadLetter("t", 1, 20, b"k20", b"v20", "bad", 1020)
    assert batch.dead_letter_for(3, "bad", 0).offset == 21
    with pytest.raises(IndexError, match=r"^row index out of range$"):
        batch.dead_letter_for(4, "bad", 0)


def test_draining_partitions_gives_one_batch_per_table_by_name() -> None:
    """Revoked partitions are drained per table (sorted by name) and forgotten; others stay."""
    b = Batcher(max_rows=100, max_seconds=60.0)
    put(b, 0, "trades", range(3), now=0.0)
    put(b, 0, "book_ticker", range(2), now=0.0, topic="b")
    put(b, 1, "trades", range(4), now=0.0)
    batches = b.drain_partitions([("t", 0), ("b", 0), ("x", 9)])
    assert [(x.table, len(x)) for x in batches] == [("book_ticker", 2), ("trades", 3)]
    assert b.pending("trades") == 4 and b.pending("book_ticker") == 0 and b.pending() == 4


def test_discard_counts_rows_and_dead_letters_it_drops() -> None:
    """discard returns how many entries (rows and dead letters) it forgot, across partitions."""
    b = Batcher(max_rows=100, max_seconds=60.0)
    seg = put(b, 0, "trades", range(3), now=0.0)
    b.add_dead(seg, dead(0, 3))
    put(b, 1, "trades", range(2), now=0.0)
    put(b, 0, "book_ticker", range(1), now=0.0, topic="b")
    assert b.discard([("t", 0), ("t", 1), ("t", 7)]) == 6
    assert b.pending("trades") == 0 and b.pending() == 1


def test_a_new_segment_after_a_drain_starts_its_own_age() -> None:
    """After a drain, the partition's next entries are timed from when they arrive."""
    b = Batcher(max_rows=100, max_seconds=2.0)
    put(b, 0, "trades", range(1), now=0.0)
    b.drain("trades")
    put(b, 0, "trades", range(1, 2), now=10.0)
    assert b.due(11.0) == [] and b.next_deadline() == 12.0


def test_a_dead_letter_can_open_a_table() -> None:
    """A table whose first entry is a dead letter holds exactly one entry."""
    b = Batcher(max_rows=2, max_seconds=60.0)
    b.add_dead(b.segment("t", 0, "trades", 0.0), dead(0, 0))
    assert b.pending("trades") == 1 and b.due(0.0) == []


def test_a_table_never_seen_has_nothing_pending() -> None:
    """pending() of an unknown table is 0; of all tables, the sum."""
    b = Batcher(max_rows=100, max_seconds=60.0)
    assert b.pending("trades") == 0 and b.pending() == 0
    put(b, 0, "gaps", range(2), now=0.0, topic="g")
    assert b.pending("trades") == 0 and b.pending() == 2


def test_an_offset_going_back_is_an_error_naming_where() -> None:
    """An offset below the next one raises OffsetOrderError naming topic, partition and both offsets."""
    b = Batcher(max_rows=100, max_seconds=60.0)
    seg = put(b, 3, "trades", range(5, 7), now=0.0)
    with pytest.raises(OffsetOrderError, match=r"^t\[3\]: offset 4 after 6$") as info:
        b.add(seg, 4, None, b"v", "row\n", 0)
    assert (info.value.topic, info.value.partition, info.value.offset, info.value.expected) == ("t", 3, 4, 7)
