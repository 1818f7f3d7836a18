"""A small hand-built tape with known answers, shared by the query, CLI and API tests.

BTCUSDT trades on 2024-03-01 (T0 = 00:00:00Z), inserted in shuffled order:
  id 1  T0            100.00000000 x 1.00000000      id 2  T0 (same ms)  101.50000000 x 2.00000000
  id 3  T0+30.5s       99.25000000 x 0.50000000      id 4  T0+70s        102.00000000 x 3.00000000
  (nothing in minute 00:02)
  id 5  T0+180s       103.00000000 x 1000.00000000  (notional 103000: a whale)
  id 6  T0+239.999s    98.00000000 x 0.10000000      id 7  same ms       98.50000000 x 0.20000000
  id 8  2024-03-02T12:00:00Z 105.00000000 x 1.00000000
BTCUSDT aggTrades: prices twice as high so a mix-up shows (200, 210, 220; id 102 is a whale).
ETHUSDT: one trade. XRPUSDT: nothing. bookTicker and gaps for BTCUSDT (and one ETHUSDT gap).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import psycopg2

from db.store.migrate import apply

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


TRADES = [  # (seconds from T0, symbol, type, id, price, qty, buyer_maker)
    (0.0, "BTCUSDT", "trade", 1, "100.00000000", "1.00000000", False),
    (0.0, "BTCUSDT", "trade", 2, "101.50000000", "2.00000000", True),
    (30.5, "BTCUSDT", "trade", 3, "99.25000000", "0.50000000", False),
    (70.0, "BTCUSDT", "trade", 4, "102.00000000", "3.00000000", True),
    (180.0, "BTCUSDT", "trade", 5, "103.00000000", "1000.00000000", False),
    (239.999, "BTCUSDT", "trade", 6, "98.00000000", "0.10000000", True),
    (239.999, "BTCUSDT", "trade", 7, "98.50000000", "0.20000000", False),
    (129600.0, "BTCUSDT", "trade", 8, "105.00000000", "1.00000000", False),
    (0.0, "BTCUSDT", "aggTrade", 100, "200.00000000", "1.00000000", False),
    (60.0, "BTCUSDT", "aggTrade", 101, "210.00000000", "1.00000000", True),
    (300.0, "BTCUSDT", "aggTrade", 102, "220.00000000", "1000.00000000", False),
    (10.0, "ETHUSDT", "trade", 1, "3000.10000000", "0.00100000", False),
]
G1 = "BTCUSDT/trade/ids/50-59"  # repaired; its rows span T0 + 120 s .. 150 s
G2 = "BTCUSDT/bookTicker/time/1709272800000000"  # open (since T0 + 6 h)
G5 = "BTCUSDT/aggTrade/ids/7-9"  # unrepairable
QUOTES = [  # (seconds, symbol, update_id, bid, bid_qty, ask, ask_qty)
    (0.1, "BTCUSDT", 10, "99.90000000", "1.50000000", "100.10000000", "2.00000000"),
    (60.0, "BTCUSDT", 11, "101.00000000", "1.00000000", "101.20000000", "1.00000000"),
    (60.0, "BTCUSDT", 12, "101.05000000", "0.50000000", "101.15000000", "0.70000000"),
]
GAPS = [  # gap_id, symbol, stream, kind, first_id, last_id, start, end, missing, reason, status,
    # detected, repaired. Shaped as ingestion writes them (ingestion/records.py): id gaps carry ids
    # and no times (the worker adds the data's span, data_start..data_end); bookTicker has only
    # time gaps, closed unrepairable (no REST backfill).
    (G1, "BTCUSDT", "trade", "ids", 50, 59, None, None, 10, "reconnect", "repaired", at(151), at(300)),
    (G2, "BTCUSDT", "bookTicker", "time", None, None, at(6 * 3600), None, None, "reconnect", "open",
     at(6 * 3600 + 1), None),
    ("ETHUSDT/bookTicker/time/1709251260000000", "ETHUSDT", "bookTicker", "time", None, None, at(60),
     None, None, "reconnect", "open", at(61), None),
    ("BTCUSDT/bookTicker/time/1706745600000000", "BTCUSDT", "bookTicker", "time", None, None,
     at(-29 * 86400), at(-29 * 86400 + 60), None, "reconnect: bookTicker has no REST backfill",
     "unrepairable", at(-29 * 86400 + 1), None),
    (G5, "BTCUSDT", "aggTrade", "ids", 7, 9, None, None, 3, "stream: REST no longer has ids 7-9",
     "unrepairable", at(12 * 3600), None),
]


def load(url: str) -> None:
    """Apply the migrations on ``url`` and insert the tape above (trades in shuffled order)."""
    apply(url)
    trades = list(TRADES)
    random.Random(7).shuffle(trades)
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        for secs, sym, typ, tid, price, qty, maker in trades:
            cur.execute(
                "INSERT INTO trades (time, symbol, type, id, price, qty, buyer_maker, received_at)"
                " VALUES (%s, %s, %s, %s, %s::numeric, %s::numeric, %s, %s)",
                (at(secs), sym, typ, tid, price, qty, maker, at(secs + 0.2)),
            )
        for secs, sym, uid, bid, bq, ask, aq in QUOTES:
            cur.execute(
                "INSERT INTO book_ticker VALUES (%s, %s, %s, %s::numeric, %s::numeric, %s::numeric,"
                " %s::numeric)", (at(secs), sym, uid, bid, bq, ask, aq),
            )
        for gap in GAPS:
            cur.execute("INSERT INTO gaps VALUES (" + ", ".join(["%s"] * 13) + ")", gap)
        # The span the worker fills in once G1's rows are repaired (refresh_gap_spans, migration 003).
        cur.execute("UPDATE gaps SET data_start = %s, data_end = %s, span_settled = true WHERE gap_id = %s",
                    (at(120), at(150), G1))
        cur.execute("SELECT rollup_rebuild()")  # rows inserted by hand, not by the worker's sink
    conn.close()


@contextmanager
def tape_schema(database_url: str) -> Iterator[str]:
    """A schema of its own holding the tape; yields its URL; dropped afterwards."""
    name = f"tq_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in database_url else "?"
    url = f"{database_url}{sep}options={quote(f'-csearch_path={name},public')}"
    try:
        load(url)
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        admin.close()
