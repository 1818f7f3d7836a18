"""The sink's share of the rollups: capture the rows a write inserted, merge them, same transaction.

Rules:
  1. The fast path (a plain COPY straight into the table that succeeded, so every row was new,
     at the top level of the transaction) reads the rows back from the table by ``xmin``
     within the batch's time bounds (db.store.rollups Rule 7): no second parse of the batch.
     A batch spanning more than ``READ_BACK_SPAN`` would read other rows of that span too, so
     it is copied into the twin below instead.
  2. Each COPY table has a temporary twin ``_new_<table>`` (ON COMMIT DELETE ROWS) holding
     exactly the rows the current transaction inserted, for the other cases: the duplicate
     path inserts with ``ON CONFLICT DO NOTHING RETURNING`` and keeps what came back (under
     the bisection's savepoints, where xmin is not the transaction's id), and a wide fast-path
     batch copies its payload into it. The twin types only the columns the rollup reads; the
     others stay text, so that COPY does not parse what nobody reads.
  3. ``roll_up`` merges the inserted rows into the rollups and coverage (db.store.rollups)
     before COMMIT, so the rows and their rollups are committed together or not at all. The
     session says so (``pipeline.rollups = on``), so migration 006's trigger does not mark the
     coverage dirty for these writes.
  4. Savepoint rollbacks of the bisection (sink Rule 4) also roll back what they captured, so
     a rejected row is never counted.
  5. Never commits, never opens connections: the sink owns the transaction.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import psycopg2.extensions
from psycopg2 import sql

from consumer.decode import BOOK_COLUMNS, BOOK_TICKER, TRADE_COLUMNS, TRADES
from db.store.rollups import inserted_rows, merge_statement

ROLLED_UP = (TRADES, BOOK_TICKER)
READ_BACK_SPAN = timedelta(minutes=5)  # Rule 1
DECLARE = "SET pipeline.rollups = 'on'"  # Rule 3
_TIME = slice(0, 29)  # a COPY line starts with its time, 'YYYY-MM-DD HH:MM:SS.ffffff+00' (decode Rule 4)
_COLUMNS = {TRADES: TRADE_COLUMNS, BOOK_TICKER: BOOK_COLUMNS}
# The columns the rollup reads, with their types; every other column of the twin is text.
_READ = {
    TRADES: {"time": "timestamptz", "symbol": "text", "type": "text", "id": "bigint", "first_id": "bigint",
             "last_id": "bigint", "price": "numeric", "qty": "numeric"},
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
        out[f"merge:{table}"] = merge_statement(table, new)
        out[f"merge-back:{table}"] = merge_statement(table, inserted_rows(table))
    return out


STATEMENTS = _statements()


def create_capture_tables(cur: psycopg2.extensions.cursor) -> None:
    """Create the ``_new_<table>`` twins for this session (idempotent) and declare (Rule 3)."""
    for table in ROLLED_UP:
        cur.execute(STATEMENTS[f"create:{table}"])
    cur.execute(DECLARE)


def time_bounds(lines: list[str]) -> tuple[str, str] | None:
    """The least and greatest time of a batch's COPY lines, when they are within
    READ_BACK_SPAN of each other (Rule 1); None otherwise. (The time text sorts as time.)"""
    times = [line[_TIME] for line in lines]
    lo, hi = min(times), max(times)
    span = _parse(hi) - _parse(lo)
    return (lo, hi) if span <= READ_BACK_SPAN else None


def _parse(text: str) -> datetime:
    return datetime.strptime(text + "00", "%Y-%m-%d %H:%M:%S.%f%z")


def roll_up_copied(cur: psycopg2.extensions.cursor, table: str, lines: list[str], payload: bytes) -> None:
    """Fast path (Rule 1): every row of the COPY was inserted; merge them, read back or copied."""
    if table not in ROLLED_UP:
        return
    bounds = time_bounds(lines) if lines else None
    if bounds is None:
        cur.copy_expert(STATEMENTS[f"capture:{table}"], io.BytesIO(payload), size=1 << 20)
        cur.execute(STATEMENTS[f"merge:{table}"])
    else:
        cur.execute(STATEMENTS[f"merge-back:{table}"], {"lo": bounds[0], "hi": bounds[1]})


def capturing_insert(table: str) -> sql.Composed:
    """Duplicate path (Rule 1): stage -> table, skipping duplicates, capturing what was new."""
    return STATEMENTS[f"insert:{table}"]


def roll_up(cur: psycopg2.extensions.cursor, table: str) -> None:
    """Merge the captured rows into the rollups (Rule 3); COMMIT empties the capture."""
    if table in ROLLED_UP:
        cur.execute(STATEMENTS[f"merge:{table}"])
