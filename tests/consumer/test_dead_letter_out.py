"""The worker's dead-letter producer never lets a refusal escape as anything but ``DeadLetterError``
(consumer/kafka.py ``KafkaDeadLetters``): the checkpoint retries that; any other exception would stop
the writer thread, and the worker with it, on every restart."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from binance_pipeline.testing.helpers import free_port
from consumer.batcher import DeadLetter
from consumer.errors import DeadLetterError
from consumer.kafka import KafkaDeadLetters


def letter(value: bytes) -> DeadLetter:
    return DeadLetter("binance.trades", 0, 7, b"BTCUSDT", value, "not JSON", 1_700_000_000_000_000)


def test_a_dead_letter_the_producer_refuses_outright_is_a_dead_letter_error() -> None:
    """A message over the producer's size limit is refused by produce() itself: DeadLetterError."""
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "message.max.bytes": 1000})
    out = KafkaDeadLetters(producer, "binance.dead_letter", flush_timeout_s=0.5)
    with pytest.raises(DeadLetterError, match="refused"):
        out.publish([letter(b"x" * 5000)])


def test_a_full_producer_queue_is_waited_out_then_a_dead_letter_error() -> None:
    """No broker answers and the queue holds one message: the second waits, then DeadLetterError."""
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "queue.buffering.max.messages": 1})
    out = KafkaDeadLetters(producer, "binance.dead_letter", flush_timeout_s=0.5)
    with pytest.raises(DeadLetterError, match="queue full"):
        out.publish([letter(b"one"), letter(b"two")])
    producer.purge()
