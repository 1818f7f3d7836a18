"""The SQL that keeps the 1-minute rollups (migration 003) equal to the raw rows.

The worker's sink runs ``merge_statement(table, source)`` inside its write transaction, where
``source`` is a temporary table holding exactly the rows that transaction inserted.

Rules:
  1. A minute's row is the aggregate of the raw rows of that minute, whatever order they came
     in: open/close are the least/greatest (time, id) row, compared on the kept keys
     (open_time, open_id) / (close_time, close_id); high/low take greatest/least; volume,
     quote_volume (sum of price * qty, exact NUMERIC) and n add.
  2. Only inserted rows are merged: a duplicate skipped by ON CONFLICT never reaches
     ``source``, so replays leave the rollup unchanged.
  3. Rows are merged in key order, so two writers never wait on each other in a cycle.
  4. Text only: no I/O here. Identifiers go through ``psycopg2.sql.Identifier``.
  5. The source is aggregated once per minute; the minutes (``*_1m``) and the hours (``*_1h``)
     both absorb that aggregate by Rule 1, in one statement.
"""

from __future__ import annotations

from psycopg2 import sql

TRADES, BOOK_TICKER = "trades", "book_ticker"
ROLLUP_OF = {TRADES: "trades_1m", BOOK_TICKER: "book_ticker_1m"}

# The per-minute aggregate of raw trades rows; {source} is a relation shaped like trades.
TRADE_MINUTES = """
SELECT symbol, type, time_bucket(INTERVAL '1 minute', time) AS bucket,
       min(time) AS open_time, first(id, (time, id)) AS open_id, first(price, (time, id)) AS open,
       max(time) AS close_time, last(id, (time, id)) AS close_id, last(price, (time, id)) AS close,
       max(price) AS high, min(price) AS low, sum(qty) AS volume, sum(price * qty) AS quote_volume,
       count(*) AS n
FROM {source} GROUP BY 1, 2, 3"""

# How a stored row (r) absorbs the aggregate of more rows (EXCLUDED) of the same bucket (Rule 1).
_TRADES_SET = """
  open_time = CASE WHEN (EXCLUDED.open_time, EXCLUDED.open_id) < (r.open_time, r.open_id)
                   THEN EXCLUDED.open_time ELSE r.open_time END,
  open_id   = CASE WHEN (EXCLUDED.open_time, EXCLUDED.open_id) < (r.open_time, r.open_id)
                   THEN EXCLUDED.open_id ELSE r.open_id END,
  open      = CASE WHEN (EXCLUDED.open_time, EXCLUDED.open_id) < (r.open_time, r.open_id)
                   THEN EXCLUDED.open ELSE r.open END,
  close_time = CASE WHEN (EXCLUDED.close_time, EXCLUDED.close_id) > (r.close_time, r.close_id)
                    THEN EXCLUDED.close_time ELSE r.close_time END,
  close_id   = CASE WHEN (EXCLUDED.close_time, EXCLUDED.close_id) > (r.close_time, r.close_id)
                    THEN EXCLUDED.close_id ELSE r.close_id END,
  close      = CASE WHEN (EXCLUDED.close_time, EXCLUDED.close_id) > (r.close_time, r.close_id)
                    THEN EXCLUDED.close ELSE r.close END,
  high = greatest(r.high, EXCLUDED.high),
  low = least(r.low, EXCLUDED.low),
  volume = r.volume + EXCLUDED.volume,
  quote_volume = r.quote_volume + EXCLUDED.quote_volume,
  n = r.n + EXCLUDED.n"""

# Rule 5: the source is aggregated once per minute (m); minutes and hours both absorb it.
_TRADES_MERGE = """
WITH m AS MATERIALIZED ({minutes}
), minutes AS (
  INSERT INTO trades_1m AS r SELECT * FROM m ORDER BY symbol, type, bucket
  ON CONFLICT (symbol, type, bucket) DO UPDATE SET {set}
)
INSERT INTO trades_1h AS r
SELECT symbol, type, time_bucket(INTERVAL '1 hour', bucket),
       min(open_time), first(open_id, open_time), first(open, open_time),
       max(close_time), last(close_id, close_time), last(close, close_time),
       max(high), min(low), sum(volume), sum(quote_volume), sum(n)
FROM m GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (symbol, type, bucket) DO UPDATE SET {set}"""

_BOOK_SET = """
  first_time = least(r.first_time, EXCLUDED.first_time),
  last_time = greatest(r.last_time, EXCLUDED.last_time),
  min_bid = least(r.min_bid, EXCLUDED.min_bid),
  max_ask = greatest(r.max_ask, EXCLUDED.max_ask),
  n = r.n + EXCLUDED.n"""

_BOOK_MERGE = """
WITH m AS MATERIALIZED (
  SELECT symbol, time_bucket(INTERVAL '1 minute', time) AS bucket, min(time) AS first_time,
         max(time) AS last_time, min(bid_price) AS min_bid, max(ask_price) AS max_ask, count(*) AS n
  FROM {source} GROUP BY 1, 2
), minutes AS (
  INSERT INTO book_ticker_1m AS r SELECT * FROM m ORDER BY symbol, bucket
  ON CONFLICT (symbol, bucket) DO UPDATE SET {set}
)
INSERT INTO book_ticker_1h AS r
SELECT symbol, time_bucket(INTERVAL '1 hour', bucket), min(first_time), max(last_time), min(min_bid),
       max(max_ask), sum(n)
FROM m GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (symbol, bucket) DO UPDATE SET {set}"""

_MERGES = {TRADES: (_TRADES_MERGE, _TRADES_SET), BOOK_TICKER: (_BOOK_MERGE, _BOOK_SET)}


def merge_statement(table: str, source: str) -> sql.Composed:
    """The statement merging the rows of ``source`` (shaped like ``table``) into its minutes and hours."""
    template, set_clause = _MERGES[table]
    source_id = sql.Identifier(source)
    return sql.SQL(template).format(
        minutes=sql.SQL(TRADE_MINUTES).format(source=source_id), set=sql.SQL(set_clause), source=source_id)


REBUILD_SQL = "SELECT rollup_rebuild(%(start)s, %(end)s)"
