"""What a librdkafka error code means to the pipeline: one table, read by every stage.

Rules:
  1. ``TABLE`` is the only place a Kafka error code is given a meaning; callers ask ``kind_of``,
     ``topic_missing`` or ``is_fatal``, or take a set of codes from ``codes``. A code not in the
     table is ``Kind.OTHER``: the caller logs it and goes on (librdkafka retries by itself).
  2. Classification reads the code (and librdkafka's own ``fatal()`` flag), never message text.
  3. Pure: no client, no I/O; a ``KafkaException`` is unwrapped to the ``KafkaError`` it carries.
"""

from __future__ import annotations

from enum import Enum

from confluent_kafka import KafkaError, KafkaException


class Kind(Enum):
    TOPIC_MISSING = "topic_missing"  # the broker does not know the topic
    PARTITION_MISSING = "partition_missing"  # librdkafka does not know the partition (yet, or any more)
    NO_LEADER = "no_leader"  # the partition has no leader yet (a topic created a moment ago) or it moved
    FATAL = "fatal"  # the client instance is unusable (or fenced): replace it or exit
    PRODUCER_LOST = "producer_lost"  # "this producer", not "this message": send it again on a new one
    NO_ANSWER = "no_answer"  # the request got no answer: says nothing about the topic
    ALREADY_EXISTS = "already_exists"  # a topic to create is there already: created, for us
    OTHER = "other"


TABLE: dict[int, Kind] = {
    KafkaError.UNKNOWN_TOPIC_OR_PART: Kind.TOPIC_MISSING,
    KafkaError._UNKNOWN_TOPIC: Kind.TOPIC_MISSING,
    KafkaError._UNKNOWN_PARTITION: Kind.PARTITION_MISSING,
    KafkaError.LEADER_NOT_AVAILABLE: Kind.NO_LEADER,
    KafkaError.NOT_LEADER_FOR_PARTITION: Kind.NO_LEADER,
    KafkaError._FATAL: Kind.FATAL,
    KafkaError.FENCED_INSTANCE_ID: Kind.FATAL,  # librdkafka reports fencing as _FATAL too
    KafkaError._PURGE_QUEUE: Kind.PRODUCER_LOST,
    KafkaError._PURGE_INFLIGHT: Kind.PRODUCER_LOST,
    KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER: Kind.PRODUCER_LOST,
    KafkaError.UNKNOWN_PRODUCER_ID: Kind.PRODUCER_LOST,
    KafkaError._TIMED_OUT: Kind.NO_ANSWER,
    KafkaError._TRANSPORT: Kind.NO_ANSWER,
    KafkaError._ALL_BROKERS_DOWN: Kind.NO_ANSWER,
    KafkaError._RESOLVE: Kind.NO_ANSWER,
    KafkaError._DESTROY: Kind.NO_ANSWER,
    KafkaError.TOPIC_ALREADY_EXISTS: Kind.ALREADY_EXISTS,
}


def codes(*kinds: Kind) -> frozenset[int]:
    """Every code of ``kinds`` (for callers that test ``code in SET`` in a hot path)."""
    return frozenset(code for code, kind in TABLE.items() if kind in kinds)


def error_of(err: KafkaError | BaseException | None) -> KafkaError | None:
    """The ``KafkaError`` that ``err`` is or carries (a ``KafkaException``'s first argument)."""
    if isinstance(err, KafkaException):
        first = err.args[0] if err.args else None
        return first if isinstance(first, KafkaError) else None
    return err if isinstance(err, KafkaError) else None


def kind_of(err: KafkaError | BaseException | None) -> Kind:
    """Rule 1: the meaning of ``err``; librdkafka's ``fatal()`` flag makes any code FATAL."""
    error = error_of(err)
    if error is None:
        return Kind.OTHER
    if error.fatal():
        return Kind.FATAL
    return TABLE.get(error.code(), Kind.OTHER)


def topic_missing(err: KafkaError | BaseException | None) -> bool:
    """True when ``err`` says a topic or partition does not exist on the broker."""
    return kind_of(err) in (Kind.TOPIC_MISSING, Kind.PARTITION_MISSING)


def not_ready(err: KafkaError | BaseException | None) -> bool:
    """True when ``err`` says the topic is not (yet) there to read: missing, or a partition without a
    leader. A topic created a moment ago answers so for a while; asking again later is right."""
    return kind_of(err) in (Kind.TOPIC_MISSING, Kind.PARTITION_MISSING, Kind.NO_LEADER)


def is_fatal(err: KafkaError | BaseException | None) -> bool:
    """True when the client that reported ``err`` is unusable (or fenced)."""
    return kind_of(err) is Kind.FATAL


MISSING_TOPIC = codes(Kind.TOPIC_MISSING)  # the worker creates its topics again on these
FATAL = codes(Kind.FATAL)
PRODUCER_GONE = codes(Kind.PRODUCER_LOST, Kind.FATAL)  # a producer's failed message goes again
NO_ANSWER = codes(Kind.NO_ANSWER)
