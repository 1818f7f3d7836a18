"""Exception tree of the Kafka kit.

    KafkaKitError
    ├── TopicsNotCreated      some topics could not be created (``failures``: {topic: reason})
    └── CompactedReadError    a compacted topic could not be read in full

Library errors are wrapped with ``raise ... from exc``. Callers that have their own tree (the
frontier's ``FrontierError``, the history import's ``ProgressError``) wrap these in turn.
"""

from __future__ import annotations


class KafkaKitError(Exception):
    """Base class of every error the kit raises on purpose."""


class TopicsNotCreated(KafkaKitError):
    """Some topics are still missing; ``failures`` maps each to why (naming the broker asked)."""

    def __init__(self, failures: dict[str, str]) -> None:
        super().__init__(f"cannot create topics {failures}")
        self.failures = failures


class CompactedReadError(KafkaKitError):
    """A compacted topic could not be read up to its end (never a partial read)."""
