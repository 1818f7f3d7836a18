"""The Kafka kit's exceptions (binance_pipeline.kafka.errors) keep what callers read."""

from __future__ import annotations

from binance_pipeline.kafka.errors import KafkaKitError, TopicsNotCreated


def test_topics_not_created_names_each_topic_and_why() -> None:
    """The failures map is kept and shown in the message."""
    err = TopicsNotCreated({"trades": "broker 1: policy violation"})
    assert err.failures == {"trades": "broker 1: policy violation"}
    assert str(err) == "cannot create topics {'trades': 'broker 1: policy violation'}"
    assert isinstance(err, KafkaKitError)
