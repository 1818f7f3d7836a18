"""The exceptions the query service raises on purpose (db.service.queries, its CLI and HTTP API).
The store's own (``MigrationError``) is in db.store.errors.

    QueryError                  base of everything below
    ├── InvalidArgument         a user-supplied parameter is bad; ``.param`` names it
    │                           (CLI: usage error, exit 2; HTTP: 400)
    └── DatabaseError           the database could not answer (CLI: exit 1; HTTP: 503/504)
        ├── DatabaseUnavailable cannot connect, or the connection was lost (SQLSTATE class 08,
        │                       admin shutdown 57P01-57P03)
        ├── SchemaMissing       a table is missing (42P01): migrations were not applied
        └── QueryTimeout        the statement timeout cancelled the query (57014)

Rule: database errors are classified by SQLSTATE (``classify``), never by message text, and
wrapped with ``raise ... from exc`` so the cause stays attached.
"""

from __future__ import annotations

import psycopg2


class QueryError(Exception):
    """Base of the query layer's exceptions."""


class InvalidArgument(QueryError):
    """A user-supplied parameter is bad; ``param`` is its name (e.g. ``from``)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


class DatabaseError(QueryError):
    """The database could not answer the query."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached, or the connection broke."""


class SchemaMissing(DatabaseError):
    """The tables are missing: ``python -m db.migrate`` was not run on this database."""


class QueryTimeout(DatabaseError):
    """The query ran past the statement timeout and was cancelled."""


_UNAVAILABLE_STATES = ("57P01", "57P02", "57P03")


def classify(exc: psycopg2.Error) -> DatabaseError:
    """The query-layer exception for a psycopg2 error (by SQLSTATE)."""
    state = exc.pgcode or ""
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if state == "42P01":
        return SchemaMissing(f"{first_line} (run python -m db.migrate)")
    if state == "57014":
        return QueryTimeout(first_line)
    if state.startswith("08") or state in _UNAVAILABLE_STATES:
        return DatabaseUnavailable(first_line)
    if not state and isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return DatabaseUnavailable(first_line)
    return DatabaseError(first_line)
