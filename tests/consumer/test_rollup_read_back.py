"""The rollups' fast path: a batch COPYed whole is read back by xmin (consumer.rollup Rule 1), and
its rollups and coverage equal the raw rows, even with other transactions' rows in the same span."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from binance_pipeline.testing.events import book
from binance_pipeline.testing.helpers import query
from consumer.decode import BOOK_TICKER, TRADES, decode
from consumer.rollup import time_bounds
from consumer.sink import Sink
from db.store.migrate import apply
from db.store.rollups import COVER_MINUTES, TRADE_MINUTES
from tests.consumer.test_rollup import tr


def lines(table: str, msgs: list[dict[str, Any]]) -> list[Any]:
    return [decode(table, orjson.dumps(m))[0] for m in msgs]


@pytest.fixture
def two_sinks(db_url: str) -> Iterator[tuple[Sink, Sink]]:
    """Two sinks (two sessions) writing into one migrated schema."""
    apply(db_url)
    a, b = Sink(db_url), Sink(db_url)
    yield a, b
    a.close()
    b.close()


def test_a_batch_within_five_minutes_is_read_back_a_wider_one_is_not() -> None:
    """time_bounds: least and greatest time text of a narrow batch; None past READ_BACK_SPAN."""
    narrow = lines(TRADES, [tr(1, 30, "1", "1"), tr(2, 0.5, "1", "1"), tr(3, 300.5, "1", "1")])
    assert time_bounds(narrow) == ("2024-05-01 00:00:00.500000+00", "2024-05-01 00:05:00.500000+00")
    assert time_bounds(narrow + lines(TRADES, [tr(4, 100, "1", "1")])) == time_bounds(narrow)
    assert time_bounds(narrow + lines(TRADES, [tr(4, 0.4, "1", "1")])) is None  # 5 min + 0.1 s


def test_rows_of_other_transactions_in_the_span_are_not_counted_again(
    db_url: str, two_sinks: tuple[Sink, Sink]
) -> None:
    """Two sinks write interleaved trades of the same seconds, a late row and a replay: each minute's
    rollup and coverage equal those of the raw rows (no row counted twice or missed)."""
    a, b = two_sinks
    msgs = [tr(i, i * 0.7, f"{100 + i % 7}.5", f"0.{i % 9 + 1}") for i in range(1, 200)]
    aggs = [tr(1000 + i, i * 1.3, "101", f"{i % 5 + 1}", "aggTrade") for i in range(1, 100)]
    for k in range(0, 199, 20):
        assert a.write(TRADES, lines(TRADES, msgs[k:k + 20:2] + aggs[k // 2:k // 2 + 10])).inserted > 0
        assert b.write(TRADES, lines(TRADES, msgs[k + 1:k + 20:2])).inserted > 0
    assert b.write(TRADES, lines(TRADES, [tr(0, 0.1, "90", "1")])).inserted == 1  # late, into minute 0
    assert a.write(TRADES, lines(TRADES, msgs[:50])).inserted == 0  # a replay
    rollup = query(db_url, "SELECT * FROM trades_1m ORDER BY symbol, type, bucket")
    raw = query(db_url, f"SELECT * FROM ({TRADE_MINUTES.format(source='trades')}) m ORDER BY 1, 2, 3")
    assert rollup == raw and sum(r[13] for r in rollup) == 200 + 99
    cover = query(db_url, "SELECT * FROM trades_cov_1m ORDER BY symbol, type, bucket")
    from_raw = f"SELECT * FROM ({COVER_MINUTES.format(source='trades')}) c ORDER BY 1, 2, 3"
    assert cover == query(db_url, from_raw)
    assert query(db_url, "SELECT dirty FROM coverage_state") == [(False,)]


def test_book_ticker_read_back_counts_each_quote_once(db_url: str, two_sinks: tuple[Sink, Sink]) -> None:
    """Quotes from two sessions in the same span: the minutes count each once."""
    a, b = two_sinks
    msgs = [book(i, bid_price=f"100.{i:02d}", ask_price=f"101.{i:02d}") for i in range(1, 61)]
    a.write(BOOK_TICKER, lines(BOOK_TICKER, msgs[0::2]))
    b.write(BOOK_TICKER, lines(BOOK_TICKER, msgs[1::2]))
    raw = query(db_url, "SELECT count(*), min(bid_price), max(ask_price) FROM book_ticker")
    assert query(db_url, "SELECT sum(n), min(min_bid), max(max_ask) FROM book_ticker_1m") == raw
    assert raw[0][0] == 60
