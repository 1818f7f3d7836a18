"""A small tape ending now, for the dashboard's page tests (its window always ends at now)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from db.store.migrate import apply

LAST_PRICE = "67012.34000000"
WHALE = ("67005.10000000", "2.50000000")  # notional 167,512.75


def insert_recent_tape(url: str, now: datetime) -> None:
    """Migrate, then 5 minutes of BTCUSDT trades and quotes up to ``now``, one whale, one gap."""
    apply(url)
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        for i in range(60):
            t = now - timedelta(seconds=300 - 5 * i)
            price, qty = (WHALE if i == 30 else (f"{67000 + i % 7}.{i:02d}000000", "0.01000000"))
            if i == 59:
                price = LAST_PRICE
            cur.execute(
                "INSERT INTO trades (time, symbol, type, id, price, qty, buyer_maker, received_at)"
                " VALUES (%s, 'BTCUSDT', 'trade', %s, %s::numeric, %s::numeric, false, %s)",
                (t, 1000 + i, price, qty, t))
            cur.execute(
                "INSERT INTO book_ticker (time, symbol, update_id, bid_price, bid_qty, ask_price, ask_qty)"
                " VALUES (%s, 'BTCUSDT', %s, %s::numeric - 0.01, 1, %s::numeric + 0.01, 1)",
                (t, 5000 + i, price, price))
        cur.execute(
            "INSERT INTO gaps (gap_id, symbol, stream, kind, start_time, end_time, reason, status,"
            " detected_at) VALUES ('gx', 'BTCUSDT', 'btcusdt@trade', 'time', %s, %s, 'disconnected',"
            " 'repaired', %s)", (now - timedelta(seconds=200), now - timedelta(seconds=190), now))
    conn.close()


@pytest.fixture
def recent_tape(schema_factory: Callable[[], str]) -> str:
    """A database URL on a fresh schema holding the recent tape."""
    url = schema_factory()
    insert_recent_tape(url, datetime.now(UTC) - timedelta(seconds=1))
    return url


MARKET_SIZE = 500


def insert_market(url: str, now: datetime, size: int = MARKET_SIZE) -> None:
    """Migrate, then ``size`` symbols S000USDT.. in one statement each for trades and gaps.

    Symbol i has i % 7 + 1 trades in the minutes before ``now`` (its last price is 100.i, with the
    exchange's 8 decimals); every 10th symbol has an open gap, every 25th an unrepairable one, every
    50th a repaired one. Rollups rebuilt, as the worker would have kept them."""
    apply(url)
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO trades (time, symbol, type, id, price, qty, buyer_maker, received_at)"
            " SELECT %(now)s - (k * 5 + 1) * interval '1 second', format('S%%sUSDT', lpad(i::text, 3, '0')),"
            " 'trade', 100 - k, (100 + i / 1000.0)::numeric(20, 8), 1.00000000, false, %(now)s"
            " FROM generate_series(0, %(size)s - 1) i, generate_series(0, i %% 7) k",
            {"now": now, "size": size})
        cur.execute(
            "INSERT INTO gaps (gap_id, symbol, stream, kind, start_time, end_time, reason, status,"
            " detected_at)"
            " SELECT format('g%%s%%s', i, s), format('S%%sUSDT', lpad(i::text, 3, '0')), 'trade', 'time',"
            " %(now)s - interval '1 minute', %(now)s, 'disconnected', s, %(now)s"
            " FROM generate_series(0, %(size)s - 1) i, unnest(ARRAY['open', 'unrepairable', 'repaired']) s"
            " WHERE (s = 'open' AND i %% 10 = 0) OR (s = 'unrepairable' AND i %% 25 = 0)"
            " OR (s = 'repaired' AND i %% 50 = 0)", {"now": now, "size": size})
        cur.execute("SELECT rollup_rebuild()")
    conn.close()
