"""One symbol's diff-depth ids in sequence, anchored by snapshots (``ingestion.depth``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ingestion.depth import ANCHORED, DUPLICATE, NEW, STALE, Break, DepthSequence


def test_the_first_update_starts_a_segment_that_wants_a_snapshot() -> None:
    seq = DepthSequence()
    assert not seq.wants and not seq.anchored
    assert seq.observe(157, 160) == NEW
    assert seq.wants and seq.start == 157 and seq.last == 160
    assert seq.asked is False
    seq.ask()
    assert not seq.wants and seq.asked is True  # one request out at a time (Rule 6)
    seq.failed()
    assert seq.wants and seq.asked is False  # asked again


def test_contiguous_updates_continue_and_old_ones_are_duplicates() -> None:
    seq = DepthSequence()
    seq.observe(1, 5)
    assert seq.observe(6, 9) == NEW
    assert seq.observe(6, 9) == DUPLICATE  # a rollover's overlap
    assert seq.observe(2, 9) == DUPLICATE  # u at the last: nothing new in it
    assert seq.observe(8, 12) == NEW  # U <= last + 1 <= u: Binance applies it (Rule 2)
    assert seq.last == 12 and seq.start == 1


def test_a_break_names_the_lost_ids_and_its_cause_and_starts_a_segment() -> None:
    seq = DepthSequence()
    seq.observe(1, 5)
    seq.answer(3)
    assert seq.anchored
    seq.interrupt("reconnect")
    assert seq.observe(6, 7) == NEW  # contiguous after the cut: no break, the cause is spent
    assert seq.observe(9, 10) == Break(8, 8, None)  # one id lost is a break too
    assert seq.observe(20, 22) == Break(11, 19, None)
    assert Break(8, 19).missing == 12
    assert seq.start == 20 and not seq.anchored and seq.wants  # never joined across a break
    seq.interrupt("reconnect")
    assert seq.observe(30, 31) == Break(23, 29, "reconnect")


def test_a_snapshot_older_than_the_segment_is_stale_and_one_ahead_anchors() -> None:
    seq = DepthSequence()
    seq.observe(100, 110)
    seq.ask()
    assert seq.answer(98) == STALE  # 99 unknown
    assert seq.asked is False
    assert seq.wants
    seq.ask()
    assert seq.answer(99) == ANCHORED  # the book at 99, then 100.. from the stream
    assert not seq.wants
    fresh = DepthSequence()
    fresh.observe(100, 110)
    assert fresh.answer(500) == ANCHORED  # ahead of the stream: updates up to 500 are superseded
    assert fresh.observe(300, 301) == Break(111, 299, None)
    assert fresh.anchored  # the snapshot at 500 is ahead of this segment's start too


def test_an_older_snapshot_never_replaces_a_newer_one() -> None:
    seq = DepthSequence()
    seq.observe(10, 20)
    seq.answer(15)
    seq.answer(5)
    assert seq.snapshot == 15 and seq.anchored


updates = st.lists(st.tuples(st.integers(1, 4), st.booleans(), st.booleans(), st.integers(0, 2)), max_size=60)


@given(updates, st.integers(1, 10**6))
def test_every_id_is_accepted_once_or_lies_in_exactly_one_break(plan: list[tuple[int, bool, bool, int]],
                                                                start: int) -> None:  # fmt: skip
    """A stream of contiguous updates with some dropped and some sent again: the accepted updates and
    the breaks cover every id from the first delivered to the last, each exactly once; an update is
    accepted once; a segment is anchored exactly when a snapshot at or after its start - 1 came."""
    seq, covered, accepted, sent, snapshots = DepthSequence(), [], [], [], []
    next_id = start
    for size, dropped, resend, snap in plan:
        update = (next_id, next_id + size - 1)
        next_id += size
        if snap:
            at = update[0] - snap  # a snapshot a little before this update
            seq.answer(at)
            snapshots.append(at)
        if dropped:
            continue
        for _ in range(2 if resend else 1):
            verdict = seq.observe(*update)
            if verdict == DUPLICATE:
                continue
            if isinstance(verdict, Break):
                covered.extend(range(verdict.first, verdict.last + 1))
            accepted.append(update)
            covered.extend(range(update[0], update[1] + 1))
        sent.append(update)
    assert accepted == sent  # each delivered update once, in order
    if sent:
        assert covered == list(range(sent[0][0], sent[-1][1] + 1))
        assert seq.anchored == any(at + 1 >= seq.start for at in snapshots)  # type: ignore[operator]
