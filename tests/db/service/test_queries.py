"""db.service.queries against the real TimescaleDB, on the hand-built tape of tape_data.py (beside this)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import psycopg2
import pytest

from db.service import queries, sqltext
from db.service.errors import DatabaseUnavailable, QueryTimeout, SchemaMissing, classify
from db.service.queries import Connection
from db.service.results import exact_ratio, moving_average
from tests.db.service.tape_data import G1, G2, G5, T0, at, tape_schema

D = Decimal
MIN = timedelta(minutes=1)


@pytest.fixture(scope="module")
def tape(database_url: str) -> Iterator[str]:
    with tape_schema(database_url) as url:
        yield url


@pytest.fixture
def conn(tape: str) -> Iterator[Connection]:
    c = queries.connect(tape)
    yield c
    c.close()


def trade_ids(trades: list[object]) -> list[int]:
    return [t.id for t in trades]  # type: ignore[attr-defined]


# --- latest


def test_latest_is_the_last_trade_of_the_tape(conn: Connection) -> None:
    """latest returns the trade with the greatest time, with its exact price digits."""
    t = queries.latest(conn, "BTCUSDT")
    assert t is not None
    assert (t.id, t.time, str(t.price), str(t.qty)) == (8, at(129600), "105.00000000", "1.00000000")
    assert t.time.tzinfo is not None and t.time.utcoffset() == timedelta(0)


def test_latest_aggtrade_is_not_mixed_with_trades(conn: Connection) -> None:
    """type=aggTrade reads only aggTrade rows, and the default reads only trade rows."""
    agg = queries.latest(conn, "BTCUSDT", "aggTrade")
    assert agg is not None and (agg.id, str(agg.price)) == (102, "220.00000000")
    eth = queries.latest(conn, "ETHUSDT")
    assert eth is not None and str(eth.price) == "3000.10000000"


def test_latest_of_a_symbol_without_data_is_none(conn: Connection) -> None:
    """A symbol with no rows gives None, not an error."""
    assert queries.latest(conn, "XRPUSDT") is None
    assert queries.latest(conn, "ETHUSDT", "aggTrade") is None


# --- price-at


def test_price_at_a_trade_time_takes_the_last_id_at_that_time(conn: Connection) -> None:
    """A trade exactly at the asked time counts as 'at or before'; ties go to the highest id."""
    res = queries.price_at(conn, "BTCUSDT", T0)
    assert res.before is not None and res.after is not None
    assert (res.before.id, res.price, res.after.id) == (2, D("101.50000000"), 3)
    assert res.nearest is res.before


def test_price_at_between_trades_and_the_nearest_side(conn: Connection) -> None:
    """Between trades: the price is the earlier trade's; nearest is the closer one (here after)."""
    res = queries.price_at(conn, "BTCUSDT", at(60))
    assert res.before is not None and res.after is not None and res.nearest is not None
    assert (res.before.id, res.after.id, res.nearest.id) == (3, 4, 4)
    assert str(res.price) == "99.25000000"


def test_price_at_before_the_first_trade_has_no_price(conn: Connection) -> None:
    """Before the first trade there is no price; the first trade after is given."""
    res = queries.price_at(conn, "BTCUSDT", T0 - timedelta(milliseconds=1))
    assert res.before is None and res.price is None
    assert res.after is not None and res.after.id == 1 and res.nearest is res.after


def test_price_at_after_the_last_trade_and_for_aggtrades(conn: Connection) -> None:
    """After the last trade there is no 'after'; aggTrade prices come from aggTrades only."""
    res = queries.price_at(conn, "BTCUSDT", at(10**6))
    assert res.before is not None and res.before.id == 8 and res.after is None
    agg = queries.price_at(conn, "BTCUSDT", at(30), "aggTrade")
    assert agg.before is not None and agg.after is not None
    assert (agg.before.id, str(agg.price), agg.after.id) == (100, "200.00000000", 101)


def test_price_at_for_a_symbol_without_data(conn: Connection) -> None:
    """A symbol with no rows has neither side."""
    res = queries.price_at(conn, "XRPUSDT", T0)
    assert res.before is None and res.after is None and res.nearest is None


# --- range


def test_range_summary_is_exact(conn: Connection) -> None:
    """OHLC with (time, id) tie-breaks, exact volume/quote volume digits, VWAP, count, times."""
    r = queries.range_summary(conn, "BTCUSDT", T0, at(240))
    assert r.trade_count == 7
    assert [str(v) for v in (r.open, r.high, r.low, r.close)] == [
        "100.00000000", "103.00000000", "98.00000000", "98.50000000"]
    assert str(r.volume) == "1006.80000000"
    assert str(r.quote_volume) == "103688.1250000000000000"
    assert str(r.vwap) == "102.987807906238"
    assert (r.first_time, r.last_time) == (T0, at(239.999))


def test_range_is_half_open(conn: Connection) -> None:
    """A trade at 'from' is in the range, a trade at 'to' is not."""
    r = queries.range_summary(conn, "BTCUSDT", at(30.5), at(70))
    assert (r.trade_count, str(r.open), str(r.close)) == (1, "99.25000000", "99.25000000")


def test_empty_range_has_zero_count_and_no_prices(conn: Connection) -> None:
    """An interval without trades: count 0, volumes 0, prices and VWAP None; also from == to."""
    for start, end in ((at(3600), at(7200)), (T0, T0)):
        r = queries.range_summary(conn, "BTCUSDT", start, end)
        assert (r.trade_count, r.volume, r.quote_volume) == (0, 0, 0)
        assert (r.open, r.high, r.low, r.close, r.vwap, r.first_time) == (None,) * 6


def test_range_of_aggtrades_reads_aggtrades_only(conn: Connection) -> None:
    """The aggTrade range sums aggTrade rows only."""
    r = queries.range_summary(conn, "BTCUSDT", T0, at(400), "aggTrade")
    assert (r.trade_count, str(r.high), str(r.volume)) == (3, "220.00000000", "1002.00000000")


# --- candles


def test_candles_one_minute_exact(conn: Connection) -> None:
    """1-minute candles: OHLC with tie-breaks, exact volumes, counts; empty minutes omitted."""
    cs = queries.candles(conn, "BTCUSDT", T0, at(300), MIN)
    assert [c.bucket for c in cs] == [T0, at(60), at(180)]
    got = [(str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume), str(c.quote_volume),
            c.trade_count) for c in cs]
    assert got == [
        ("100.00000000", "101.50000000", "99.25000000", "99.25000000", "3.50000000",
         "352.6250000000000000", 3),
        ("102.00000000", "102.00000000", "102.00000000", "102.00000000", "3.00000000",
         "306.0000000000000000", 1),
        ("103.00000000", "103.00000000", "98.00000000", "98.50000000", "1000.30000000",
         "103029.5000000000000000", 3),
    ]


def test_candles_gap_fill_carries_the_previous_close(conn: Connection) -> None:
    """With fill, an empty bucket has OHLC = previous close, volume 0, count 0."""
    cs = queries.candles(conn, "BTCUSDT", T0, at(300), MIN, fill=True)
    assert [c.bucket for c in cs] == [at(s) for s in (0, 60, 120, 180, 240)]
    empty = [cs[2], cs[4]]
    assert [(str(c.open), str(c.high), str(c.low), str(c.close)) for c in empty] == [
        ("102.00000000",) * 4, ("98.50000000",) * 4]
    assert [(c.volume, c.quote_volume, c.trade_count) for c in empty] == [(0, 0, 0)] * 2


def test_candles_fill_is_seeded_by_the_last_trade_before_the_range(conn: Connection) -> None:
    """An empty first bucket takes the close of the last trade before 'from'; none before -> None."""
    cs = queries.candles(conn, "BTCUSDT", at(120), at(180), MIN, fill=True)
    assert [(c.bucket, str(c.close), c.trade_count) for c in cs] == [(at(120), "102.00000000", 0)]
    before = queries.candles(conn, "BTCUSDT", at(-120), T0, MIN, fill=True)
    assert [(c.bucket, c.open, c.close, c.volume) for c in before] == [
        (at(-120), None, None, 0), (at(-60), None, None, 0)]


def test_candles_bucket_widths_one_second_and_one_day(conn: Connection) -> None:
    """The smallest and largest widths bucket exactly; an empty range gives no candles."""
    day = queries.candles(conn, "BTCUSDT", T0, T0 + timedelta(days=2), timedelta(days=1))
    assert [(c.bucket, str(c.open), str(c.close), c.trade_count) for c in day] == [
        (T0, "100.00000000", "98.50000000", 7), (T0 + timedelta(days=1), "105.00000000",
                                                  "105.00000000", 1)]
    sec = queries.candles(conn, "BTCUSDT", at(239), at(241), timedelta(seconds=1), fill=True)
    assert [(c.bucket, str(c.open), str(c.close), c.trade_count) for c in sec] == [
        (at(239), "98.00000000", "98.50000000", 2), (at(240), "98.50000000", "98.50000000", 0)]
    assert queries.candles(conn, "BTCUSDT", at(30), at(30), MIN, fill=True) == []


def test_candles_of_aggtrades_only(conn: Connection) -> None:
    """aggTrade candles never include trade rows."""
    cs = queries.candles(conn, "BTCUSDT", T0, at(120), MIN, "aggTrade")
    assert [(str(c.open), c.trade_count) for c in cs] == [("200.00000000", 1), ("210.00000000", 1)]


# --- sma


def test_sma_of_filled_closes(conn: Connection) -> None:
    """SMA(2) over 1-minute closes; the bucket before 'from' warms it up; empty buckets carry."""
    pts = queries.sma(conn, "BTCUSDT", at(60), at(300), MIN, 2)
    assert [(p.bucket, str(p.close), str(p.sma)) for p in pts] == [
        (at(60), "102.00000000", "100.625000000000"), (at(120), "102.00000000", "102.000000000000"),
        (at(180), "98.50000000", "100.250000000000"), (at(240), "98.50000000", "98.500000000000")]


def test_sma_is_none_until_the_window_is_full_and_rounds_half_even(conn: Connection) -> None:
    """SMA(3) needs 3 closes (none before the first trade); thirds round to 12 places."""
    pts = queries.sma(conn, "BTCUSDT", at(60), at(300), MIN, 3)
    assert [str(p.sma) if p.sma is not None else None for p in pts] == [
        None, "101.083333333333", "100.833333333333", "99.666666666667"]


# --- stats


def test_stats_per_table(conn: Connection) -> None:
    """Row counts, first/last time and min/max price per table, and gap counts by status."""
    s = queries.stats(conn, "BTCUSDT")
    got = [(t.table, t.type, t.rows, t.first_time, t.last_time, str(t.min_price), str(t.max_price))
           for t in s.tables]
    assert got == [
        ("trades", "trade", 8, T0, at(129600), "98.00000000", "105.00000000"),
        ("trades", "aggTrade", 3, T0, at(300), "200.00000000", "220.00000000"),
        ("book_ticker", None, 3, at(0.1), at(60), "99.90000000", "101.20000000"),
    ]
    assert s.gaps == {"open": 1, "repaired": 1, "unrepairable": 2}
    assert not s.empty


def test_stats_of_a_symbol_without_data_is_empty(conn: Connection) -> None:
    """A symbol with no rows: zero counts, no times, and .empty."""
    s = queries.stats(conn, "XRPUSDT")
    assert s.empty and [t.rows for t in s.tables] == [0, 0, 0]
    assert all(t.first_time is None for t in s.tables)


# --- spread


def test_spread_at_a_time(conn: Connection) -> None:
    """The quote in force is the last received at or before; same time -> highest update id."""
    q = queries.spread(conn, "BTCUSDT", at(30))
    assert q is not None
    assert (q.update_id, str(q.bid_price), str(q.ask_price), str(q.spread)) == (
        10, "99.90000000", "100.10000000", "0.20000000")
    q2 = queries.spread(conn, "BTCUSDT", at(60))
    assert q2 is not None and (q2.update_id, str(q2.spread), q2.time) == (12, "0.10000000", at(60))


def test_quote_buckets_take_the_last_quote_and_the_widest_spread(conn: Connection) -> None:
    """Per bucket: the last quote (time, then update id) and the widest spread; empty buckets absent."""
    rows = queries.quote_buckets(conn, "BTCUSDT", T0, at(180), MIN)
    assert [(b.bucket, str(b.bid_price), str(b.ask_price), str(b.spread), str(b.max_spread), b.quotes)
            for b in rows] == [
        (T0, "99.90000000", "100.10000000", "0.20000000", "0.20000000", 1),
        (at(60), "101.05000000", "101.15000000", "0.10000000", "0.20000000", 2),
    ]
    assert queries.quote_buckets(conn, "ETHUSDT", T0, at(180), MIN) == []


def test_spread_before_the_first_quote_and_without_quotes(conn: Connection) -> None:
    """No quote at or before the time gives None; has_quotes tells the two cases apart."""
    assert queries.spread(conn, "BTCUSDT", T0) is None
    assert queries.has_quotes(conn, "BTCUSDT") is True
    assert queries.spread(conn, "ETHUSDT", at(10**6)) is None
    assert queries.has_quotes(conn, "ETHUSDT") is False


# --- whales


def test_whales_default_threshold_per_type(conn: Connection) -> None:
    """Notional >= 100000 by default; trades and aggTrades each find their own whale."""
    w = queries.whales(conn, "BTCUSDT", T0, at(86400 * 2))
    assert [(x.id, str(x.notional)) for x in w.trades] == [(5, "103000.0000000000000000")]
    agg = queries.whales(conn, "BTCUSDT", T0, at(86400), type="aggTrade")
    assert [(x.id, str(x.notional)) for x in agg.trades] == [(102, "220000.0000000000000000")]


def test_whales_threshold_is_inclusive_and_exact(conn: Connection) -> None:
    """A notional equal to the threshold counts; one unit of 1e-8 above excludes it."""
    assert trade_ids(queries.whales(conn, "BTCUSDT", T0, at(300), D("103000")).trades) == [5]
    assert queries.whales(conn, "BTCUSDT", T0, at(300), D("103000.00000001")).trades == []


def test_whales_limit_marks_truncation(conn: Connection) -> None:
    """Over the limit: the oldest ``limit`` trades and truncated=True."""
    w = queries.whales(conn, "BTCUSDT", T0, at(300), D("100"), limit=2)
    assert trade_ids(w.trades) == [1, 2] and w.truncated
    assert not queries.whales(conn, "BTCUSDT", T0, at(300), D("100"), limit=10).truncated


# --- completeness


def test_completeness_lists_overlapping_gaps_and_counts_per_day(conn: Connection) -> None:
    """Gaps overlapping the range (id gaps without times at detection time), rows per UTC day."""
    c = queries.completeness(conn, "BTCUSDT", T0, T0 + timedelta(days=3))
    assert [(g.gap_id, g.status) for g in c.gaps] == [
        (G1, "repaired"), (G2, "open"), (G5, "unrepairable")]
    assert c.gaps[0].repaired_at == at(300) and c.gaps[1].repaired_at is None
    assert [(d.day, d.trades, d.agg_trades) for d in c.days] == [
        (T0, 7, 3), (T0 + timedelta(days=1), 1, 0), (T0 + timedelta(days=2), 0, 0)]


def test_completeness_of_a_narrow_range(conn: Connection) -> None:
    """A range inside one gap finds only that gap; an empty range has no days."""
    c = queries.completeness(conn, "BTCUSDT", at(135), at(140))
    assert [g.gap_id for g in c.gaps] == [G1]
    assert [(d.day, d.trades) for d in c.days] == [(T0, 0)]
    assert queries.completeness(conn, "BTCUSDT", at(135), at(135)).days == []


def test_has_any(conn: Connection) -> None:
    """has_any is true for a symbol with rows anywhere and false otherwise."""
    assert queries.has_any(conn, "ETHUSDT") and not queries.has_any(conn, "XRPUSDT")


# --- pure arithmetic


def test_exact_ratio_rounds_half_even() -> None:
    """The ratio is exact before one half-even rounding to 12 places."""
    assert str(exact_ratio(D(1), D(3))) == "0.333333333333"
    assert format(exact_ratio(D("0.0000000000005"), D(1)), "f") == "0.000000000000"
    assert format(exact_ratio(D("0.0000000000015"), D(1)), "f") == "0.000000000002"


def test_moving_average_handles_missing_closes() -> None:
    """None until the window is full; a None inside the window gives None."""
    out = moving_average([D(1), D(2), None, D(4), D(6), D(8)], 2)
    assert out == [None, D("1.5"), None, None, D(5), D(7)]


# --- errors


def test_unreachable_database_is_database_unavailable() -> None:
    """Connecting to a closed port raises DatabaseUnavailable."""
    with pytest.raises(DatabaseUnavailable):
        queries.connect("postgresql://postgres@127.0.0.1:1/pipeline")


def test_missing_schema_is_schema_missing(db_url: str) -> None:
    """A database without the migrations raises SchemaMissing, not a raw psycopg2 error."""
    c = queries.connect(db_url.replace("%2Cpublic", ""))  # only the fresh, empty schema
    try:
        with pytest.raises(SchemaMissing):
            queries.latest(c, "BTCUSDT")
    finally:
        c.close()


def test_statement_timeout_is_query_timeout(tape: str) -> None:
    """A statement cancelled by statement_timeout classifies as QueryTimeout."""
    c = queries.connect(tape, statement_timeout_ms=100)
    try:
        with c.cursor() as cur, pytest.raises(psycopg2.Error) as info:
            cur.execute("SELECT pg_sleep(2)")
        assert isinstance(classify(info.value), QueryTimeout)
    finally:
        c.close()


def test_connections_are_read_only(conn: Connection) -> None:
    """The query session refuses writes."""
    with conn.cursor() as cur, pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        cur.execute("DELETE FROM trades")


# --- plans


def _plan_nodes(plan: dict[str, object]) -> Iterator[dict[str, object]]:
    yield plan
    for child in plan.get("Plans", []):  # type: ignore[attr-defined]
        yield from _plan_nodes(child)


@pytest.fixture(scope="module")
def big_url(database_url: str) -> Iterator[str]:
    """Trades of 3 symbols x 2 types x 20000 rows over 3 days, plus a symbol (XRPUSDT) that
    stopped trading after its first hour; ANALYZEd."""
    with tape_schema(database_url) as url:
        c = psycopg2.connect(url)
        with c, c.cursor() as cur:
            cur.execute(
                "INSERT INTO trades (time, symbol, type, id, price, qty, buyer_maker, received_at)"
                " SELECT %s::timestamptz + g * interval '13 seconds', s, t, 1000 + g, 100 + g %% 7,"
                " 1, g %% 2 = 0, now()"
                " FROM generate_series(1, 20000) g, unnest(ARRAY['BTCUSDT','ETHUSDT','BNBUSDT']) s,"
                " unnest(ARRAY['trade','aggTrade']) t", (T0,))
            cur.execute(
                "INSERT INTO trades (time, symbol, type, id, price, qty, buyer_maker, received_at)"
                " SELECT %s::timestamptz + g * interval '60 seconds', 'XRPUSDT', 'trade', g, 1, 1,"
                " true, now() FROM generate_series(1, 60) g", (T0,))
            cur.execute("ANALYZE trades")
        c.close()
        yield url


PLAN_CASES = [
    ("LATEST_SQL", "BTCUSDT", "trade", None),
    ("LATEST_SQL", "ETHUSDT", "aggTrade", None),
    ("LATEST_SQL", "XRPUSDT", "trade", None),
    ("LATEST_SQL", "DOGEUSDT", "trade", None),
    ("PRICE_AT_SQL", "ETHUSDT", "aggTrade", T0 + timedelta(days=1, hours=3)),
    ("PRICE_AT_SQL", "BNBUSDT", "trade", T0 + timedelta(hours=1)),
    ("PRICE_AT_SQL", "XRPUSDT", "trade", T0 + timedelta(days=2, hours=12)),
    ("PRICE_AT_SQL", "DOGEUSDT", "trade", T0 + timedelta(days=1)),
]


@pytest.mark.parametrize(("name", "symbol", "type_", "when"), PLAN_CASES)
def test_latest_and_price_at_are_index_lookups(
    big_url: str, name: str, symbol: str, type_: str, when: object
) -> None:
    """EXPLAIN ANALYZE of latest/price-at: index scans only (no seq scan), touching a handful of rows."""
    c = queries.connect(big_url)
    try:
        with c.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + getattr(sqltext, name),
                        {"symbol": symbol, "type": type_, "at": when})
            raw = cur.fetchone()[0]
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    finally:
        c.close()
    nodes = list(_plan_nodes(plan))
    assert not [n for n in nodes if "Seq Scan" in str(n["Node Type"])]
    scans = [n for n in nodes if "Relation Name" in n and n["Node Type"] != "Custom Scan"]  # chunks
    assert scans and all(n["Node Type"] in ("Index Scan", "Index Only Scan") for n in scans)
    if symbol in ("XRPUSDT", "DOGEUSDT"):  # rare or absent: only the symbol index finds it fast
        assert any("symbol_type_time" in str(n["Index Name"]) for n in scans)
    touched = sum(int(n.get("Actual Rows", 0)) + int(n.get("Rows Removed by Filter", 0))  # type: ignore[call-overload]
                  for n in scans)
    assert touched <= 50, f"{touched} rows touched: not an index lookup"


# --- markets (the overview: every symbol, one statement)


def test_markets_lists_every_symbol_with_its_trades_gaps_and_last_price(conn: Connection) -> None:
    """Most trades in the window first; gap records by status; the last trade exact; one statement."""
    before = conn.statements
    rows = queries.markets(conn, T0, T0 + timedelta(days=2))
    assert conn.statements == before + 1
    assert [(m.symbol, m.trades) for m in rows] == [("BTCUSDT", 8), ("ETHUSDT", 1)]
    btc, eth = rows
    assert (btc.open_gaps, btc.repaired_gaps, btc.unrepairable_gaps) == (1, 1, 2)
    assert btc.completeness == eth.completeness == "open gaps"
    assert (eth.open_gaps, eth.repaired_gaps, eth.unrepairable_gaps) == (1, 0, 0)
    assert (btc.last_price, btc.last_id, btc.last_time) == (D("105.00000000"), 8, at(129600))
    assert (eth.last_price, eth.last_id) == (D("3000.10000000"), 1)


def test_markets_counts_trades_in_the_window_only(conn: Connection) -> None:
    """[T0+30s, T0+3h): raw edges, minutes and an hour of the rollups add up to ids 3-7; ETH's is out."""
    rows = queries.markets(conn, at(30), at(3 * 3600))
    assert [(m.symbol, m.trades) for m in rows] == [("BTCUSDT", 5), ("ETHUSDT", 0)]
    assert [(m.symbol, m.trades) for m in queries.markets(conn, at(239.999), at(240))] == [
        ("BTCUSDT", 2), ("ETHUSDT", 0)]


def test_symbols_are_those_of_trades_quotes_and_gaps(conn: Connection) -> None:
    """The picker's list: every symbol with any trade, quote or gap record, in order (one statement)."""
    before = conn.statements
    assert queries.symbols(conn) == ["BTCUSDT", "ETHUSDT"]
    assert conn.statements == before + 1
