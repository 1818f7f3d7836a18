"""The audit on a tape the worker's sink wrote (so its per-minute coverage is kept, migration 006):
the same answer as the full scans, and the coverage trusted only while nothing wrote around it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg2
import pytest

from binance_pipeline.common.utc import us_of
from binance_pipeline.testing.helpers import query
from consumer.decode import TRADES, decode
from consumer.sink import Sink
from db.service import queries
from db.store.migrate import apply
from tests.db.store.audit_tape import T0, Row, Tape, synthetic

BOTH = ("trade", "aggTrade")
S = timedelta(seconds=1)


def message(row: Row) -> dict[str, Any]:
    t, typ, ident, first, last, price, qty = row
    us = us_of(t)
    return {"v": 1, "type": typ, "symbol": "BTCUSDT", "id": ident, "price": price, "qty": qty,
            "first_id": first, "last_id": last, "trade_time": us, "event_time": us + 5,
            "buyer_maker": False, "best_match": True, "received_at": us + 100, "source": "stream"}


def write(sink: Sink, rows: list[Row]) -> int:
    return sink.write(TRADES, [decode(TRADES, orjson.dumps(message(r)))[0] for r in rows]).inserted


def dirty(url: str) -> bool:
    return bool(query(url, "SELECT dirty FROM coverage_state")[0][0])


@pytest.fixture
def sink(db_url: str) -> Iterator[Sink]:
    apply(db_url)
    s = Sink(db_url)
    yield s
    s.close()


def tape_with_every_kind_of_finding(url: str, sink: Sink) -> None:
    """360 trades over 6 minutes (ids 1000..1359, a pair every 2 s, one aggTrade per pair), written in
    batches of 40 rows, then holes on a minute's edge and inside one, a duplicate, aggTrades that
    disagree (quantity; time moved within its minute), a replay and a late batch over 6 minutes."""
    rows = synthetic(360, step_ms=1000)
    late = [r for r in rows if r[1] == "trade" and r[2] in (1002, 1350)]
    drop = {("trade", i) for i in [*range(1058, 1062), *range(1130, 1134), 1002, 1350]}
    kept = [r for r in rows if (r[1], r[2]) not in drop]
    kept = [(r[0] + S, *r[1:]) if r[1:3] == ("aggTrade", 600) else r for r in kept]  # minute 3: moved
    kept = [(*r[:6], str(Decimal(r[6]) + Decimal("0.00000001"))) if r[1:3] == ("aggTrade", 610) else r
            for r in kept]  # minute 3 again: its quantity
    for k in range(0, len(kept), 40):
        assert write(sink, kept[k:k + 40]) == len(kept[k:k + 40])
    dup = next(r for r in rows if r[2] == 1250 and r[1] == "trade")
    dup = (dup[0] + timedelta(microseconds=1), *dup[1:])
    assert write(sink, [*kept[:30], dup]) == 1  # a replay, and a duplicate
    assert write(sink, late) == 2  # one batch over six minutes
    t = Tape(url)
    t.gap("trade", 1058, 1061, "repaired")
    t.gap("trade", 1130, 1131, "open")


RANGES = [(T0, T0 + timedelta(minutes=10)), (T0 + 1.5 * S, T0 + timedelta(minutes=5, seconds=30)),
          (T0 + 59 * S, T0 + 181 * S), (T0 + 61 * S, T0 + 62 * S), (T0 + timedelta(minutes=2), T0 + 240 * S),
          (T0 - timedelta(hours=1), T0 + timedelta(hours=1))]


def audits(url: str) -> list[Any]:
    conn = queries.connect(url)
    try:
        return [queries.audit(conn, "BTCUSDT", start, end, streams, limit=limit) for start, end in RANGES
                for streams in (("trade",), ("aggTrade",), BOTH) for limit in (2, 100)]
    finally:
        conn.close()


def test_the_coverage_gives_the_full_scans_answer(db_url: str, sink: Sink) -> None:
    """Holes (with their times and gap records), duplicates, disagreeing aggTrades, counts and
    truncation come back the same from the coverage as from the full scans, for ranges on and off
    the minutes."""
    tape_with_every_kind_of_finding(db_url, sink)
    assert not dirty(db_url)
    fast = audits(db_url)
    Tape(db_url).sql("UPDATE coverage_state SET dirty = true")
    full = audits(db_url)
    assert fast == full
    whole = full[5]  # the first range, both streams, limit 100
    assert [(h.first_id, h.last_id, h.explanation) for h in whole.holes] == [
        (1058, 1061, "repaired"), (1130, 1131, "open"), (1132, 1133, "unexplained")]  # 1002, 1350 came late
    assert [d.id for d in whole.duplicates] == [1250]
    problems = {(m.agg_id, m.problem) for m in whole.mismatches}
    assert {(600, "trades_missing"), (610, "quantity")} <= problems
    assert full[4].streams[0].truncated and not whole.streams[0].truncated  # limit 2, limit 100


def test_an_id_stored_again_in_another_minute_is_a_duplicate_too(db_url: str, sink: Sink) -> None:
    """A trade of a whole minute stored again a minute later: the same duplicate as the full scan's."""
    rows = synthetic(240, step_ms=1000)
    assert write(sink, rows) == len(rows)
    again = next(r for r in rows if r[2] == 1010 and r[1] == "trade")
    assert write(sink, [(again[0] + timedelta(minutes=1), *again[1:])]) == 1
    conn = queries.connect(db_url)
    try:
        fast = queries.audit(conn, "BTCUSDT", T0, T0 + timedelta(minutes=10), BOTH)
        Tape(db_url).sql("UPDATE coverage_state SET dirty = true")
        full = queries.audit(conn, "BTCUSDT", T0, T0 + timedelta(minutes=10), BOTH)
    finally:
        conn.close()
    assert fast == full and [d.id for d in fast.duplicates] == [1010]


def test_the_coverage_is_trusted_only_while_nothing_writes_around_the_worker(db_url: str, sink: Sink) -> None:
    """Rows deleted by a session that claims to keep the rollups stay unseen (the coverage answers);
    a plain DELETE marks the coverage dirty, and the audit reads the raw rows again."""
    rows = synthetic(240, step_ms=1000)
    assert write(sink, rows) == len(rows)
    end = T0 + timedelta(minutes=10)
    conn = queries.connect(db_url)
    try:
        assert queries.audit(conn, "BTCUSDT", T0, end, ("trade",)).complete
        with psycopg2.connect(db_url) as c, c.cursor() as cur:
            cur.execute("SET pipeline.rollups = 'on'")
            cur.execute("DELETE FROM trades WHERE type = 'trade' AND id BETWEEN 1010 AND 1011")
        c.close()
        assert not dirty(db_url)
        assert queries.audit(conn, "BTCUSDT", T0, end, ("trade",)).complete  # the coverage answered
        Tape(db_url).hole("trade", 1100, 1100)
        assert dirty(db_url)
        res = queries.audit(conn, "BTCUSDT", T0, end, ("trade",))
    finally:
        conn.close()
    assert [(h.first_id, h.last_id) for h in res.holes] == [(1010, 1011), (1100, 1100)]


def test_a_full_rebuild_makes_the_coverage_clean_and_equal_to_the_worker_s(db_url: str, sink: Sink) -> None:
    """rollup_rebuild() recomputes the coverage the worker kept, value for value, and clears dirty."""
    tape_with_every_kind_of_finding(db_url, sink)
    kept = query(db_url, "SELECT * FROM trades_cov_1m ORDER BY symbol, type, bucket")
    Tape(db_url).sql("UPDATE coverage_state SET dirty = true")
    Tape(db_url).sql("SELECT rollup_rebuild()")
    assert not dirty(db_url)
    assert query(db_url, "SELECT * FROM trades_cov_1m ORDER BY symbol, type, bucket") == kept
    assert len(kept) == 12  # 6 minutes x 2 streams
