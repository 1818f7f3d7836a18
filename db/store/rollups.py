"""The SQL that keeps the 1-minute rollups (migration 003) equal to the raw rows.

The worker's sink runs ``merge_statement(table, source)`` inside its write transaction, where
``source`` holds exactly the rows that transaction inserted: read back by ``inserted_rows``
(Rule 7), or a temporary table that captured them.

Rules:
  1. A minute's row is the aggregate of the raw rows of that minute, whatever order they came
     in: open/close are the least/greatest (time, id) row, compared on the kept keys
     (open_time, open_id) / (close_time, close_id); high/low take greatest/least; volume,
     quote_volume (sum of price * qty, exact NUMERIC) and n add.
  2. Only inserted rows are merged: a duplicate skipped by ON CONFLICT never reaches
     ``source``, so replays leave the rollup unchanged.
  3. Rows are merged in key order, so two writers never wait on each other in a cycle.
  4. Text only: no I/O here. Identifiers go through ``psycopg2.sql.Identifier``.
  5. The source is aggregated once per minute; the minutes (``*_1m``), the hours (``*_1h``) and,
     for trades, the minutes' id coverage (``trades_cov_1m``, migration 006) all absorb that
     aggregate, in one statement: by Rule 1, and the coverage by adding its sums and taking the
     least/greatest of its bounds.
  6. The coverage's expressions are those of ``rollup_rebuild()`` (migration 006), so a minute
     kept by the worker equals the same minute rebuilt from the raw rows (tested).
  7. ``inserted_rows``: the rows a transaction inserted can be read back from the table itself
     by ``xmin`` (the inserting transaction's id) within the batch's time bounds, instead of
     being copied a second time into a temporary table. Only for rows inserted at the top level
     of the transaction: a savepoint's rows carry the subtransaction's id.
"""

from __future__ import annotations

from psycopg2 import sql

TRADES, BOOK_TICKER = "trades", "book_ticker"
ROLLUP_OF = {TRADES: "trades_1m", BOOK_TICKER: "book_ticker_1m"}

# The per-minute aggregate of raw trades rows; {source} is a relation shaped like trades.
_TRADE_AGGREGATES = """symbol, type, time_bucket(INTERVAL '1 minute', time) AS bucket,
       min(time) AS open_time, first(id, (time, id)) AS open_id, first(price, (time, id)) AS open,
       max(time) AS close_time, last(id, (time, id)) AS close_id, last(price, (time, id)) AS close,
       max(price) AS high, min(price) AS low, sum(qty) AS volume, sum(price * qty) AS quote_volume,
       count(*) AS n"""
TRADE_MINUTES = f"""
SELECT {_TRADE_AGGREGATES}
FROM {{source}} GROUP BY 1, 2, 3"""  # noqa: S608 (constant text)

# Rule 6: the id coverage of the same minutes (migration 006 names each column); the rows of
# {source} with the trade ids each names (tid_lo..tid_hi) and its weight (w).
_COVERED = """(SELECT *, CASE WHEN type = 'trade' THEN id ELSE first_id END AS tid_lo,
                CASE WHEN type = 'trade' THEN id ELSE last_id END AS tid_hi,
                coverage_weight(time) AS w FROM {source}) s"""
# Integer arithmetic where it cannot overflow (a trade names one id; id & 2^20 - 1 squared is below
# 2^40), NUMERIC for the ranges aggTrades name (any first_id/last_id the contract allows): a
# valid row must never fail on the coverage's arithmetic.
_COVER_AGGREGATES = """min(id) AS id_min, max(id) AS id_max, sum(id) AS id_sum,
       sum((id & 1048575) * (id & 1048575)) AS id_sq,
       count(*) FILTER (WHERE type = 'trade')
         + coalesce(sum(last_id::numeric - first_id + 1) FILTER (WHERE type <> 'trade'), 0) AS tid_n,
       min(tid_lo) AS tid_min, max(tid_hi) AS tid_max,
       coalesce(sum(id) FILTER (WHERE type = 'trade'), 0)
         + coalesce(sum((first_id::numeric + last_id) * (last_id::numeric - first_id + 1) / 2)
                    FILTER (WHERE type <> 'trade'), 0) AS tid_sum,
       coalesce(sum(w) FILTER (WHERE type = 'trade'), 0)
         + coalesce(sum((last_id::numeric - first_id + 1) * w) FILTER (WHERE type <> 'trade'), 0) AS tid_tw,
       sum(qty * w) AS qty_tw"""
COVER_MINUTES = f"""
SELECT symbol, type, time_bucket(INTERVAL '1 minute', time) AS bucket, count(*) AS n,
       sum(qty) AS volume, {_COVER_AGGREGATES}
FROM {_COVERED} GROUP BY 1, 2, 3"""  # noqa: S608 (constant text)

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

_COVER_SET = """
  n = c.n + EXCLUDED.n, volume = c.volume + EXCLUDED.volume,
  id_min = least(c.id_min, EXCLUDED.id_min), id_max = greatest(c.id_max, EXCLUDED.id_max),
  id_sum = c.id_sum + EXCLUDED.id_sum, id_sq = c.id_sq + EXCLUDED.id_sq,
  tid_n = c.tid_n + EXCLUDED.tid_n, tid_min = least(c.tid_min, EXCLUDED.tid_min),
  tid_max = greatest(c.tid_max, EXCLUDED.tid_max), tid_sum = c.tid_sum + EXCLUDED.tid_sum,
  tid_tw = c.tid_tw + EXCLUDED.tid_tw, qty_tw = c.qty_tw + EXCLUDED.qty_tw"""

# Rule 5: the source is aggregated once per minute (m); minutes, coverage and hours absorb it.
_TRADES_MERGE = f"""
WITH m AS MATERIALIZED (
SELECT {_TRADE_AGGREGATES}, {_COVER_AGGREGATES}
FROM {_COVERED} GROUP BY 1, 2, 3
), minutes AS (
  INSERT INTO trades_1m AS r
  SELECT symbol, type, bucket, open_time, open_id, open, close_time, close_id, close, high, low,
         volume, quote_volume, n
  FROM m ORDER BY symbol, type, bucket
  ON CONFLICT (symbol, type, bucket) DO UPDATE SET {{set}}
), cover AS (
  INSERT INTO trades_cov_1m AS c
  SELECT symbol, type, bucket, n, volume, id_min, id_max, id_sum, id_sq, tid_n, tid_min, tid_max,
         tid_sum, tid_tw, qty_tw
  FROM m ORDER BY symbol, type, bucket
  ON CONFLICT (symbol, type, bucket) DO UPDATE SET {_COVER_SET}
)
INSERT INTO trades_1h AS r
SELECT symbol, type, time_bucket(INTERVAL '1 hour', bucket),
       min(open_time), first(open_id, open_time), first(open, open_time),
       max(close_time), last(close_id, close_time), last(close, close_time),
       max(high), min(low), sum(volume), sum(quote_volume), sum(n)
FROM m GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (symbol, type, bucket) DO UPDATE SET {{set}}"""  # noqa: S608 (constant text)

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


def merge_statement(table: str, source: sql.Composable) -> sql.Composed:
    """The statement merging the rows of ``source`` (a relation shaped like ``table``: a table's
    name or a parenthesised SELECT) into its minutes, hours and (trades) coverage."""
    template, set_clause = _MERGES[table]
    return sql.SQL(template).format(set=sql.SQL(set_clause), source=source)


def inserted_rows(table: str) -> sql.Composed:
    """Rule 7: the rows of ``table`` with time in [%(lo)s, %(hi)s] that this transaction inserted
    (xmin is its id), as a parenthesised SELECT for ``merge_statement``."""
    return sql.SQL(
        "(SELECT * FROM {} WHERE time >= %(lo)s AND time <= %(hi)s"
        " AND xmin = pg_current_xact_id()::xid) AS inserted"
    ).format(sql.Identifier(table))


REBUILD_SQL = "SELECT rollup_rebuild(%(start)s, %(end)s)"
