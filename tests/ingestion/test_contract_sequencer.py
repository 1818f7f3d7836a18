"""ingestion.sequencer: what a gap says when nothing interrupted the stream."""

from __future__ import annotations

from ingestion.sequencer import NEW, Gap, Sequencer


def test_a_gap_without_an_interruption_has_no_cause() -> None:
    """A jump on an uninterrupted stream is a gap whose cause is None (the stream itself)."""
    seq = Sequencer(contiguous=True, last=5)
    assert seq.observe(9) == Gap(6, 8, None) and seq.observe(10) == NEW
    assert Gap(6, 8).missing == 3 and Gap(7, 7).missing == 1
