"""What ingestion sends again when the broker lost a topic's log (ingestion/replay.py Rules 2-5)."""

from __future__ import annotations

from ingestion.replay import Pending, Stamped, plan_replay

INF = float("inf")


def msg(topic: str, n: int, headers: list[tuple[str, str | bytes | None]] | None = None) -> Pending:
    return (topic, "BTCUSDT", f'{{"id":{n}}}'.encode(), 1_000 + n, headers)


def test_everything_of_the_changed_topics_is_sent_again_in_order_when_something_else_recreated_them() -> None:
    window: list[Stamped] = [(1.0, msg("trades", 1)), (2.0, msg("book", 2)), (3.0, msg("trades", 3))]
    again, kept = plan_replay(window, [], {"trades", "book"}, INF)
    assert again == [msg("trades", 1), msg("book", 2), msg("trades", 3)]
    assert kept == []


def test_other_topics_stay_in_the_window_untouched() -> None:
    window: list[Stamped] = [(1.0, msg("trades", 1)), (2.0, msg("dlq", 2, [("dlq.reason", b"x")]))]
    again, kept = plan_replay(window, [], {"trades"}, INF)
    assert again == [msg("trades", 1)]
    assert kept == [(2.0, msg("dlq", 2, [("dlq.reason", b"x")]))]


def test_what_was_sent_after_this_process_recreated_the_topics_is_on_the_new_log_already() -> None:
    """Rule 2: the cut is when the topics were created again; later messages are kept, not resent."""
    window: list[Stamped] = [(1.0, msg("trades", 1)), (5.0, msg("trades", 2)), (6.0, msg("trades", 3))]
    again, kept = plan_replay(window, [], {"trades"}, cut=5.0)
    assert again == [msg("trades", 1)]
    assert kept == [(5.0, msg("trades", 2)), (6.0, msg("trades", 3))]


def test_a_message_sent_twice_is_sent_again_once() -> None:
    """A failed delivery re-sent before the cut is in the window twice: one copy goes out."""
    window: list[Stamped] = [(1.0, msg("dlq", 7)), (2.0, msg("dlq", 7)), (3.0, msg("dlq", 8))]
    again, _ = plan_replay(window, [], {"dlq"}, INF)
    assert again == [msg("dlq", 7), msg("dlq", 8)]


def test_a_message_also_sent_after_the_cut_or_waiting_in_pending_is_not_sent_from_the_window() -> None:
    window: list[Stamped] = [(1.0, msg("dlq", 1)), (2.0, msg("dlq", 2)), (3.0, msg("dlq", 3)),
                             (9.0, msg("dlq", 1))]
    again, kept = plan_replay(window, [msg("dlq", 2)], {"dlq"}, cut=9.0)
    assert again == [msg("dlq", 3)]
    assert kept == [(9.0, msg("dlq", 1))]


def test_the_same_value_at_another_time_is_another_message() -> None:
    """Two identical bad frames received at different times are two dead letters."""
    first, second = msg("dlq", 1), ("dlq", None, msg("dlq", 1)[2], 5_000, None)
    again, _ = plan_replay([(1.0, first), (2.0, second)], [], {"dlq"}, INF)
    assert again == [first, second]


def test_another_value_at_the_same_time_is_another_message() -> None:
    """Two trades handed over in the same millisecond are two messages."""
    first, second = msg("trades", 1), ("trades", "BTCUSDT", msg("trades", 2)[2], msg("trades", 1)[3], None)
    again, _ = plan_replay([(1.0, first), (2.0, second)], [], {"trades"}, INF)
    assert again == [first, second]


def test_two_dead_letters_of_the_same_bytes_at_the_same_millisecond_are_two_messages() -> None:
    """Rule 3: identical bad frames differ by their headers (when each was received), so both go out."""
    first = ("dlq", None, b"{bad", 5_000, [("dlq.received_at", b"5000001")])
    second = ("dlq", None, b"{bad", 5_000, [("dlq.received_at", b"5000002")])
    again, _ = plan_replay([(1.0, first), (2.0, second), (3.0, first)], [], {"dlq"}, INF)
    assert again == [first, second]


def test_a_dead_letter_waiting_in_pending_is_not_sent_again_but_its_twin_is() -> None:
    """Rule 3: the one in pending is the same message only when its headers are the same too."""
    first = ("dlq", None, b"{bad", 5_000, [("dlq.received_at", b"5000001")])
    second = ("dlq", None, b"{bad", 5_000, [("dlq.received_at", b"5000002")])
    again, _ = plan_replay([(1.0, first), (2.0, second)], [second], {"dlq"}, INF)
    assert again == [first]
