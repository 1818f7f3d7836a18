"""The sequencer: single point of dedupe and gap detection (property-tested)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.sequencer import DUPLICATE, FILL, NEW, Gap, Sequencer


def test_new_duplicate_gap() -> None:
    """Next id is new, a repeat is a duplicate, a jump is a gap and the jumping id is kept."""
    seq = Sequencer(contiguous=True)
    verdicts = [seq.observe(i) for i in (10, 11, 11, 9, 15, 16)]
    assert verdicts == [NEW, NEW, DUPLICATE, DUPLICATE, Gap(12, 14), NEW]
    assert Gap(12, 14).missing == 3


def test_interrupt_cause_is_attached_once() -> None:
    """After interrupt(cause) the next gap carries the cause; later gaps do not."""
    seq = Sequencer(contiguous=True, last=5)
    seq.interrupt("reconnect")
    assert seq.observe(9) == Gap(6, 8, "reconnect")
    assert seq.observe(12) == Gap(10, 11, None)


def test_book_ticker_jumps_are_not_gaps() -> None:
    """Non-contiguous sequences never report gaps, only duplicates."""
    seq = Sequencer(contiguous=False)
    assert [seq.observe(i) for i in (100, 250, 250, 900)] == [NEW, NEW, DUPLICATE, NEW]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=200))
def test_accepted_plus_gaps_cover_every_id_once(ids: list[int]) -> None:
    """New ids increase, fills come from reported gaps; accepted plus holes cover baseline..max once."""
    seq = Sequencer(contiguous=True)
    accepted: list[int] = []
    advancing: list[int] = []
    reported: set[int] = set()
    for i in ids:
        verdict = seq.observe(i)
        if verdict == DUPLICATE:
            assert i in accepted or i < ids[0]
            continue
        if verdict == FILL:
            assert i in reported and i < advancing[-1]
        else:
            advancing.append(i)
        if isinstance(verdict, Gap):
            reported.update(range(verdict.first, verdict.last + 1))
        accepted.append(i)
    assert advancing == sorted(set(advancing))
    assert len(accepted) == len(set(accepted))
    still_missing = [j for first, last in seq.holes for j in range(first, last + 1)]
    assert sorted(accepted + still_missing) == list(range(ids[0], max(ids) + 1))


def test_an_id_inside_an_open_gap_is_a_fill_that_narrows_it() -> None:
    """A late id inside a reported gap is accepted once (FILL), splitting the hole; a repeat is not."""
    seq = Sequencer(contiguous=True)
    assert [seq.observe(i) for i in (1, 10)] == [NEW, Gap(2, 9)]
    assert seq.observe(5) == FILL
    assert seq.holes == [(2, 4), (6, 9)]
    assert seq.observe(5) == DUPLICATE
    assert [seq.observe(i) for i in (2, 9)] == [FILL, FILL]
    assert seq.holes == [(3, 4), (6, 8)]


def test_seed_sets_the_baseline_only_when_nothing_was_accepted() -> None:
    """seed(last) (a stored frontier) makes last + 1 new, older ids duplicates; it never moves a baseline."""
    seq = Sequencer(contiguous=True)
    seq.seed(100)
    assert [seq.observe(i) for i in (100, 101, 103)] == [DUPLICATE, NEW, Gap(102, 102)]
    seq.seed(5)
    assert seq.last == 103


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 300), st.integers(0, 300), st.integers(0, 300))
def test_two_overlapping_connections_publish_each_id_once(start: int, n: int, cut: int, lag: int) -> None:
    """Old connection up to ``cut``, new one from ``cut - lag``: every id accepted once, no gap."""
    seq = Sequencer(contiguous=True)
    old = list(range(start, start + min(cut, n)))
    new = list(range(max(start, start + min(cut, n) - lag), start + n))
    verdicts = [seq.observe(i) for i in old + new]
    assert not any(isinstance(v, Gap) for v in verdicts)
    assert sum(v == NEW for v in verdicts) == n


def test_sequencer_reveal_opens_a_hole_and_moves_last() -> None:
    """reveal(latest) beyond last is a gap with the cut's cause; its ids are fills, latest + 1 is new."""
    seq = Sequencer(contiguous=True, last=10)
    seq.interrupt("reconnect")
    assert seq.reveal(10) is None
    assert seq.reveal(15) == Gap(11, 15, "reconnect")
    assert seq.interrupted is None and seq.last == 15
    assert seq.observe(16) == NEW
    assert seq.observe(12) == FILL
    assert Sequencer(contiguous=True).reveal(5) is None
    one = Sequencer(contiguous=True, last=10)
    assert one.reveal(11) == Gap(11, 11, None) and one.holes == [(11, 11)]
