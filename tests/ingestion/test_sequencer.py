"""The sequencer: single point of dedupe and gap detection (property-tested)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.sequencer import DUPLICATE, NEW, Gap, Sequencer


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
    """Accepted ids strictly increase; with the gaps they cover baseline..max exactly once."""
    seq = Sequencer(contiguous=True)
    accepted: list[int] = []
    covered: list[int] = []
    for i in ids:
        verdict = seq.observe(i)
        if verdict == DUPLICATE:
            assert accepted and i <= accepted[-1]
            continue
        if isinstance(verdict, Gap):
            covered.extend(range(verdict.first, verdict.last + 1))
        accepted.append(i)
        covered.append(i)
    assert accepted == sorted(set(accepted))
    assert sorted(covered) == list(range(ids[0], max(ids) + 1))


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
