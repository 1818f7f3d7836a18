"""Exception tree of the ingestion stage.

Every error ingestion raises on purpose derives from :class:`IngestionError`::

    IngestionError
    ├── ParseError            a frame is not a valid event or control message (-> dead letter)
    ├── ConnectError          a WebSocket connection could not be opened or subscribed
    │                         (carries the upgrade's HTTP ``status``, and ``retry_after``
    │                         when the server named one)
    ├── BackfillError         a REST backfill request failed (carries ``status`` when the
    │   │                     server answered, and ``retry_after``)
    │   └── RateLimited       HTTP 429 / 418 (``banned`` for 418)
    ├── TopicSetupError       the Kafka topics could not be created or checked at start
    ├── FrontierError         the frontier topic could not be read back in full
    └── UniverseError         exchangeInfo could not be fetched or read (SYMBOLS patterns)

Library errors are wrapped with ``raise ... from exc`` where they cross a module boundary. A topic
that cannot be created is the Kafka kit's ``binance_pipeline.kafka.errors.TopicsNotCreated``.
Retry decisions read these attributes (``connection.is_retryable``, ``rest.is_retryable``),
never the message text.
"""

from __future__ import annotations


class IngestionError(Exception):
    """Base class of every error ingestion raises on purpose."""


class ParseError(IngestionError):
    """A frame failed validation; ``reason`` is one line, ``stream`` the stream name if known."""

    def __init__(self, reason: str, stream: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stream = stream


class ConnectError(IngestionError):
    """Opening or subscribing a WebSocket connection failed; ``status`` is None without an HTTP answer."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class BackfillError(IngestionError):
    """A REST backfill request failed (bad status, bad body, transport error)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RateLimited(BackfillError):
    """HTTP 429 (slow down) or 418 (IP banned); wait ``retry_after`` seconds."""

    retry_after: float

    def __init__(self, status: int, retry_after: float) -> None:
        super().__init__(f"HTTP {status}: retry after {retry_after:g} s", status, retry_after)
        self.banned = status == 418


class TopicSetupError(IngestionError):
    """The pipeline topics could not be created or described at start."""


class FrontierError(IngestionError):
    """The frontier topic could not be read in full (ingestion does not start blind)."""


class UniverseError(IngestionError):
    """exchangeInfo could not be fetched or its answer is malformed (SYMBOLS patterns)."""
