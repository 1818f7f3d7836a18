"""The sink's share of the rollups: capture the rows a write inserted, merge them, same transaction.

Rules:
  1. Each COPY table has a temporary twin ``_new_<table>`` (ON COMMIT DELETE ROWS) holding
     exactly the rows the current transaction inserted: the fast path (a plain COPY that
     succeeded, so every row was new) copies the same payload into it; the duplicate path
     inserts with ``ON CONFLICT DO NOTHING RETURNING`` and keeps what came back. The twin
     types only the columns the rollup reads; the others stay text, so the second COPY does
     not parse timestamps and numbers nobody reads (it is on the worker's hot path).
  2. ``roll_up`` merges ``_new_<table>`` into the rollup (db.rollups) before COMMIT, so the
     rows and their rollup are committed together or not at all.
  3. Savepoint rollbacks of the bisection (sink Rule 4) also roll back what they captured, so
     a rejected row is never counted.
  4. Never commits, never opens connections: the sink owns the transaction.
"""

from __future__ import annotations

import io

import psycopg2.extensions
from psycopg2 import sql

from consumer.decode import BOOK_COLUMNS, BOOK_TICKER, TRADE_COLUMNS, TRADES
from db.store.rollups import merge_statement

ROLLED_UP = (TRADES, BOOK_TICKER)
_COLUMNS = {TRADES: TRADE_COLUMNS, BOOK_TICKER: BOOK_COLUMNS}
# The columns the rollup reads, with their types; every other column of the twin is text.
_READ = {
    TRADES: {"time": "timestamptz", "symbol": "text", "type": "text", "id": "bigint", "price": "numeric",
             "qty": "numeric"},
    BOOK_TICKER: {"time": "timestamptz", "symbol": "text", "bid_price": "numeric", "ask_price": "numeric"},
}


def new_rows(table: str) -> str:
    """Name of the temporary table holding the rows this transaction inserted into ``table``."""
    return f"_new_{table}"


def _statements() -> dict[str, sql.Composed]:
    out: dict[str, sql.Composed] = {}
    for table in ROLLED_UP:
        new, raw = sql.Identifier(new_rows(table)), sql.Identifier(table)
        cols = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS[table]))
        read = sql.SQL(", ").join(map(sql.Identifier, _READ[table]))
        defs = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_READ[table].get(c, "text")))
            for c in _COLUMNS[table])
        out[f"create:{table}"] = sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(new, defs)
        out[f"capture:{table}"] = sql.SQL("COPY {} ({}) FROM STDIN").format(new, cols)
        out[f"insert:{table}"] = sql.SQL(
            "WITH ins AS (INSERT INTO {} SELECT * FROM {} ON CONFLICT DO NOTHING RETURNING {})"
            " INSERT INTO {} ({}) SELECT {} FROM ins"
        ).format(raw, sql.Identifier(f"_stage_{table}"), read, new, read, read)
        out[f"merge:{table}"] = merge_statement(table, new_rows(table))
    return out


STATEMENTS = _statements()


def create_capture_tables(cur: psycopg2.extensions.cursor) -> None:
    """Create the ``_new_<table>`` twins for this session (idempotent)."""
    for table in ROLLED_UP:
        cur.execute(STATEMENTS[f"create:{table}"])


def capture_copied(cur: psycopg2.extensions.cursor, table: str, payload: bytes) -> None:
    """Fast path (Rule 1): every row of the COPY was inserted; keep the same payload."""
    cur.copy_expert(STATEMENTS[f"capture:{table}"], io.BytesIO(payload), size=1 << 20)


def capturing_insert(table: str) -> sql.Composed:
    """Duplicate path (Rule 1): stage -> table, skipping duplicates, capturing what was new."""
    return STATEMENTS[f"insert:{table}"]


def roll_up(cur: psycopg2.extensions.cursor, table: str) -> None:
    """Merge the captured rows into the minutes and hours (Rule 2); COMMIT empties the capture."""
    if table in ROLLED_UP:
        cur.execute(STATEMENTS[f"merge:{table}"])
