"""consumer.errors: database errors classified by SQLSTATE alone; a one-line reason for each."""

from __future__ import annotations

import psycopg2
import psycopg2.errors
import pytest

from consumer.errors import (
    ROW_CLASSES,
    TRANSIENT_CLASSES,
    TRANSIENT_SQLSTATES,
    DecodeError,
    Disposition,
    SinkBackpressureError,
    TransientDatabaseError,
    WorkerError,
    classify,
    classify_sqlstate,
    describe,
)


def server_error(pgcode: str, message: str) -> psycopg2.Error:
    """The psycopg2 class for ``pgcode`` carrying that SQLSTATE, as a server answer would."""
    return _with_code(psycopg2.errors.lookup(pgcode)(message), pgcode, message)


def _with_code(exc: psycopg2.Error, pgcode: str, message: str) -> psycopg2.Error:
    """Attach a SQLSTATE the way psycopg2 restores one when unpickling (pgcode is read-only)."""
    exc.__setstate__({"pgcode": pgcode, "pgerror": f"ERROR:  {message}"})  # type: ignore[no-untyped-call]
    return exc


@pytest.mark.parametrize(
    ("pgcode", "disposition"),
    [
        ("57P01", Disposition.TRANSIENT),  # admin shutdown
        ("40001", Disposition.TRANSIENT),  # serialization failure
        ("40P01", Disposition.TRANSIENT),  # deadlock
        ("53300", Disposition.TRANSIENT),  # too many connections
        ("57014", Disposition.TRANSIENT),  # statement timeout
        ("25P03", Disposition.TRANSIENT),  # idle in transaction timeout
        ("08006", Disposition.TRANSIENT),  # class 08: connection failure
        ("08000", Disposition.TRANSIENT),
        ("22003", Disposition.ROW),  # numeric value out of range
        ("22P02", Disposition.ROW),  # invalid text representation
        ("23505", Disposition.ROW),  # unique violation
        ("23514", Disposition.ROW),  # check violation
        ("42P01", Disposition.FATAL),  # undefined table
        ("28P01", Disposition.FATAL),  # invalid password
        ("40002", Disposition.FATAL),  # integrity violation in commit: not in the transient list
        ("XX000", Disposition.FATAL),  # internal error
    ],
)
def test_sqlstates_are_classified_by_code_and_class(pgcode: str, disposition: Disposition) -> None:
    """Listed codes and class 08 are transient, classes 22/23 blame a row, anything else is fatal."""
    assert classify_sqlstate(pgcode) is disposition
    assert classify(server_error(pgcode, "whatever the server says")) is disposition


def test_no_sqlstate_is_a_broken_connection() -> None:
    """An error without a SQLSTATE (no server answer) is transient."""
    assert classify_sqlstate(None) is Disposition.TRANSIENT
    assert classify(psycopg2.OperationalError("server closed the connection")) is Disposition.TRANSIENT
    assert classify(psycopg2.InterfaceError("connection already closed")) is Disposition.TRANSIENT


def test_an_interface_error_is_transient_whatever_its_code() -> None:
    """InterfaceError is a client-side connection problem even when a code is attached."""
    assert classify(_with_code(psycopg2.InterfaceError("closed"), "42P01", "closed")) is Disposition.TRANSIENT


def test_an_operational_error_with_a_code_follows_its_code() -> None:
    """OperationalError with a SQLSTATE is judged by that code, not by its type."""
    assert classify(_with_code(psycopg2.OperationalError("x"), "42P01", "x")) is Disposition.FATAL
    assert classify(_with_code(psycopg2.OperationalError("x"), "57P01", "x")) is Disposition.TRANSIENT


def test_the_message_text_never_decides() -> None:
    """A transient-sounding message on a row error is still a row error."""
    exc = server_error("23505", "deadlock detected; connection timeout; terminating")
    assert classify(exc) is Disposition.ROW


def test_the_classification_tables_hold_their_codes() -> None:
    """The transient list has exactly its twelve SQLSTATEs; classes are two-character prefixes."""
    assert TRANSIENT_SQLSTATES == {
        "57P01", "57P02", "57P03", "40001", "40P01", "53300", "53000", "53100", "53200", "55P03",
        "57014", "25P03",
    }  # fmt: skip
    assert TRANSIENT_CLASSES == {"08"} and ROW_CLASSES == {"22", "23"}


def test_describe_is_sqlstate_and_first_line() -> None:
    """The reason is 'SQLSTATE: first line of the message'; no code reads 'connection'."""
    exc = server_error("23505", "duplicate key value\nDETAIL:  Key (id)=(1) exists.")
    assert describe(exc) == "23505: duplicate key value"
    assert (
        describe(psycopg2.OperationalError("  server closed\nthe connection  "))
        == "connection: server closed"
    )


def test_describe_of_an_empty_message_names_the_type_and_is_bounded() -> None:
    """An error with no text is described by its class name; a long one is cut at 500 characters."""
    assert describe(psycopg2.InterfaceError("")) == "connection: InterfaceError"
    assert describe(psycopg2.OperationalError("x" * 900)) == "connection: " + "x" * 488


def test_decode_error_carries_its_reason() -> None:
    """A DecodeError is a WorkerError whose reason is its message."""
    exc = DecodeError("field price must be a decimal string")
    assert isinstance(exc, WorkerError)
    assert exc.reason == str(exc) == "field price must be a decimal string"


def test_back_pressure_carries_its_retry_after() -> None:
    """A sink's back-pressure error keeps its reason and retry_after (None when not given)."""
    assert SinkBackpressureError("busy", 2.5).retry_after == 2.5
    assert SinkBackpressureError("busy").retry_after is None and str(SinkBackpressureError("busy")) == "busy"
    assert issubclass(TransientDatabaseError, SinkBackpressureError)
