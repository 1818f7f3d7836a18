"""Topic identity (common/topics.py Rule 2): which topics have a new log."""

from __future__ import annotations

from binance_pipeline.common.topics import changed_ids


def test_the_first_ids_seen_are_learnt_not_reported_as_changes() -> None:
    known: dict[str, str] = {}
    assert changed_ids(known, {"trades": "A", "book": "B"}) == []
    assert known == {"trades": "A", "book": "B"}


def test_a_topic_with_a_new_id_is_reported_and_its_id_learnt() -> None:
    known = {"trades": "A", "book": "B", "gaps": "C"}
    assert changed_ids(known, {"trades": "A2", "book": "B", "gaps": "C2"}) == ["gaps", "trades"]
    assert known == {"trades": "A2", "book": "B", "gaps": "C2"}
    assert changed_ids(known, {"trades": "A2", "book": "B", "gaps": "C2"}) == []


def test_a_topic_missing_from_the_answer_is_not_a_change() -> None:
    """A topic the broker does not know (yet) has no id: its known id stays until a new one comes."""
    known = {"trades": "A", "book": "B"}
    assert changed_ids(known, {"book": "B"}) == []
    assert known == {"trades": "A", "book": "B"}
    assert changed_ids(known, {"trades": "A3"}) == ["trades"]
