"""The exception the store raises on purpose.

    MigrationError   the database cannot be migrated as it is (TimescaleDB missing and not
                     creatable); one line naming host:port/dbname and what to run
"""

from __future__ import annotations


class MigrationError(Exception):
    """The database cannot be migrated as it is; the message is one line saying what to do."""
