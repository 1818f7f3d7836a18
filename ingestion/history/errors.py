"""Exception tree of the history import (``python -m ingestion.history``).

    HistoryError                 (an ``ingestion.errors.IngestionError``)
    ├── ArchiveError             an archive file could not be used; ``.file`` names it
    │   └── ChecksumMismatch     the zip's SHA-256 differs from its .CHECKSUM (every attempt)
    ├── RowError                 one CSV line is not a valid archive row (-> dead letter)
    ├── PublishError             Kafka did not acknowledge every row of a file or a page
    ├── ProgressError            the progress topic could not be read in full
    └── AuditError               the database could not answer the audit

Library errors are wrapped with ``raise ... from exc``. Topics that cannot be created are the Kafka
kit's ``binance_pipeline.kafka.errors.TopicsNotCreated`` (``__main__`` reports it like these).
"""

from __future__ import annotations

from ingestion.errors import IngestionError


class HistoryError(IngestionError):
    """Base of the history import's errors."""


class ArchiveError(HistoryError):
    """An archive file (``file``: its name) could not be downloaded or read."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file, self.reason = file, reason


class ChecksumMismatch(ArchiveError):
    """The zip's SHA-256 does not match its ``.CHECKSUM`` file."""


class RowError(HistoryError):
    """A CSV line is not a valid trades/aggTrades archive row."""


class PublishError(HistoryError):
    """Some rows were not acknowledged by Kafka."""


class ProgressError(HistoryError):
    """The progress topic could not be read in full."""


class AuditError(HistoryError):
    """The database could not answer the audit (unreachable, or still no table at the deadline)."""
