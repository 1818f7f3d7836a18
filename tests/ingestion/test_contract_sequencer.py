"""ingestion.sequencer: what a gap says when nothing interrupted the stream."""

from __future__ import annotations

from ingestion.sequencer import DUPLICATE, FILL, MAX_HOLES, NEW, Gap, Sequencer


def test_a_gap_without_an_interruption_has_no_cause() -> None:
    """A jump on an uninterrupted stream is a gap whose cause is None (the stream itself)."""
    seq = Sequencer(contiguous=True, last=5)
    assert seq.observe(9) == Gap(6, 8, None) and seq.observe(10) == NEW
    assert Gap(6, 8).missing == 3 and Gap(7, 7).missing == 1


def test_the_first_id_is_new_and_sets_the_baseline() -> None:
    """With nothing accepted, any id is new (no gap before it) and becomes the highest id."""
    seq = Sequencer(contiguous=True)
    assert seq.observe(100) == NEW and seq.last == 100
    assert seq.observe(100) == DUPLICATE and seq.observe(99) == DUPLICATE and seq.holes == []


def test_the_highest_id_again_is_a_duplicate_and_changes_nothing() -> None:
    """An id equal to the highest accepted one is dropped; the baseline stays and no hole opens."""
    seq = Sequencer(contiguous=True, last=5)
    assert seq.observe(5) == DUPLICATE and seq.last == 5 and seq.holes == []
    assert seq.observe(6) == NEW and seq.last == 6


def test_a_gap_opens_a_hole_and_moves_the_baseline() -> None:
    """A jump reports the missing range, records it as the only hole and accepts the id."""
    seq = Sequencer(contiguous=True, last=5)
    assert seq.observe(9) == Gap(6, 8) and seq.last == 9 and seq.holes == [(6, 8)]
    assert seq.observe(11) == Gap(10, 10) and seq.holes == [(6, 8), (10, 10)]


def test_the_highest_id_is_a_duplicate_even_while_holes_are_open() -> None:
    """With holes open, an id outside them (the last accepted one, or below them) is a duplicate."""
    seq = Sequencer(contiguous=True, last=5)
    seq.observe(9)
    assert seq.observe(9) == DUPLICATE and seq.observe(5) == DUPLICATE and seq.observe(2) == DUPLICATE
    assert seq.holes == [(6, 8)] and seq.last == 9


def test_fills_at_the_edges_and_inside_a_hole_narrow_or_split_it() -> None:
    """A fill at a hole's first or last id narrows it; one inside splits it; each id fills once."""
    seq = Sequencer(contiguous=True, last=0)
    seq.observe(10)
    assert seq.holes == [(1, 9)]
    assert seq.observe(1) == FILL and seq.holes == [(2, 9)]
    assert seq.observe(9) == FILL and seq.holes == [(2, 8)]
    assert seq.observe(5) == FILL and seq.holes == [(2, 4), (6, 8)]
    assert seq.observe(3) == FILL and seq.holes == [(2, 2), (4, 4), (6, 8)]
    assert seq.observe(5) == DUPLICATE and seq.observe(1) == DUPLICATE
    assert seq.in_hole(2) and seq.in_hole(4) and not seq.in_hole(3) and not seq.in_hole(9)
    assert seq.in_hole(6) and seq.in_hole(7) and seq.in_hole(8)
    assert seq.last == 10


def test_a_fill_of_a_one_id_hole_closes_it_and_keeps_the_others_in_order() -> None:
    """Filling the single id of a hole removes that hole only; later fills still find theirs."""
    seq = Sequencer(contiguous=True, last=0)
    seq.observe(2)
    seq.observe(4)
    seq.observe(6)
    assert seq.holes == [(1, 1), (3, 3), (5, 5)]
    assert seq.observe(3) == FILL and seq.holes == [(1, 1), (5, 5)]
    assert seq.observe(5) == FILL and seq.observe(1) == FILL and seq.holes == []
    assert seq.observe(3) == DUPLICATE


def test_only_max_holes_are_kept_the_oldest_forgotten_first() -> None:
    """Past MAX_HOLES open holes, the oldest is dropped: its ids become duplicates."""
    seq = Sequencer(contiguous=True, last=0)
    for i in range(MAX_HOLES + 1):
        seq.observe(2 * i + 2)
    newest = 2 * MAX_HOLES + 1
    assert len(seq.holes) == MAX_HOLES and seq.holes[0] == (3, 3) and seq.holes[-1] == (newest, newest)
    assert seq.observe(1) == DUPLICATE and seq.observe(3) == FILL


def test_an_interruption_is_the_cause_of_the_next_gap_only() -> None:
    """The cause goes to the next gap; a contiguous id in between clears it."""
    seq = Sequencer(contiguous=True, last=1)
    seq.interrupt("reconnect")
    assert seq.observe(5) == Gap(2, 4, "reconnect") and seq.interrupted is None
    assert seq.observe(7) == Gap(6, 6, None)
    seq.interrupt("reconnect")
    assert seq.observe(8) == NEW and seq.interrupted is None and seq.observe(10) == Gap(9, 9, None)


def test_non_contiguous_jumps_are_new_without_holes() -> None:
    """bookTicker ids jump by design: a larger id is new, opens no hole and clears an interruption."""
    seq = Sequencer(contiguous=False, last=1)
    seq.interrupt("reconnect")
    assert seq.observe(50) == NEW and seq.holes == [] and seq.interrupted is None and seq.last == 50
    assert seq.observe(20) == DUPLICATE and seq.observe(50) == DUPLICATE


def test_seed_sets_the_baseline_only_once_nothing_was_accepted() -> None:
    """seed(last) is the baseline of a fresh sequencer; it never moves one that has accepted ids."""
    seq = Sequencer(contiguous=True)
    seq.seed(10)
    assert seq.last == 10 and seq.observe(10) == DUPLICATE and seq.observe(11) == NEW
    seq.seed(3)
    assert seq.last == 11
