"""TimescaleDB writes: one batch = one transaction, idempotent, with bad rows isolated.

``TimescaleSink`` implements the ``consumer.ports.Sink`` protocol (the Checkpointer sees only that).

Rules:
  1. ``write`` returns only after COMMIT, with ``synchronous_commit = on`` for this session, so
     a returned outcome means the rows are durable (the checkpoint relies on it).
  2. Idempotent: a row whose unique key is already stored is skipped and counted, never an
     error. trades/book_ticker are written by COPY straight into the hypertable (the fast path);
     if that hits a duplicate key the transaction is rolled back and the same rows go through
     COPY into a temp staging table + ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. After a
     batch with duplicates the next batches of that table go straight to staging, until one
     comes back with none (replays after a crash come in runs).
  3. Gap records upsert on gap_id keeping the most advanced status (GAP_STATUS_RANK).
  4. A row the database rejects (SQLSTATE class 22/23, errors.Disposition.ROW) is isolated by
     bisection under savepoints in the same transaction and reported with its reason; the
     other rows are written.
  5. Any other error rolls back everything: TransientDatabaseError (connection dropped,
     reconnect on the next call) or FatalDatabaseError. Nothing is ever half-written.
  6. The constructor makes no network call; the connection is opened on first use.
  7. A write of trades or gaps also runs ``refresh_gap_spans()`` (migration 003) in the same
     transaction: gaps whose data span is not settled get it from the rows now stored (the
     repaired rows' times, else their neighbours'), so ``gaps --from/--to`` can select gaps by
     the time of the missing events however late the rows or the records arrive.
  8. Rollups (consumer.rollup): the rows a transaction inserted are merged into the rollups and
     the audit's coverage in that same transaction, just before COMMIT: read back by xmin after
     the fast path's COPY, captured into a twin on the duplicate path. ``rollups=False``
     (benchmarks only) writes the raw rows alone (and the coverage is then marked dirty by
     migration 006's trigger, so the audit does not trust it).
  9. Counts are what the database returned, so never negative. No rows, no statement: an empty
     ``execute_values`` runs nothing and leaves ``cursor.rowcount`` at -1 ("no statement"), which
     once came back as -1 rows written and stopped the worker.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions
from psycopg2 import errorcodes, sql
from psycopg2.extras import execute_values

from binance_pipeline.common.events import GAP_STATUS_RANK
from consumer.decode import (
    BOOK_COLUMNS,
    BOOK_TICKER,
    COPY_TABLES,
    GAP_COLUMNS,
    GAPS,
    TRADE_COLUMNS,
    TRADES,
    Row,
)
from consumer.errors import Disposition, FatalDatabaseError, TransientDatabaseError, classify, describe
from consumer.ports import WriteOutcome
from consumer.rollup import capturing_insert, create_capture_tables, roll_up, roll_up_copied

log = logging.getLogger(__name__)

COLUMNS = {TRADES: TRADE_COLUMNS, BOOK_TICKER: BOOK_COLUMNS, GAPS: GAP_COLUMNS}
SPAN_TABLES = (TRADES, GAPS)
REFRESH_SPANS = "SELECT refresh_gap_spans()"  # Rule 7
_GAP_STATUS_INDEX = GAP_COLUMNS.index("status")
_GAP_ID_INDEX = GAP_COLUMNS.index("gap_id")


def _stage(table: str) -> sql.Identifier:
    return sql.Identifier(f"_stage_{table}")


def _rank_sql(column: sql.Composable) -> sql.Composed:
    whens = [sql.SQL("WHEN {} THEN {}").format(sql.Literal(s), sql.Literal(r))
             for s, r in GAP_STATUS_RANK.items()]
    return sql.SQL("(CASE {} {} END)").format(column, sql.SQL(" ").join(whens))


def _statements() -> dict[str, sql.Composed]:
    out: dict[str, sql.Composed] = {}
    for table in COPY_TABLES:
        cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table]))
        out[f"copy:{table}"] = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), cols)
        out[f"stage:{table}"] = sql.SQL("COPY {} ({}) FROM STDIN").format(_stage(table), cols)
        out[f"create:{table}"] = sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS"
        ).format(_stage(table), sql.Identifier(table))
        out[f"clear:{table}"] = sql.SQL("DELETE FROM {}").format(_stage(table))
        out[f"insert:{table}"] = sql.SQL(
            "INSERT INTO {} SELECT * FROM {} ON CONFLICT DO NOTHING"
        ).format(sql.Identifier(table), _stage(table))
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in GAP_COLUMNS[1:])
    out["upsert:gaps"] = sql.SQL(
        "INSERT INTO gaps ({}) VALUES %s ON CONFLICT (gap_id) DO UPDATE SET {} WHERE {} > {}"
    ).format(sql.SQL(", ").join(map(sql.Identifier, GAP_COLUMNS)), updates,
             _rank_sql(sql.SQL("EXCLUDED.status")), _rank_sql(sql.SQL("gaps.status")))
    return out


STATEMENTS = _statements()


def most_advanced_gaps(rows: list[Row]) -> list[int]:
    """Indices of the rows to upsert: per gap_id the first row with the highest status rank."""
    best: dict[str, int] = {}
    for i, row in enumerate(rows):
        gap_id, rank = row[_GAP_ID_INDEX], GAP_STATUS_RANK[str(row[_GAP_STATUS_INDEX])]
        j = best.get(str(gap_id))
        if j is None or rank > GAP_STATUS_RANK[str(rows[j][_GAP_STATUS_INDEX])]:
            best[str(gap_id)] = i
    return sorted(best.values())


class TimescaleSink:
    """Writes batches into TimescaleDB (Rules 1-6); a ``consumer.ports.Sink``."""

    def __init__(self, dsn: str, connect_timeout_s: float = 5.0, statement_timeout_s: float = 60.0,
                 rollups: bool = True) -> None:
        self._dsn = dsn
        self._rollups = rollups
        self._connect_timeout = max(1, round(connect_timeout_s))
        self._statement_timeout_ms = round(statement_timeout_s * 1000)
        self._conn: psycopg2.extensions.connection | None = None
        self._dup_mode: set[str] = set()

    def write(self, table: str, rows: list[Row]) -> WriteOutcome:
        """Write ``rows`` into ``table`` in one transaction (see the module rules)."""
        conn = self._connection()
        try:
            outcome = self._write(conn, table, rows)
            if table in SPAN_TABLES:
                with conn.cursor() as cur:
                    cur.execute(REFRESH_SPANS)
            conn.commit()
        except psycopg2.Error as exc:
            raise self._failure(exc) from exc
        return outcome

    def ping(self) -> None:
        """Raise TransientDatabaseError unless the database answers."""
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            conn.rollback()
        except psycopg2.Error as exc:
            raise self._failure(exc) from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- connection ---------------------------------------------------------------------------
    def _connection(self) -> psycopg2.extensions.connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._conn = None
        try:
            conn = psycopg2.connect(
                self._dsn, connect_timeout=self._connect_timeout, application_name="consumer.worker",
                keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
            )  # no ``options=`` here: it would replace the DSN's own (e.g. its search_path)
            with conn.cursor() as cur:
                cur.execute("SET synchronous_commit = on")
                cur.execute("SELECT set_config('statement_timeout', %s, false)",
                            (str(self._statement_timeout_ms),))
                for table in COPY_TABLES:
                    cur.execute(STATEMENTS[f"create:{table}"])
                if self._rollups:
                    create_capture_tables(cur)
            conn.commit()
        except psycopg2.Error as exc:
            raise self._failure(exc) from exc
        self._conn = conn
        log.info("database connection open (backend pid %s)", conn.get_backend_pid())
        return conn

    def _failure(self, exc: psycopg2.Error) -> Exception:
        """Roll back or drop the connection, and wrap ``exc`` by its disposition (Rule 5)."""
        disposition = classify(exc)
        if disposition is Disposition.TRANSIENT or self._conn is None or self._conn.closed:
            self.close()
            return TransientDatabaseError(describe(exc))
        try:
            self._conn.rollback()
        except psycopg2.Error:
            self.close()
        return FatalDatabaseError(describe(exc))

    # -- one transaction ----------------------------------------------------------------------
    def _write(self, conn: psycopg2.extensions.connection, table: str, rows: list[Row]) -> WriteOutcome:
        keep = most_advanced_gaps(rows) if table == GAPS else list(range(len(rows)))
        if table in COPY_TABLES and table not in self._dup_mode:
            try:
                with conn.cursor() as cur:
                    payload = self._copy(cur, STATEMENTS[f"copy:{table}"], rows)
                    if self._rollups:
                        roll_up_copied(cur, table, rows, payload)  # type: ignore[arg-type]  # str rows
                return WriteOutcome(inserted=len(rows))
            except psycopg2.Error as exc:
                if exc.pgcode != errorcodes.UNIQUE_VIOLATION and classify(exc) is not Disposition.ROW:
                    raise
                conn.rollback()
        with conn.cursor() as cur:
            inserted, rejected = self._isolate(cur, table, rows, keep, first=True)
            if self._rollups and table in COPY_TABLES:
                roll_up(cur, table)
        skipped = len(rows) - inserted - len(rejected)
        if table in COPY_TABLES:
            (self._dup_mode.add if skipped else self._dup_mode.discard)(table)
        return WriteOutcome(inserted, skipped, rejected)

    def _isolate(self, cur: psycopg2.extensions.cursor, table: str, rows: list[Row], indices: list[int],
                 first: bool = False) -> tuple[int, list[tuple[int, str]]]:
        """Write rows[indices]; on a ROW error, bisect down to the rows to blame (Rule 4)."""
        try:
            with _savepoint(cur, enabled=not first):
                return self._upsert(cur, table, [rows[i] for i in indices]), []
        except psycopg2.Error as exc:
            if classify(exc) is not Disposition.ROW:
                raise
            if first:
                cur.connection.rollback()
            if len(indices) == 1:
                log.warning("table %s: row rejected: %s", table, describe(exc))
                return 0, [(indices[0], describe(exc))]
        mid = len(indices) // 2
        left, right = (self._isolate(cur, table, rows, part) for part in (indices[:mid], indices[mid:]))
        return left[0] + right[0], left[1] + right[1]

    def _upsert(self, cur: psycopg2.extensions.cursor, table: str, rows: list[Row]) -> int:
        """Rows inserted (or, for gaps, advanced) by one statement, as the database counted them."""
        if not rows:  # e.g. a batch of undecodable messages only (Rule 9)
            return 0
        if table == GAPS:
            execute_values(cur, STATEMENTS["upsert:gaps"], rows, page_size=max(1, len(rows)))
            return int(cur.rowcount)
        cur.execute(STATEMENTS[f"clear:{table}"])
        self._copy(cur, STATEMENTS[f"stage:{table}"], rows)
        cur.execute(capturing_insert(table) if self._rollups else STATEMENTS[f"insert:{table}"])
        return int(cur.rowcount)

    @staticmethod
    def _copy(cur: psycopg2.extensions.cursor, statement: sql.Composed, rows: list[Row]) -> bytes:
        payload = "".join(rows).encode()  # type: ignore[arg-type]  # COPY tables hold str rows
        cur.copy_expert(statement, io.BytesIO(payload), size=1 << 20)
        return payload


Sink = TimescaleSink  # the former name, kept for callers written before the Sink protocol


@contextmanager
def _savepoint(cur: psycopg2.extensions.cursor, enabled: bool = True) -> Iterator[None]:
    """SAVEPOINT ... RELEASE, rolled back to on a database error (no-op when not enabled)."""
    if not enabled:
        yield
        return
    cur.execute("SAVEPOINT isolate")
    try:
        yield
    except psycopg2.Error:
        cur.execute("ROLLBACK TO SAVEPOINT isolate")
        raise
    cur.execute("RELEASE SAVEPOINT isolate")
