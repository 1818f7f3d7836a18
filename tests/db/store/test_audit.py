"""The audit (db.service.queries.audit, ``python -m db.query audit``, GET /v1/audit) on hand-built tapes
in the real TimescaleDB, and its pure core (db.store.audit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.service import queries
from db.service.openapi import build_openapi
from db.store import audit as au
from db.store import audit_scan
from tests.db.store.audit_tape import T0, Tape, synthetic

ROOT = Path(__file__).resolve().parents[3]
END = T0 + timedelta(minutes=10)
BOTH = ("trade", "aggTrade")


@pytest.fixture
def tape(db_url: str) -> Tape:
    """200 trades 1000..1199 and aggTrades 500..599 over 2 s, then four holes."""
    t = Tape(db_url)
    t.insert(synthetic(200))
    t.hole("trade", 1010, 1014)  # unexplained
    t.hole("trade", 1020, 1029)
    t.gap("trade", 1020, 1029, "unrepairable")
    t.hole("trade", 1040, 1044)
    t.gap("trade", 1040, 1042, "repaired")  # explains only part of the hole
    t.hole("aggTrade", 560, 561)
    t.gap("aggTrade", 560, 561, "open")
    return t


@pytest.fixture
def conn(tape: Tape) -> Iterator[queries.Connection]:
    c = queries.connect(tape.url)
    yield c
    c.close()


def run_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "db.query", "audit", *args], cwd=ROOT,
                          env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True,
                          timeout=60, check=False)


def holes(res: au.Audit) -> list[tuple[str, int, int, str]]:
    return [(h.stream, h.first_id, h.last_id, h.explanation) for h in res.holes]


def test_every_hole_is_reported_with_its_explanation(conn: queries.Connection) -> None:
    """Each hole comes back once, split where gap records start or end, with what explains it."""
    res = queries.audit(conn, "BTCUSDT", T0, END, BOTH)
    assert not res.complete
    assert holes(res) == [
        ("trade", 1010, 1014, "unexplained"),
        ("trade", 1020, 1029, "unrepairable"),
        ("trade", 1040, 1042, "repaired"),
        ("trade", 1043, 1044, "unexplained"),
        ("aggTrade", 560, 561, "open"),
    ]
    by_stream = {s.stream: s for s in res.streams}
    assert (by_stream["trade"].rows, by_stream["trade"].holes, by_stream["trade"].missing) == (180, 3, 20)
    assert (by_stream["aggTrade"].rows, by_stream["aggTrade"].missing) == (98, 2)
    assert res.holes[2].gap_id == "BTCUSDT/trade/ids/1040-1042"


def test_a_hole_s_time_span_is_that_of_its_neighbours(conn: queries.Connection) -> None:
    """A hole is placed between the times of the stored rows around it."""
    res = queries.audit(conn, "BTCUSDT", T0, END, ("trade",))
    first = res.holes[0]
    # trade 1009 is the second trade of pair 4 (t = 80 ms); 1015 the second of pair 7 (t = 140 ms)
    assert (first.after_time, first.before_time) == (T0 + timedelta(milliseconds=80),
                                                     T0 + timedelta(milliseconds=140))


def test_holes_with_missing_aggtrade_trades_are_disagreements_too(conn: queries.Connection) -> None:
    """aggTrades whose trades are missing are listed as trades_missing; no quantity is blamed."""
    res = queries.audit(conn, "BTCUSDT", T0, END, BOTH)
    assert res.consistency_checked
    problems = {(m.agg_id, m.problem) for m in res.mismatches}
    assert (505, "trades_missing") in problems  # trades 1010, 1011
    assert all(p != "quantity" for _, p in problems)
    # the aggTrades 560-561 that are missing leave trades 1120..1123 covered by none
    assert any(m.problem == "not_covered" and m.first_id == 1120 for m in res.mismatches)


def test_a_complete_range_exits_0(tape: Tape) -> None:
    """A range without holes is COMPLETE and the CLI exits 0."""
    proc = run_cli(tape.url, "BTCUSDT", "--from", T0.isoformat(),
                   "--to", (T0 + timedelta(milliseconds=70)).isoformat())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "COMPLETE: BTCUSDT" in proc.stdout


def test_an_incomplete_range_exits_1_and_lists_the_holes(tape: Tape) -> None:
    """The CLI prints the holes on stdout and exits 1; --json carries the same findings."""
    proc = run_cli(tape.url, "BTCUSDT", "--from", T0.isoformat(), "--to", END.isoformat())
    assert proc.returncode == 1, proc.stderr
    assert "INCOMPLETE: BTCUSDT" in proc.stdout and "1043" in proc.stdout
    proc = run_cli(tape.url, "BTCUSDT", "--stream", "trade", "--from", T0.isoformat(),
                   "--to", END.isoformat(), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["complete"] is False and doc["streams"] == ["trade"] and not doc["consistency_checked"]
    assert [(h["first_id"], h["explanation"]) for h in doc["holes"]] == [
        (1010, "unexplained"), (1020, "unrepairable"), (1040, "repaired"), (1043, "unexplained")]


def test_a_quantity_mismatch_is_reported(db_url: str) -> None:
    """An aggTrade whose quantity is not the sum of its trades' is named, with both sums."""
    t = Tape(db_url)
    t.insert(synthetic(40))
    t.sql("UPDATE trades SET qty = qty + 0.00000001 WHERE type = 'aggTrade' AND id = 507")
    c = queries.connect(db_url)
    try:
        res = queries.audit(c, "BTCUSDT", T0, END, BOTH)
    finally:
        c.close()
    assert not res.complete and not res.holes
    (m,) = res.mismatches
    assert (m.agg_id, m.first_id, m.last_id, m.problem) == (507, 1014, 1015, "quantity")
    assert m.agg_qty == m.trades_qty + Decimal("0.00000001")


def test_a_hole_across_the_range_start_is_seen(tape: Tape) -> None:
    """A range that starts inside a hole still reports it (the row before the range anchors it)."""
    c = queries.connect(tape.url)
    try:
        res = queries.audit(c, "BTCUSDT", T0 + timedelta(milliseconds=110), END, ("trade",))
    finally:
        c.close()
    assert holes(res)[0] == ("trade", 1010, 1014, "unexplained")


def test_duplicates_are_reported(db_url: str) -> None:
    """An id stored twice (at two times) makes the range incomplete."""
    t = Tape(db_url)
    rows = synthetic(10)
    t.insert(rows)
    t.insert([(rows[0][0] + timedelta(microseconds=1), *rows[0][1:])])
    c = queries.connect(db_url)
    try:
        res = queries.audit(c, "BTCUSDT", T0, END, ("trade",))
    finally:
        c.close()
    assert not res.complete and [d.id for d in res.duplicates] == [1000]


def test_the_openapi_document_has_the_audit() -> None:
    """GET /v1/audit is described, with its stream parameter and its answer's schema."""
    op = build_openapi()["paths"]["/v1/audit"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"symbol", "stream", "from", "to", "last"}
    assert "Hole" in build_openapi()["components"]["schemas"]


def test_explain_splits_a_hole_by_the_gap_records() -> None:
    """Pure core: pieces follow the records; an open record takes precedence over a repaired one."""
    a = au.Anomaly(9, T0, 30, T0)
    gaps = [au.GapSpan("r", 10, 19, "repaired", "x"), au.GapSpan("o", 15, 24, "open", "y")]
    got = [(h.first_id, h.last_id, h.explanation) for h in au.explain("trade", a, gaps)]
    assert got == [(10, 14, "repaired"), (15, 24, "open"), (25, 29, "unexplained")]
    targets = au.repair_targets(au.explain("trade", a, gaps))
    assert [(h.first_id, h.last_id, h.missing) for h in targets] == [(10, 29, 20)]


def _nodes(plan: dict[str, object]) -> Iterator[dict[str, object]]:
    yield plan
    for child in plan.get("Plans", []):  # type: ignore[attr-defined]
        yield from _nodes(child)


def test_the_continuity_pass_walks_the_ids_in_index_order(db_url: str) -> None:
    """Over three daily chunks, the id pass is index scans merged in id order: no sort, no seq scan,
    and only the chunks of the range are read."""
    t = Tape(db_url)
    t.insert((r[0] + timedelta(days=day), r[1], r[2] + 1000 * day, None, None, r[5], r[6])
             for day in range(4) for r in synthetic(40) if r[1] == "trade")
    t.sql("ANALYZE trades")
    args = {"symbol": "BTCUSDT", "type": "trade", "lo_id": 1000, "hi_id": 3039,
            "lo_t": T0, "hi_t": T0 + timedelta(days=2, hours=1), "limit": 100}
    c = queries.connect(db_url)
    try:
        with c.cursor() as cur:
            cur.execute("SET enable_seqscan = off")  # a tiny table: make the planner show its index path
            cur.execute("EXPLAIN (FORMAT JSON) " + audit_scan.AUDIT_ANOMALIES_SQL, args)
            raw = cur.fetchone()
    finally:
        c.close()
    assert raw is not None
    nodes = list(_nodes((json.loads(raw[0]) if isinstance(raw[0], str) else raw[0])[0]["Plan"]))
    scans = [n for n in nodes if "Relation Name" in n and n["Node Type"] != "Custom Scan"]
    assert len(scans) == 3 and all(n["Node Type"] in ("Index Scan", "Index Only Scan") for n in scans)
    window = next(n for n in nodes if n["Node Type"] == "WindowAgg")
    below = list(_nodes(window))[1:]
    assert not [n for n in below if n["Node Type"] in ("Sort", "Incremental Sort")]


@given(
    st.integers(0, 50), st.integers(2, 60),
    st.lists(st.tuples(st.integers(-5, 120), st.integers(0, 40), st.sampled_from(au.EXPLANATIONS)),
             max_size=6),
)
def test_explain_covers_every_missing_id_exactly_once(start: int, gap_len: int,
                                                      records: list[tuple[int, int, str]]) -> None:
    """Property: the pieces tile the hole; each piece is explained by a record covering all of it
    (the first in precedence order) or by none, and a piece with no cover is unexplained."""
    a = au.Anomaly(start, T0, start + gap_len + 1, T0)
    gaps = [au.GapSpan(f"g{i}", lo, lo + n, status, "r") for i, (lo, n, status) in enumerate(records)]
    pieces = au.explain("trade", a, gaps)
    ids = [i for p in pieces for i in range(p.first_id, p.last_id + 1)]
    assert ids == list(range(start + 1, start + gap_len + 1))
    assert all(p.missing == p.last_id - p.first_id + 1 for p in pieces)
    for p in pieces:
        covering = [g for g in gaps if g.first_id <= p.first_id and p.last_id <= g.last_id]
        if not covering:
            assert p.explanation == au.UNEXPLAINED and p.gap_id is None
        else:
            best = min(au.EXPLANATIONS.index(g.status) for g in covering)
            assert p.explanation == au.EXPLANATIONS[best]
            assert p.gap_id in {g.gap_id for g in covering if g.status == p.explanation}
    assert sum(h.missing for h in au.repair_targets(pieces)) == gap_len
