"""The query layer's exceptions (db.service.errors): psycopg2 errors classified by SQLSTATE."""

from __future__ import annotations

import psycopg2
import psycopg2.errors
import pytest

from db.service.errors import (
    DatabaseError,
    DatabaseUnavailable,
    InvalidArgument,
    QueryError,
    QueryTimeout,
    SchemaMissing,
    classify,
)


def _with_code(exc: psycopg2.Error, pgcode: str) -> psycopg2.Error:
    """Attach a SQLSTATE the way psycopg2 restores one when unpickling (pgcode is read-only)."""
    exc.__setstate__({"pgcode": pgcode, "pgerror": str(exc)})  # type: ignore[no-untyped-call]
    return exc


def _server(pgcode: str, message: str) -> psycopg2.Error:
    return _with_code(psycopg2.errors.lookup(pgcode)(message), pgcode)


def test_invalid_argument_names_its_parameter() -> None:
    """The message is "param: message"; both parts are kept as attributes."""
    err = InvalidArgument("from", "not a time")
    assert str(err) == "from: not a time"
    assert (err.param, err.message) == ("from", "not a time")
    assert isinstance(err, QueryError)


def test_a_missing_table_says_to_migrate() -> None:
    """42P01 is SchemaMissing, its first line followed by what to run."""
    got = classify(_server("42P01", 'relation "trades" does not exist\nLINE 1: select'))
    assert type(got) is SchemaMissing
    assert str(got) == 'relation "trades" does not exist (run python -m db.migrate)'


def test_a_cancelled_statement_is_a_timeout() -> None:
    """57014 is QueryTimeout with the server's first line."""
    got = classify(_server("57014", "canceling statement due to statement timeout"))
    assert type(got) is QueryTimeout
    assert str(got) == "canceling statement due to statement timeout"


@pytest.mark.parametrize("pgcode", ["08006", "08000", "57P01", "57P02", "57P03"])
def test_connection_states_are_unavailable(pgcode: str) -> None:
    """Class 08 and the shutdown states 57P01-3 mean the database cannot be reached."""
    got = classify(_server(pgcode, "gone"))
    assert type(got) is DatabaseUnavailable and str(got) == "gone"


def test_an_error_without_sqlstate_on_the_connection_is_unavailable() -> None:
    """OperationalError or InterfaceError with no SQLSTATE: the connection broke."""
    assert type(classify(psycopg2.OperationalError("server closed"))) is DatabaseUnavailable
    assert str(classify(psycopg2.OperationalError("server closed\nmore"))) == "server closed"
    assert type(classify(psycopg2.InterfaceError("connection already closed"))) is DatabaseUnavailable


def test_other_errors_are_plain_database_errors() -> None:
    """Any other SQLSTATE, or a stateless error of another class, is DatabaseError."""
    got = classify(_server("22003", "numeric field overflow"))
    assert type(got) is DatabaseError and str(got) == "numeric field overflow"
    assert type(classify(psycopg2.ProgrammingError("bad"))) is DatabaseError
    assert type(classify(_with_code(psycopg2.OperationalError("x"), "57P04"))) is DatabaseError
    assert type(classify(_with_code(psycopg2.OperationalError("x"), "42P01"))) is SchemaMissing


def test_an_empty_message_is_named_by_the_error_class() -> None:
    """A blank message gives the class name as the line."""
    assert str(classify(psycopg2.ProgrammingError("  \n"))) == "ProgrammingError"
    assert str(classify(psycopg2.ProgrammingError(" first \nsecond"))) == "first "  # stripped whole, then cut
