"""Ingestion's exceptions (ingestion.errors and ingestion.history.errors) keep what callers read."""

from __future__ import annotations

from ingestion.errors import BackfillError, ConnectError, IngestionError, ParseError, RateLimited
from ingestion.history.errors import ArchiveError, ChecksumMismatch, HistoryError


def test_parse_error_keeps_reason_and_stream() -> None:
    """The reason is the message; the stream defaults to None."""
    err = ParseError("bad price", "btcusdt@trade")
    assert (str(err), err.reason, err.stream) == ("bad price", "bad price", "btcusdt@trade")
    assert ParseError("x").stream is None


def test_connect_and_backfill_errors_keep_status_and_retry_after() -> None:
    """Status and retry_after default to None and are kept when given."""
    for cls in (ConnectError, BackfillError):
        err = cls("HTTP 503", 503, 2.5)
        assert (str(err), err.status, err.retry_after) == ("HTTP 503", 503, 2.5)
        plain = cls("refused")
        assert (str(plain), plain.status, plain.retry_after) == ("refused", None, None)
        assert isinstance(err, IngestionError)


def test_rate_limited_says_when_to_retry_and_whether_banned() -> None:
    """429 is a slow-down, 418 a ban; both carry status and retry_after."""
    slow = RateLimited(429, 1.5)
    assert (str(slow), slow.status, slow.retry_after, slow.banned) == (
        "HTTP 429: retry after 1.5 s",
        429,
        1.5,
        False,
    )
    ban = RateLimited(418, 120.0)
    assert (str(ban), ban.status, ban.retry_after, ban.banned) == (
        "HTTP 418: retry after 120 s",
        418,
        120.0,
        True,
    )
    assert isinstance(ban, BackfillError)


def test_archive_errors_name_the_file() -> None:
    """ "file: reason", both kept; a checksum mismatch is an archive error."""
    err = ChecksumMismatch("BTCUSDT-trades-2026-01-01.zip", "sha256 differs")
    assert str(err) == "BTCUSDT-trades-2026-01-01.zip: sha256 differs"
    assert (err.file, err.reason) == ("BTCUSDT-trades-2026-01-01.zip", "sha256 differs")
    assert isinstance(err, ArchiveError) and isinstance(err, HistoryError) and isinstance(err, IngestionError)
