"""The worker's exceptions and the SQLSTATE classification of database errors.

Exception tree:

    WorkerError
     ├── DecodeError              a Kafka message is not a valid event (-> dead-letter topic)
     ├── SinkBackpressureError    the sink cannot take a batch now (``retry_after`` s, if it
     │    │                       says): retried with backoff, consumption pauses when the
     │    │                       buffers fill, no offset moves (consumer/backpressure.py)
     │    └── TransientDatabaseError   (also a DatabaseError) connection, server state, locks
     ├── DatabaseError            wraps a psycopg2 error (``raise ... from exc``)
     │    ├── TransientDatabaseError   see above
     │    └── FatalDatabaseError       not caused by one row and not transient (missing table,
     │                                 bad credentials...): the worker stops, exit status 1
     ├── DeadLetterError          the dead-letter topic did not take a message (retried)
     ├── OffsetOrderError         a partition's offset went back (its log was recreated)
     ├── FatalKafkaError          librdkafka says the consumer cannot go on (e.g. fenced): exit 1
     └── CommitError              the broker did not take an offset commit (counted, not retried)

Rules:
  1. Classification is by SQLSTATE (``exc.pgcode``), never by message text.
  2. A psycopg2 error with no SQLSTATE is a broken connection (OperationalError,
     InterfaceError): transient.
  3. ``ROW`` errors (classes 22 data exception and 23 integrity violation) are the only ones
     blamed on a row; they lead to isolating that row, never to dropping a batch.
"""

from __future__ import annotations

import enum

import psycopg2
from psycopg2 import errorcodes


class WorkerError(Exception):
    """Base of every error the worker raises."""


class DecodeError(WorkerError):
    """A message that is not a valid event; ``reason`` goes into the dead-letter header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SinkBackpressureError(WorkerError):
    """The sink cannot take the batch now; try again, after ``retry_after`` seconds if given."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class DatabaseError(WorkerError):
    """A database failure, classified."""


class TransientDatabaseError(DatabaseError, SinkBackpressureError):
    """Worth retrying: the connection, the server's state or a lock, not the data."""


class FatalDatabaseError(DatabaseError):
    """Neither transient nor a bad row: configuration or schema. Retrying cannot help."""


class DeadLetterError(WorkerError):
    """Dead letters were not acknowledged by the broker in time."""


class OffsetOrderError(WorkerError):
    """An offset below the partition's next one: a bug, or the partition's log was recreated."""

    def __init__(self, topic: str, partition: int, offset: int, expected: int) -> None:
        super().__init__(f"{topic}[{partition}]: offset {offset} after {expected - 1}")
        self.topic, self.partition, self.offset, self.expected = topic, partition, offset, expected


class FatalKafkaError(WorkerError):
    """The Kafka client cannot go on (a fatal error, or fenced by a worker of the same name)."""


class CommitError(WorkerError):
    """The broker did not take an offset commit (the rows are durable; a replay skips them)."""


class Disposition(enum.Enum):
    TRANSIENT = "transient"
    ROW = "row"
    FATAL = "fatal"


TRANSIENT_SQLSTATES = frozenset(
    {
        errorcodes.ADMIN_SHUTDOWN,  # 57P01
        errorcodes.CRASH_SHUTDOWN,  # 57P02
        errorcodes.CANNOT_CONNECT_NOW,  # 57P03
        errorcodes.SERIALIZATION_FAILURE,  # 40001
        errorcodes.DEADLOCK_DETECTED,  # 40P01
        errorcodes.TOO_MANY_CONNECTIONS,  # 53300
        errorcodes.INSUFFICIENT_RESOURCES,  # 53000
        errorcodes.DISK_FULL,  # 53100
        errorcodes.OUT_OF_MEMORY,  # 53200
        errorcodes.LOCK_NOT_AVAILABLE,  # 55P03
        errorcodes.QUERY_CANCELED,  # 57014 (statement_timeout)
        errorcodes.IDLE_IN_TRANSACTION_SESSION_TIMEOUT,  # 25P03
    }
)
TRANSIENT_CLASSES = frozenset({"08"})  # connection exception
ROW_CLASSES = frozenset({"22", "23"})  # data exception, integrity constraint violation


def classify_sqlstate(pgcode: str | None) -> Disposition:
    """The disposition of a SQLSTATE; None (no server answer) means a broken connection."""
    if pgcode is None:
        return Disposition.TRANSIENT
    if pgcode in TRANSIENT_SQLSTATES or pgcode[:2] in TRANSIENT_CLASSES:
        return Disposition.TRANSIENT
    if pgcode[:2] in ROW_CLASSES:
        return Disposition.ROW
    return Disposition.FATAL


def classify(exc: psycopg2.Error) -> Disposition:
    """The disposition of a psycopg2 error (Rule 2: no SQLSTATE on a dead connection)."""
    if isinstance(exc, psycopg2.InterfaceError):
        return Disposition.TRANSIENT
    if isinstance(exc, psycopg2.OperationalError) and exc.pgcode is None:
        return Disposition.TRANSIENT
    return classify_sqlstate(exc.pgcode)


def describe(exc: psycopg2.Error) -> str:
    """A one-line reason for logs and dead-letter headers: SQLSTATE and the server's message."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{exc.pgcode or 'connection'}: {first}"[:500]
