"""Topic identity (kafka/topic_ids.py Rule 1): which topics have a new log."""

from __future__ import annotations

import socket
import time
from typing import Any

from binance_pipeline.common.settings import Settings
from binance_pipeline.kafka.topic_ids import TopicIds, changed_ids


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


def _answer(ids: TopicIds, timeout: float = 20) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = ids.poll(time.monotonic())
        if seen is not None:
            return seen
        time.sleep(0.05)
    raise AssertionError("TopicIds never answered")


def test_unknown_names_the_topics_the_broker_does_not_know(kafka_bootstrap: str, topic_factory: Any) -> None:
    """A topic the broker does not know is in ``unknown``; an existing one has its id."""
    here, gone = topic_factory("ids"), topic_factory("ids", create=False)
    ids = TopicIds(Settings(kafka_bootstrap_servers=kafka_bootstrap), [here, gone], every_s=0.1)
    seen = _answer(ids)
    assert set(seen) == {here} and ids.unknown == {gone}


def test_an_unreachable_broker_says_nothing_about_a_topic() -> None:
    """A request that fails (nothing listens) leaves no id and no unknown topic."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{port}")
    ids = TopicIds(settings, ["binance.trades"], every_s=0.1)
    assert _answer(ids, timeout=30) == {} and ids.unknown == frozenset()
