"""The chaos schedules (tests/e2e/chaos.py): reproducible, of distinct kinds, covering the class."""

from __future__ import annotations

from tests.e2e.chaos import FAULTS_PER_SCHEDULE, KINDS, schedule, seeds


def test_a_seed_always_gives_the_same_schedule() -> None:
    """Rule 1: a failing seed can be run again as it was."""
    assert schedule(7) == schedule(7)
    assert schedule(7) != schedule(8)


def test_a_schedule_is_faults_of_distinct_kinds_and_twenty_seeds_draw_every_kind() -> None:
    """Rule 2: each schedule has distinct kinds; seeds 1-20 together cover the whole class."""
    drawn = set()
    for seed in range(1, 21):
        kinds = [f.kind for f in schedule(seed)]
        assert len(kinds) == len(set(kinds)) == FAULTS_PER_SCHEDULE
        drawn |= set(kinds)
    assert drawn == set(KINDS)


def test_seeds_are_a_count_a_range_or_a_list() -> None:
    """``SEEDS=20`` is seeds 1-20; ``5-7`` a range; ``4,9`` a list; ``9,`` seed 9 alone."""
    assert seeds("20") == list(range(1, 21))
    assert seeds("5-7") == [5, 6, 7]
    assert seeds("4,9") == [4, 9]
    assert seeds("9,") == [9]
