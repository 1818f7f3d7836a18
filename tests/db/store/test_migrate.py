"""db.migrate, the 002 storage policies and db.maintenance on the real (Apache-licensed) TimescaleDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from binance_pipeline.testing.helpers import query
from db.store.migrate import apply, discover
from db.store.retention import ADD_POLICY, DROP_CHUNKS, REMOVE_POLICY, apply_retention, plan


def test_apply_is_idempotent_and_recorded(db_url: str) -> None:
    """First apply runs every migration and records it; a second apply runs nothing."""
    versions = [m.version for m in discover()]
    assert versions[:2] == [1, 2]
    assert apply(db_url) == versions
    assert apply(db_url) == []
    assert [v for (v,) in query(db_url, "SELECT version FROM schema_migrations ORDER BY 1")] == versions


def test_unique_keys_make_replays_idempotent(db_url: str) -> None:
    """A replayed trade, book ticker or gap is refused by its unique key; ON CONFLICT skips it."""
    apply(db_url)
    t = datetime(2024, 1, 1, tzinfo=UTC)
    inserts = [
        (
            "INSERT INTO trades (time, symbol, type, id, price, qty, buyer_maker, received_at)"
            " VALUES (%s, 'BTCUSDT', 'trade', 1, '1.10', '2', true, %s)",
            (t, t),
        ),
        (
            "INSERT INTO book_ticker (time, symbol, update_id, bid_price, bid_qty, ask_price, ask_qty)"
            " VALUES (%s, 'BTCUSDT', 5, '1', '1', '2', '2')",
            (t,),
        ),
        (
            "INSERT INTO gaps (gap_id, symbol, stream, kind, reason, status, detected_at)"
            " VALUES ('g', 'BTCUSDT', 'trade', 'ids', 'stream', 'open', %s)",
            (t,),
        ),
    ]
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for sql, params in inserts:
            cur.execute(sql, params)
            cur.execute(sql + " ON CONFLICT DO NOTHING", params)
            assert cur.rowcount == 0
            with pytest.raises(psycopg2.errors.UniqueViolation):
                cur.execute(sql, params)
    conn.close()
    assert query(
        db_url,
        "SELECT (SELECT count(*) FROM trades), (SELECT count(*) FROM book_ticker),"
        " (SELECT count(*) FROM gaps)",
    ) == [(1, 1, 1)]


def test_storage_policies_follow_the_license(db_url: str) -> None:
    """002 applies on either edition: compression + 2 policy jobs on Timescale, nothing on Apache (here)."""
    apply(db_url)
    tsl = query(db_url, "SHOW timescaledb.license") == [("timescale",)]
    schema = query(db_url, "SELECT current_schema()")[0][0]
    rows = query(
        db_url,
        "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = %s ORDER BY 1",
        (schema,),
    )
    assert rows == [("book_ticker", tsl), ("trades", tsl)]
    jobs = query(
        db_url, "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_schema = %s", (schema,)
    )
    assert jobs == [(2 if tsl else 0,)]


def test_retention_plan_per_license() -> None:
    """Timescale license reconciles a policy; Apache drops chunks now; 0 days keeps everything."""
    assert [s.sql for s in plan("timescale", 30, ("trades",))] == [REMOVE_POLICY, ADD_POLICY]
    assert [s.sql for s in plan("timescale", 0, ("trades",))] == [REMOVE_POLICY]
    assert [(s.sql, s.params) for s in plan("apache", 30, ("trades",))] == [(DROP_CHUNKS, ("trades", 30))]
    assert plan("apache", 0) == []


def test_drop_chunks_fallback_removes_only_old_chunks(db_url: str) -> None:
    """RETENTION_DAYS=N drops chunks older than N days on the Apache build; 0 keeps everything."""
    apply(db_url)
    if query(db_url, "SHOW timescaledb.license") == [("timescale",)]:
        pytest.skip("the drop_chunks fallback runs on the Apache edition only")
    now = datetime.now(UTC)
    conn = psycopg2.connect(db_url)
    with conn, conn.cursor() as cur:
        for i, age in enumerate((40, 20, 1)):
            t = now - timedelta(days=age)
            cur.execute(
                "INSERT INTO trades (time, symbol, type, id, price, qty, buyer_maker, received_at)"
                " VALUES (%s, 'BTCUSDT', 'trade', %s, '1', '1', true, %s)",
                (t, i, t),
            )
    conn.close()
    assert apply_retention(db_url, 0) == {}
    assert query(db_url, "SELECT count(*) FROM trades") == [(3,)]
    assert apply_retention(db_url, 30) == {"trades": 1, "book_ticker": 0}
    assert query(db_url, "SELECT count(*) FROM trades") == [(2,)]
    assert apply_retention(db_url, 10)["trades"] == 1
    assert query(db_url, "SELECT id FROM trades") == [(2,)]
