"""The seams of the checkpoint: what the Checkpointer needs from a sink, a dead-letter topic and
the consumer group, as protocols. It depends on these, never on psycopg2 or confluent-kafka.

Implementations: ``consumer.sink.TimescaleSink`` (Sink), ``consumer.kafka.KafkaDeadLetters``
(DeadLetterOut), ``consumer.kafka.KafkaOffsets`` (OffsetStore). Tests drive the Checkpointer
with in-memory ones (tests/consumer/test_checkpoint.py).

Rules (the contract every implementation keeps):
  1. ``Sink.write`` returns only once the rows are durable; it raises
     ``SinkBackpressureError(retry_after)`` when it cannot take the batch now (retried later, no
     offset moves) and ``FatalDatabaseError`` when it never will (the worker stops). Nothing is
     half-written: a raised write wrote nothing.
  2. ``DeadLetterOut.publish`` returns only once the broker acknowledged every dead letter, else
     raises ``DeadLetterError`` (retried).
  3. ``OffsetStore.commit`` returns the partitions the broker refused, with the reason, or
     raises ``CommitError``; either way the rows are durable and a replay writes nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from consumer.batcher import DeadLetter
from consumer.decode import Row

TopicPartition = tuple[str, int]


@dataclass
class WriteOutcome:
    """What one durable write did: rows inserted, skipped as duplicates, rejected (index, reason)."""

    inserted: int = 0
    skipped: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class Sink(Protocol):
    """Where batches become durable rows (Rule 1)."""

    def write(self, table: str, rows: list[Row]) -> WriteOutcome: ...

    def ping(self) -> None:
        """Return if the sink answers; raise SinkBackpressureError if not."""

    def close(self) -> None: ...


class DeadLetterOut(Protocol):
    """Where undecodable messages and rejected rows go (Rule 2)."""

    def publish(self, dead: list[DeadLetter]) -> None: ...

    def close(self) -> None: ...


class OffsetStore(Protocol):
    """The consumer group's committed offsets (Rule 3); used from the poll thread only."""

    def commit(self, offsets: dict[TopicPartition, int]) -> list[str]: ...
