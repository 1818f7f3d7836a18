"""consumer.batcher: size and age caps per table, offsets per partition; the clock is passed in."""

from __future__ import annotations

import pytest

from consumer.batcher import Batcher, DeadLetter
from consumer.errors import OffsetOrderError


def fill(b: Batcher, topic: str, partition: int, table: str, offsets: range, now: float) -> None:
    seg = b.segment(topic, partition, table, now)
    for o in offsets:
        b.add(seg, o, b"k", b"v%d" % o, f"row{o}\n", 1_000 + o)


def test_table_is_due_at_max_rows_across_partitions() -> None:
    """A table is due when its partitions together hold max_rows entries, not before."""
    b = Batcher(max_rows=10, max_seconds=2.0)
    fill(b, "t", 0, "trades", range(0, 5), now=0.0)
    fill(b, "t", 1, "trades", range(100, 104), now=0.0)
    assert b.due(0.1) == []
    fill(b, "t", 1, "trades", range(104, 105), now=0.1)
    assert b.due(0.1) == ["trades"]


def test_table_is_due_max_seconds_after_its_first_row() -> None:
    """The age cap counts from the first buffered entry of the table."""
    b = Batcher(max_rows=500, max_seconds=2.0)
    fill(b, "t", 0, "trades", range(3), now=10.0)
    fill(b, "t", 0, "trades", range(3, 6), now=11.5)
    assert b.due(11.99) == []
    assert b.due(12.0) == ["trades"]


def test_next_deadline_is_when_the_oldest_buffer_falls_due() -> None:
    """The poll loop may block only until the oldest buffered row reaches max_seconds."""
    b = Batcher(max_rows=500, max_seconds=2.0)
    assert b.next_deadline() is None
    fill(b, "t", 0, "trades", range(3), now=10.0)
    fill(b, "b", 0, "book_ticker", range(3), now=9.5)
    assert b.next_deadline() == 11.5
    b.drain("book_ticker")
    assert b.next_deadline() == 12.0


def test_drain_gives_rows_and_next_offsets_per_partition() -> None:
    """Draining a table returns all its rows and, per partition, last offset + 1; then it is empty."""
    b = Batcher(max_rows=500, max_seconds=2.0)
    fill(b, "t", 0, "trades", range(0, 3), now=0.0)
    fill(b, "t", 2, "trades", range(50, 52), now=0.0)
    fill(b, "bk", 0, "book_ticker", range(7, 8), now=0.0)
    batch = b.drain("trades")
    assert batch is not None
    assert batch.rows() == ["row0\n", "row1\n", "row2\n", "row50\n", "row51\n"]
    assert batch.offsets() == {("t", 0): 3, ("t", 2): 52}
    assert b.drain("trades") is None
    assert b.pending() == 1 and b.pending("book_ticker") == 1


def test_dead_letters_count_and_move_the_offset() -> None:
    """An undecodable message counts toward the cap and the committed offset goes past it."""
    b = Batcher(max_rows=3, max_seconds=2.0)
    fill(b, "t", 0, "trades", range(0, 2), now=0.0)
    seg = b.segment("t", 0, "trades", 0.0)
    b.add_dead(seg, DeadLetter("t", 0, 2, None, b"junk", "not JSON", 5))
    assert b.due(0.0) == ["trades"]
    batch = b.drain("trades")
    assert batch is not None and batch.offsets() == {("t", 0): 3} and len(batch) == 3


def test_rejected_row_maps_back_to_its_message() -> None:
    """A row index of a batch maps to the partition, offset and raw value of its message."""
    b = Batcher(max_rows=500, max_seconds=2.0)
    fill(b, "t", 0, "trades", range(0, 2), now=0.0)
    fill(b, "t", 1, "trades", range(10, 13), now=0.0)
    batch = b.drain("trades")
    assert batch is not None
    dead = batch.dead_letter_for(3, "23514: check", 99)
    assert (dead.partition, dead.offset, dead.value, dead.reason) == (1, 11, b"v11", "23514: check")


def test_revoked_partitions_drain_per_table_and_are_forgotten() -> None:
    """drain_partitions takes only the revoked partitions, one batch per table, and forgets them."""
    b = Batcher(max_rows=500, max_seconds=2.0)
    fill(b, "t", 0, "trades", range(0, 2), now=0.0)
    fill(b, "t", 1, "trades", range(0, 4), now=0.0)
    fill(b, "bk", 1, "book_ticker", range(0, 1), now=0.0)
    batches = b.drain_partitions([("t", 1), ("bk", 1), ("gone", 9)])
    assert [(x.table, x.offsets()) for x in batches] == [
        ("book_ticker", {("bk", 1): 1}),
        ("trades", {("t", 1): 4}),
    ]
    assert b.pending() == 2
    assert b.discard([("t", 0)]) == 2 and b.pending() == 0


def test_an_offset_that_does_not_grow_is_rejected() -> None:
    """add/add_dead refuse an offset below the partition's next one, across drains (Rule 5)."""
    b = Batcher(max_rows=500, max_seconds=2.0)
    fill(b, "t", 0, "trades", range(10, 13), now=0.0)
    seg = b.segment("t", 0, "trades", 0.0)
    with pytest.raises(OffsetOrderError) as err:
        b.add(seg, 12, b"k", b"v", "row\n", 1)
    assert (err.value.offset, err.value.expected) == (12, 13)
    b.drain("trades")
    seg = b.segment("t", 0, "trades", 1.0)
    with pytest.raises(OffsetOrderError):
        b.add_dead(seg, DeadLetter("t", 0, 5, None, b"x", "bad", 1))
    assert b.pending() == 0
    fill(b, "t", 1, "trades", range(0, 2), now=1.0)  # other partitions are independent
    b.discard([("t", 0)])  # a revoked or recreated partition starts afresh
    fill(b, "t", 0, "trades", range(0, 2), now=1.0)
    assert b.pending() == 4
