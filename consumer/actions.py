"""What the worker's core takes in and gives out: plain values, no behaviour (consumer/core.py).

Inputs are Kafka's messages and errors as plain values (the shell translates confluent-kafka's
objects); actions are what the shell (consumer/loop.py) executes, in the order given. Each
action's docstring says what executing it means; an action with a result hands it back to the
core through the input its docstring names.

Rules:
  1. Frozen dataclasses with no methods but derived properties; nothing here does I/O.
  2. ``FLUSHES`` is the whole of the out-of-turn flush policy: per reason, whether the offsets are
     committed once the rows are durable, and whether the flush waits for the database.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from consumer.batcher import Batch

TP = tuple[str, int]
Metric = Literal["consumed", "partition_resets", "consumer_renewals", "topics_recreated", "paused",
                 "assigned", "buffered"]


class ErrorKind(enum.Enum):
    """What a Kafka error code means to the worker (Rules 5, 6)."""

    MISSING_TOPIC = "missing_topic"  # the broker does not know a subscribed topic: create it
    FATAL = "fatal"  # the consumer cannot go on: stop, exit 1
    LOG = "log"  # anything else: librdkafka recovers on its own


class Why(enum.Enum):
    """Why buffers are flushed out of turn."""

    REVOKED = "revoked"
    LOST = "lost"
    RECREATED = "recreated"
    RENEWED = "renewed"
    SHUTDOWN = "shutdown"


# why -> (commit the offsets once written, wait for the database until the deadline)  (Rule 4)
FLUSHES: dict[Why, tuple[bool, bool]] = {
    Why.REVOKED: (True, False),
    Why.LOST: (False, False),
    Why.RECREATED: (False, False),
    Why.RENEWED: (False, False),
    Why.SHUTDOWN: (True, True),
}


# -- inputs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """A Kafka message, as plain values."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Fault:
    """A Kafka error event, as plain values."""

    code: int
    fatal: bool
    text: str


# -- actions ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Poll:
    """Consume up to ``max_messages``, blocking at most ``timeout`` s; then ``received``."""

    max_messages: int
    timeout: float


@dataclass(frozen=True)
class WaitForWriter:
    """Wait up to ``timeout`` s for the batch in flight (and commit it when durable)."""

    timeout: float


@dataclass(frozen=True)
class Collect:
    """Commit the batch in flight if it is done (never waits)."""


@dataclass(frozen=True)
class Pause:
    """Pause every assigned partition."""


@dataclass(frozen=True)
class Resume:
    """Resume every assigned partition."""


@dataclass(frozen=True)
class Submit:
    """Hand ``batch`` to the writer."""

    batch: Batch


@dataclass(frozen=True)
class Flush:
    """Write ``batch`` now (if ``may_write``), committing per ``FLUSHES``; then ``flushed``."""

    batch: Batch
    deadline: float
    why: Why

    @property
    def commit(self) -> bool:
        return FLUSHES[self.why][0]


@dataclass(frozen=True)
class Settle:
    """Finish the batch in flight, abandoning its retries at ``deadline``."""

    deadline: float


@dataclass(frozen=True)
class Exclude:
    """The batch in flight must commit nothing for these partitions."""

    partitions: tuple[TP, ...]


@dataclass(frozen=True)
class Abandon:
    """Stop retrying the batch in flight."""


@dataclass(frozen=True)
class CreateTopics:
    """Send a request creating the missing topics; then ``topics_created``."""


@dataclass(frozen=True)
class RefreshMetadata:
    """Ask for the whole cluster's metadata, waiting at most ``timeout`` s."""

    timeout: float


@dataclass(frozen=True)
class RenewConsumer:
    """Close the consumer (its revocations come back as ``revoked``), make a new one, subscribe."""


@dataclass(frozen=True)
class Housekeeping:
    """Check the database when idle; record the lag of ``partitions``."""

    partitions: tuple[TP, ...]


@dataclass(frozen=True)
class Count:
    metric: Metric
    n: int = 1


@dataclass(frozen=True)
class Gauge:
    metric: Metric
    value: float


@dataclass(frozen=True)
class ForgetPartition:
    """Drop the partition's per-partition metrics."""

    tp: TP


@dataclass(frozen=True)
class Fatal:
    """Stop without committing further: raise FatalKafkaError(reason)."""

    reason: str


@dataclass(frozen=True)
class CloseConsumer:
    """Close the Kafka consumer (leaving the group)."""


@dataclass(frozen=True)
class CloseWriter:
    """Close the Checkpointer (its writer thread, the sink, the dead-letter producer)."""


Action = (Poll | WaitForWriter | Collect | Pause | Resume | Submit | Flush | Settle | Exclude | Abandon
          | CreateTopics | RefreshMetadata | RenewConsumer | Housekeeping | Count | Gauge
          | ForgetPartition | Fatal | CloseConsumer | CloseWriter)
