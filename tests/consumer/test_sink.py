"""consumer.sink and consumer.errors against the real TimescaleDB."""

from __future__ import annotations

import orjson
import psycopg2
import pytest
from psycopg2 import errorcodes

from binance_pipeline.testing.events import book, gap, trade
from binance_pipeline.testing.helpers import query
from consumer.decode import BOOK_TICKER, GAPS, TRADES, decode
from consumer.errors import Disposition, TransientDatabaseError, classify, classify_sqlstate
from consumer.sink import Sink
from db.store.migrate import apply


def rows(table: str, msgs: list[dict[str, object]]) -> list[object]:
    return [decode(table, orjson.dumps(m))[0] for m in msgs]


@pytest.fixture
def sink(db_url: str):  # type: ignore[no-untyped-def]
    apply(db_url)
    s = Sink(db_url)
    yield s
    s.close()


def test_duplicates_are_skipped_and_counted(sink: Sink, db_url: str) -> None:
    """Writing overlapping batches stores each row once and counts the skipped ones."""
    first = sink.write(TRADES, rows(TRADES, [trade(i) for i in range(100)]))
    again = sink.write(TRADES, rows(TRADES, [trade(i) for i in range(50, 150)] + [trade(149)]))
    assert (first.inserted, first.skipped) == (100, 0)
    assert (again.inserted, again.skipped) == (50, 51)
    assert query(db_url, "SELECT count(*), count(DISTINCT id) FROM trades") == [(150, 150)]


def test_rejected_rows_are_isolated_and_the_rest_written(sink: Sink, db_url: str) -> None:
    """Rows the database rejects come back with their SQLSTATE; every other row is written."""
    msgs = [trade(i) for i in range(40)]
    msgs[3] = trade(3, price="-1")  # check violation
    msgs[17] = trade(17, id=2**63)  # bigint out of range
    msgs[30] = trade(30, qty="100000000000000000000000")  # check violation (>= 1e20)
    out = sink.write(TRADES, rows(TRADES, msgs))
    assert out.inserted == 37 and out.skipped == 0
    assert [(i, r[:5]) for i, r in out.rejected] == [(3, "23514"), (17, "22003"), (30, "23514")]
    assert query(db_url, "SELECT count(*) FROM trades") == [(37,)]


def test_rejections_also_isolated_in_the_duplicate_path(sink: Sink, db_url: str) -> None:
    """A batch with both duplicates and a bad row skips the duplicates and rejects only the bad row."""
    sink.write(BOOK_TICKER, rows(BOOK_TICKER, [book(i) for i in range(10)]))
    msgs = [book(i) for i in range(20)]
    msgs[15] = book(15, ask_qty="-3")
    out = sink.write(BOOK_TICKER, rows(BOOK_TICKER, msgs))
    assert (out.inserted, out.skipped, [i for i, _ in out.rejected]) == (9, 10, [15])


def test_gap_upsert_keeps_most_advanced_status(sink: Sink, db_url: str) -> None:
    """Within and across batches a gap's status only moves forward (open < repaired/unrepairable)."""
    sink.write(GAPS, rows(GAPS, [gap("a", "open"), gap("a", "repaired"), gap("a", "open"), gap("b", "open")]))
    sink.write(GAPS, rows(GAPS, [gap("a", "open"), gap("b", "unrepairable"), gap("b", "open")]))
    sink.write(GAPS, rows(GAPS, [gap("b", "repaired")]))  # same rank: first final status stays
    assert query(db_url, "SELECT gap_id, status FROM gaps ORDER BY 1") == [
        ("a", "repaired"),
        ("b", "unrepairable"),
    ]


def test_unreachable_database_is_transient() -> None:
    """A connection that cannot be made raises TransientDatabaseError."""
    sink = Sink("postgresql://postgres@127.0.0.1:1/none", connect_timeout_s=1)
    with pytest.raises(TransientDatabaseError):
        sink.write(TRADES, rows(TRADES, [trade(1)]))


def test_real_errors_are_classified_by_sqlstate(db_url: str) -> None:
    """Errors raised by the real server map to ROW / FATAL by SQLSTATE; connection loss is TRANSIENT."""
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    seen = {}
    for sql in (
        "SELECT 9223372036854775807::bigint + 1",
        "SELECT 'x'::numeric",
        "SELECT * FROM no_such_table",
    ):
        with conn.cursor() as cur:
            try:
                cur.execute(sql)
            except psycopg2.Error as exc:
                seen[exc.pgcode] = classify(exc)
    other = psycopg2.connect(db_url)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (other.get_backend_pid(),))
    with pytest.raises(psycopg2.OperationalError) as lost, other.cursor() as cur:
        cur.execute("SELECT 1")
    conn.close()
    assert seen == {"22003": Disposition.ROW, "22P02": Disposition.ROW, "42P01": Disposition.FATAL}
    assert classify(lost.value) is Disposition.TRANSIENT
    for code in (errorcodes.ADMIN_SHUTDOWN, "40001", "53300", "57P03", "40P01", "08006"):
        assert classify_sqlstate(code) is Disposition.TRANSIENT
    assert classify_sqlstate("23514") is Disposition.ROW


@pytest.mark.parametrize("table", [TRADES, BOOK_TICKER, GAPS])
def test_a_write_of_no_rows_counts_zero(sink: Sink, table: str) -> None:
    """A batch whose messages were all undecodable writes nothing and counts 0 (never -1)."""
    out = sink.write(table, [])
    assert (out.inserted, out.skipped, out.rejected) == (0, 0, [])
