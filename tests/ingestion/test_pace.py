"""ingestion/pace.py: the plausible-jump bound, at its edges (Rules 1-3 of the module)."""

from __future__ import annotations

from ingestion.pace import JUMP_FACTOR, JUMP_FLOOR, MIN_RATE, WINDOW_US, Pace

S = 1_000_000  # one second in microseconds


def bound(rate: float, elapsed_s: float) -> float:
    return JUMP_FLOOR + JUMP_FACTOR * max(rate, MIN_RATE) * (elapsed_s + 1.0)


def test_constants_are_the_documented_ones() -> None:
    assert (WINDOW_US, JUMP_FLOOR, JUMP_FACTOR, MIN_RATE) == (1_000_000, 1000, 10.0, 100.0)


def test_before_any_id_every_jump_is_plausible() -> None:
    assert Pace().plausible(10**12, 0)
    assert Pace().plausible(10**12, -S)


def test_a_slow_stream_is_judged_at_the_minimum_rate() -> None:
    pace = Pace()
    pace.note(100, 0)
    assert bound(0.0, 0) == 2000
    assert pace.plausible(2000, 0)
    assert not pace.plausible(2001, 0)


def test_elapsed_receipt_time_widens_the_bound() -> None:
    pace = Pace()
    pace.note(100, 0)
    assert pace.plausible(3000, S)
    assert not pace.plausible(3001, S)
    assert pace.plausible(2500, S // 2)
    assert not pace.plausible(2501, S // 2)


def test_a_receipt_time_before_the_last_counts_as_no_time() -> None:
    pace = Pace()
    pace.note(100, 5 * S)
    assert pace.plausible(2000, 0)
    assert not pace.plausible(2001, 0)


def test_the_rate_is_measured_over_a_whole_window() -> None:
    pace = Pace()
    pace.note(0, 0)
    pace.note(5000, S)  # exactly one window: 5000 ids/s
    assert pace.rate == 5000.0
    assert pace.plausible(51_000, S)
    assert not pace.plausible(51_001, S)


def test_a_window_shorter_than_a_second_measures_nothing() -> None:
    pace = Pace()
    pace.note(0, 0)
    pace.note(5000, WINDOW_US - 1)
    assert pace.rate == 0.0
    assert (pace.start_at, pace.start_id) == (0, 0)
    assert pace.at == WINDOW_US - 1


def test_every_noted_id_moves_the_last_receipt_time() -> None:
    pace = Pace()
    pace.note(0, 0)
    pace.note(5, S // 2)  # inside the window: no rate, but the clock of the last id moves
    assert pace.at == S // 2
    assert pace.plausible(2000, S // 2)
    assert not pace.plausible(2001, S // 2)


def test_a_window_starts_where_the_last_one_ended() -> None:
    pace = Pace()
    pace.note(0, 0)
    pace.note(1000, S)  # 1000 ids/s, the next window starts at (1 s, id 1000)
    assert (pace.start_at, pace.start_id) == (S, 1000)
    pace.note(1500, S + S // 2)
    pace.note(4000, 2 * S)  # (4000 - 1000) ids in one second, not 4000 in two
    assert pace.rate == 3000.0


def test_a_slower_window_halves_the_rate_at_most() -> None:
    pace = Pace()
    pace.note(0, 0)
    pace.note(5000, S)
    pace.note(5100, 2 * S)  # 100 ids/s measured; the rate falls to half of 5000 only
    assert pace.rate == 2500.0
    pace.note(5200, 3 * S)
    assert pace.rate == 1250.0


def test_a_faster_window_raises_the_rate_at_once() -> None:
    pace = Pace()
    pace.note(0, 0)
    pace.note(1000, S)
    pace.note(9000, 2 * S)
    assert pace.rate == 8000.0


def test_the_rate_is_ids_per_second_of_receipt_time() -> None:
    pace = Pace()
    pace.note(0, 0)
    pace.note(3000, 2 * S)  # 3000 ids in two seconds
    assert pace.rate == 1500.0
    assert pace.plausible(int(bound(1500.0, 0)), 2 * S)
    assert not pace.plausible(int(bound(1500.0, 0)) + 1, 2 * S)


def test_no_time_elapsed_adds_nothing_to_the_bound() -> None:
    """A bound a hair under a whole number stays under it when no receipt time has passed."""
    pace = Pace()
    pace.note(0, 0)
    pace.rate = 150.09999995  # bound = 2500.9999995
    assert pace.plausible(2500, 0)
    assert not pace.plausible(2501, 0)
