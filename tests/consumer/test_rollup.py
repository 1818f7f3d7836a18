"""The 1-minute rollups kept by the sink equal what the raw rows give, on a hand-built tape."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from binance_pipeline.testing.events import book
from binance_pipeline.testing.helpers import query
from consumer.decode import BOOK_TICKER, TRADES, decode
from consumer.sink import Sink
from db.service import queries, sqltext
from db.service.results import rollup_split
from db.store.migrate import apply
from db.store.retention import apply_retention
from db.store.rollups import TRADE_MINUTES

D = Decimal
T0 = datetime(2024, 5, 1, tzinfo=UTC)  # a whole minute
T0_US = int(T0.timestamp()) * 1_000_000


def tr(i: int, secs: float, price: str, qty: str, typ: str = "trade", source: str = "stream",
       symbol: str = "BTCUSDT") -> dict[str, Any]:
    """A trade (or aggTrade) message at T0 + secs."""
    t = T0_US + round(secs * 1_000_000)
    return {"v": 1, "type": typ, "symbol": symbol, "id": i, "price": price, "qty": qty,
            "first_id": i if typ == "aggTrade" else None, "last_id": i if typ == "aggTrade" else None,
            "trade_time": t, "event_time": None if source == "rest" else t + 5, "buyer_maker": i % 2 == 0,
            "best_match": True, "received_at": t + 100, "source": source}


def rows(table: str, msgs: list[dict[str, Any]]) -> list[Any]:
    return [decode(table, orjson.dumps(m))[0] for m in msgs]


# Minute 0: ids 1-4; minute 1: ids 5-7; minute 3: id 8; aggTrades in minutes 0 and 2.
LIVE = [tr(1, 0.5, "100.00", "1"), tr(2, 10, "101.50", "2"), tr(3, 30, "99.25", "0.5"),
        tr(4, 59.999, "100.75", "0.25"), tr(5, 61, "102", "3"), tr(6, 90, "103.10", "0.1"),
        tr(7, 119, "98", "4"), tr(8, 200, "97.5", "1"),
        tr(100, 5, "200", "1", "aggTrade"), tr(101, 130, "210", "2", "aggTrade"),
        tr(20, 7205, "101", "1"), tr(21, 12600, "102", "2")]  # hours 2 and 3
# Late rows into old minutes: an earlier open for minute 0 (time 0.5 s, lower id 0 at the same
# time as id 1), a new close for minute 1 (same ms as id 7, higher id), and a new high.
LATE = [tr(0, 0.5, "95.00", "1"), tr(9, 119, "104.00", "0.5"), tr(10, 45, "110", "0.01"),
        tr(22, 7201, "103", "1")]  # and a new open for hour 2
# REST backfill: a gap [11..12] in minute 2 (empty so far), and two rows already stored.
REST = [tr(11, 150, "99", "1", source="rest"), tr(12, 170, "99.5", "2", source="rest"),
        tr(5, 61, "102", "3", source="rest"), tr(8, 200, "97.5", "1", source="rest")]


@pytest.fixture
def tape(db_url: str) -> Iterator[tuple[str, Sink]]:
    """A schema with the migrations applied and a sink writing into it."""
    apply(db_url)
    sink = Sink(db_url)
    yield db_url, sink
    sink.close()


def write_tape(sink: Sink) -> None:
    """Live rows, late rows, a replay of everything, REST rows, and a batch with a rejected row."""
    assert sink.write(TRADES, rows(TRADES, LIVE)).inserted == len(LIVE)
    assert sink.write(TRADES, rows(TRADES, LATE)).inserted == len(LATE)
    replay = sink.write(TRADES, rows(TRADES, LIVE + LATE))
    assert (replay.inserted, replay.skipped) == (0, len(LIVE + LATE))
    rest = sink.write(TRADES, rows(TRADES, REST))
    assert (rest.inserted, rest.skipped) == (2, 2)
    bad = sink.write(TRADES, rows(TRADES, [tr(13, 240, "-1", "1"), tr(14, 241, "96", "1"),
                                           tr(1, 0.5, "100.00", "1")]))
    assert (bad.inserted, bad.skipped, len(bad.rejected)) == (1, 1, 1)


def rollup(url: str) -> list[tuple[Any, ...]]:
    return query(url, "SELECT * FROM trades_1m ORDER BY symbol, type, bucket")


def from_raw(url: str, width: str = "1 minute") -> list[tuple[Any, ...]]:
    minutes = TRADE_MINUTES.format(source="trades").replace("'1 minute'", f"'{width}'")
    return query(url, f"SELECT * FROM ({minutes}) m ORDER BY symbol, type, bucket")


def test_rollup_rows_equal_the_raw_minutes(tape: tuple[str, Sink]) -> None:
    """After live, late, replayed, REST and rejected rows, each rollup minute equals its raw rows."""
    url, sink = tape
    write_tape(sink)
    got = rollup(url)
    assert got == from_raw(url)
    assert query(url, "SELECT * FROM trades_1h ORDER BY symbol, type, bucket") == from_raw(url, "1 hour")
    hour2 = query(url, "SELECT open_id, close_id, n FROM trades_1h WHERE bucket = %s AND type = 'trade'",
                  (T0 + timedelta(hours=2),))
    assert hour2 == [(22, 20, 2)]
    minutes = {(r[1], r[2]): r for r in got}
    minute0 = minutes["trade", T0]
    # open = id 0 (time 0.5 s, lowest id), close = id 4, high = the late 110, n = 6 (ids 0-4, 10)
    assert minute0[2:] == (T0, T0 + timedelta(seconds=0.5), 0, D("95.00"), T0 + timedelta(seconds=59.999),
                           4, D("100.75"), D("110"), D("95.00"), D("4.76"),
                           D("95.00") + D("101.50") * 2 + D("99.25") * D("0.5") + D("100.75") * D("0.25")
                           + D("100.00") + D("110") * D("0.01"), 6)
    minute1 = minutes["trade", T0 + timedelta(minutes=1)]
    assert (minute1[7], minute1[8], minute1[13]) == (9, D("104.00"), 4)  # close: id 9 ties id 7 on time


def test_candles_range_and_stats_equal_raw_answers(tape: tuple[str, Sink]) -> None:
    """Candles of 1 m/5 m/1 h/1 d (edges off the minute too), range, VWAP, count and stats match raw SQL."""
    url, sink = tape
    write_tape(sink)
    conn = queries.connect(url)
    try:
        spans = [(T0, T0 + timedelta(hours=1)), (T0 + timedelta(seconds=0.5), T0 + timedelta(seconds=150)),
                 (T0 + timedelta(seconds=20), T0 + timedelta(seconds=40)),
                 (T0 + timedelta(seconds=30), T0 + timedelta(hours=3, seconds=10)),
                 (T0 + timedelta(minutes=1), T0 + timedelta(hours=4)),
                 (T0 - timedelta(days=1), T0 + timedelta(days=1))]
        for start, end in spans:
            for typ in ("trade", "aggTrade"):
                for width in (60, 300, 5400, 3600, 7200, 86400):
                    for fill in (False, True):
                        raw = raw_candles(conn, typ, start, end, width, fill)
                        got = queries.candles(conn, "BTCUSDT", start, end, timedelta(seconds=width),
                                              typ, fill)
                        assert [tuple(vars(c).values()) for c in got] == raw, (start, end, width, fill)
                assert range_tuple(queries.range_summary(conn, "BTCUSDT", start, end, typ)) == \
                    raw_range(conn, typ, start, end)
        stats = queries.stats(conn, "BTCUSDT")
        assert [(t.rows, t.min_price, t.max_price) for t in stats.tables[:2]] == [
            (17, D("95.00"), D("110")), (2, D("200"), D("210"))]
        whole = queries.range_summary(conn, "BTCUSDT", T0, T0 + timedelta(hours=1))
        assert whole.trade_count == 14 and whole.vwap == (whole.quote_volume / whole.volume).quantize(
            D("1E-12"))
    finally:
        conn.close()


def raw_candles(conn: queries.Connection, typ: str, start: datetime, end: datetime, width: int,
                fill: bool) -> list[tuple[Any, ...]]:
    """The candles of the raw-row statements (what the rollup path must reproduce)."""
    args = {"symbol": "BTCUSDT", "type": typ, "start": start, "end": end, "width_s": width}
    with conn.cursor() as cur:
        cur.execute(sqltext.CANDLES_FILLED_SQL if fill else sqltext.CANDLES_SQL, args)
        return [(b.astimezone(UTC), *rest) for b, *rest in cur.fetchall()]


RAW_RANGE = """
SELECT count(*), max(price), min(price), coalesce(sum(qty), 0), coalesce(sum(price * qty), 0),
       min(time), max(time), first(price, (time, id)), last(price, (time, id))
FROM trades WHERE symbol = 'BTCUSDT' AND type = %(type)s AND time >= %(start)s AND time < %(end)s"""


def raw_range(conn: queries.Connection, typ: str, start: datetime, end: datetime) -> tuple[Any, ...]:
    with conn.cursor() as cur:
        cur.execute(RAW_RANGE, {"type": typ, "start": start, "end": end})
        n, hi, lo, vol, quote, t0, t1, o, c = cur.fetchone()
    return (n, o, hi, lo, c, vol, quote, t0 and t0.astimezone(UTC), t1 and t1.astimezone(UTC))


def range_tuple(r: Any) -> tuple[Any, ...]:
    return (r.trade_count, r.open, r.high, r.low, r.close, r.volume, r.quote_volume, r.first_time,
            r.last_time)


def test_book_ticker_rollup_counts_each_quote_once(tape: tuple[str, Sink]) -> None:
    """bookTicker rollup: count, first/last time, min bid, max ask equal the raw rows after a replay."""
    url, sink = tape
    msgs = [book(i, bid_price=f"100.{i:02d}", ask_price=f"101.{i:02d}") for i in range(1, 40)]
    sink.write(BOOK_TICKER, rows(BOOK_TICKER, msgs[:25]))
    sink.write(BOOK_TICKER, rows(BOOK_TICKER, msgs))  # 25 duplicates, 14 new
    raw = query(url, "SELECT count(*), min(time), max(time), min(bid_price), max(ask_price) FROM book_ticker")
    for rollup in ("book_ticker_1m", "book_ticker_1h"):
        assert query(url, "SELECT sum(n), min(first_time), max(last_time), min(min_bid), max(max_ask)"
                          f" FROM {rollup}") == raw
    assert query(url, "SELECT sum(n) FROM book_ticker_1m") == [(39,)]


def test_rollup_split_covers_the_interval_exactly() -> None:
    """Edges, minutes and hours are disjoint and cover [start, end); no whole minute -> one edge."""
    m, h = timedelta(minutes=1), timedelta(hours=1)
    s = rollup_split(T0 + timedelta(seconds=10), T0 + 2 * h + 3 * m + timedelta(seconds=5))
    assert [s[k] for k in ("a0", "a1", "m0", "h0", "h1", "m1", "b0", "b1")] == [
        T0 + timedelta(seconds=10), T0 + m, T0 + m, T0 + h, T0 + 2 * h, T0 + 2 * h + 3 * m,
        T0 + 2 * h + 3 * m, T0 + 2 * h + 3 * m + timedelta(seconds=5)]
    no_hours = rollup_split(T0 + timedelta(seconds=10), T0 + 2 * h, hours=False)
    assert (no_hours["m0"], no_hours["h0"], no_hours["h1"], no_hours["m1"]) == (T0 + m, T0 + 2 * h,
                                                                               T0 + 2 * h, T0 + 2 * h)
    inside = rollup_split(T0 + timedelta(seconds=10), T0 + timedelta(seconds=20))
    assert (inside["a0"], inside["a1"]) == (T0 + timedelta(seconds=10), T0 + timedelta(seconds=20))
    assert inside["m0"] == inside["m1"] and inside["b0"] == inside["b1"]


def test_retention_trims_the_rollup_with_the_raw_rows(tape: tuple[str, Sink]) -> None:
    """After drop_chunks removes old rows, the rollup no longer counts them (equal to raw again)."""
    url, sink = tape
    if query(url, "SHOW timescaledb.license") == [("timescale",)]:
        pytest.skip("the drop_chunks fallback runs on the Apache edition only")
    now_us = int(datetime.now(UTC).timestamp()) * 1_000_000
    old = [{**tr(i, 0, "10", "1"), "trade_time": now_us - 40 * 86_400_000_000 + i} for i in range(3)]
    new = [{**tr(i, 0, "11", "1"), "trade_time": now_us - 86_400_000_000 + i} for i in range(3, 5)]
    sink.write(TRADES, rows(TRADES, old + new))
    assert query(url, "SELECT sum(n) FROM trades_1m") == [(5,)]
    assert apply_retention(url, 30)["trades"] == 1
    assert rollup(url) == from_raw(url)
    assert query(url, "SELECT sum(n) FROM trades_1m") == [(2,)]
    assert query(url, "SELECT sum(n) FROM trades_1h") == [(2,)]
