"""The SQL text of db.service.queries: parameterised statements only (%(name)s placeholders).

Rules:
  1. Every trades statement filters on symbol AND type (aggTrades and trades never mix) and
     leads with those two columns so trades_symbol_type_time_idx serves it.
  2. Order is (time, id): open/close/"last" take the row with the least/greatest id among those
     at the least/greatest time.
  3. Bucket widths arrive as whole seconds (``width_s``) and become ``make_interval(secs => ..)``,
     a fixed length whatever the session time zone.
  4. Buckets of whole minutes, ranges and day counts read the rollups (migration 003): hours
     for the whole hours of [start, end) (candles only when the bucket is whole hours),
     minutes for the other whole minutes, raw rows only for the partial minutes at the edges
     (``db.service.results.rollup_split`` gives the pieces); sub-minute buckets read raw rows. Both
     give the same answer (tests compare them).
  5. ``stats`` reads the rollups only; ``gaps`` uses gaps_span_idx and the rollup.
"""

from __future__ import annotations

LATEST_SQL = """
SELECT time, id, price, qty, buyer_maker FROM trades
WHERE symbol = %(symbol)s AND type = %(type)s
ORDER BY time DESC, id DESC LIMIT 1"""

PRICE_AT_SQL = """
(SELECT 'before' AS side, time, id, price, qty, buyer_maker FROM trades
 WHERE symbol = %(symbol)s AND type = %(type)s AND time <= %(at)s
 ORDER BY time DESC, id DESC LIMIT 1)
UNION ALL
(SELECT 'after' AS side, time, id, price, qty, buyer_maker FROM trades
 WHERE symbol = %(symbol)s AND type = %(type)s AND time > %(at)s ORDER BY time, id LIMIT 1)"""

RANGE_SQL = """
SELECT a.n, a.high, a.low, a.volume, a.quote_volume, a.t0, a.t1,
  (SELECT price FROM trades WHERE symbol = %(symbol)s AND type = %(type)s AND time = a.t0
   ORDER BY id LIMIT 1),
  (SELECT price FROM trades WHERE symbol = %(symbol)s AND type = %(type)s AND time = a.t1
   ORDER BY id DESC LIMIT 1)
FROM (
  SELECT count(*) AS n, max(price) AS high, min(price) AS low,
         coalesce(sum(qty), 0) AS volume, coalesce(sum(price * qty), 0) AS quote_volume,
         min(time) AS t0, max(time) AS t1
  FROM trades WHERE symbol = %(symbol)s AND type = %(type)s AND time >= %(start)s AND time < %(end)s
) a"""

# The per-bucket aggregate of raw rows (sub-minute buckets): the candles CTE of the two
# candle statements below.
_RAW_CANDLES = """
agg AS (
  SELECT time_bucket(make_interval(secs => %(width_s)s), time) AS bucket,
         min(time) AS t0, max(time) AS t1, max(price) AS high, min(price) AS low,
         sum(qty) AS volume, sum(price * qty) AS quote_volume, count(*) AS n
  FROM trades WHERE symbol = %(symbol)s AND type = %(type)s AND time >= %(start)s AND time < %(end)s
  GROUP BY 1
), candles AS (
  SELECT agg.*,
    (SELECT price FROM trades t WHERE symbol = %(symbol)s AND type = %(type)s AND t.time = agg.t0
     ORDER BY t.id LIMIT 1) AS open,
    (SELECT price FROM trades t WHERE symbol = %(symbol)s AND type = %(type)s AND t.time = agg.t1
     ORDER BY t.id DESC LIMIT 1) AS close
  FROM agg
)"""

# Rule 4: [start, end) in disjoint pieces (db.service.results.rollup_split): whole hours [h0, h1) from
# trades_1h, whole minutes [m0, h0) and [h1, m1) from trades_1m, the partial minutes at the
# edges ([a0, a1) and [b0, b1)) aggregated from raw rows the way the rollup is
# (db.store.rollups.TRADE_MINUTES). Pieces never overlap in time, so a bucket's open/close are the
# first/last piece's by open/close time.
_PIECES = """
pieces (bucket, open_time, open, close_time, close, high, low, volume, quote_volume, n) AS (
  SELECT bucket, open_time, open, close_time, close, high, low, volume, quote_volume, n
  FROM trades_1m WHERE symbol = %(symbol)s AND type = %(type)s AND bucket >= %(m0)s AND bucket < %(h0)s
  UNION ALL
  SELECT bucket, open_time, open, close_time, close, high, low, volume, quote_volume, n
  FROM trades_1h WHERE symbol = %(symbol)s AND type = %(type)s AND bucket >= %(h0)s AND bucket < %(h1)s
  UNION ALL
  SELECT bucket, open_time, open, close_time, close, high, low, volume, quote_volume, n
  FROM trades_1m WHERE symbol = %(symbol)s AND type = %(type)s AND bucket >= %(h1)s AND bucket < %(m1)s
  UNION ALL
  SELECT time_bucket(INTERVAL '1 minute', time), min(time), first(price, (time, id)),
         max(time), last(price, (time, id)), max(price), min(price), sum(qty), sum(price * qty),
         count(*)
  FROM trades WHERE symbol = %(symbol)s AND type = %(type)s AND time >= %(a0)s AND time < %(a1)s
  GROUP BY 1
  UNION ALL
  SELECT time_bucket(INTERVAL '1 minute', time), min(time), first(price, (time, id)),
         max(time), last(price, (time, id)), max(price), min(price), sum(qty), sum(price * qty),
         count(*)
  FROM trades WHERE symbol = %(symbol)s AND type = %(type)s AND time >= %(b0)s AND time < %(b1)s
  GROUP BY 1
)"""
_CANDLES_OF_PIECES = """, candles AS (
  SELECT time_bucket(make_interval(secs => %(width_s)s), bucket) AS bucket,
         first(open, open_time) AS open, max(high) AS high, min(low) AS low,
         last(close, close_time) AS close, sum(volume) AS volume,
         sum(quote_volume) AS quote_volume, sum(n)::bigint AS n
  FROM pieces GROUP BY 1
)"""
_ROLLUP_CANDLES = _PIECES + _CANDLES_OF_PIECES

_CANDLES_SELECT = """
SELECT bucket, open, high, low, close, volume, quote_volume, n FROM candles ORDER BY bucket"""

# Gap fill without the TSL-only time_bucket_gapfill/locf: the same candles, joined onto every
# bucket of generate_series; count(close) over the series numbers each run of empty buckets
# after the candle that precedes it, and that candle's close (or, before the first candle, the
# last trade before start) fills the run.
_FILLED_SELECT = """, series AS (
  SELECT b AS bucket FROM generate_series(
    time_bucket(make_interval(secs => %(width_s)s), %(start)s::timestamptz),
    %(end)s::timestamptz - interval '1 microsecond', make_interval(secs => %(width_s)s)) AS b
  WHERE %(end)s::timestamptz > %(start)s::timestamptz
), joined AS (
  SELECT s.bucket, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.n,
         count(c.close) OVER (ORDER BY s.bucket) AS run
  FROM series s LEFT JOIN candles c USING (bucket)
), filled AS (
  SELECT j.*, coalesce(
    first_value(j.close) OVER (PARTITION BY j.run ORDER BY j.bucket),
    (SELECT price FROM trades WHERE symbol = %(symbol)s AND type = %(type)s AND time < %(start)s
     ORDER BY time DESC, id DESC LIMIT 1)
  ) AS carried
  FROM joined j
)
SELECT bucket, coalesce(open, carried), coalesce(high, carried), coalesce(low, carried),
       coalesce(close, carried), coalesce(volume, 0), coalesce(quote_volume, 0), coalesce(n, 0)
FROM filled ORDER BY bucket"""

CANDLES_SQL = "WITH" + _RAW_CANDLES + _CANDLES_SELECT
CANDLES_FILLED_SQL = "WITH" + _RAW_CANDLES + _FILLED_SELECT
ROLLUP_CANDLES_SQL = "WITH" + _ROLLUP_CANDLES + _CANDLES_SELECT
ROLLUP_CANDLES_FILLED_SQL = "WITH" + _ROLLUP_CANDLES + _FILLED_SELECT

# range over the same pieces: whole minutes from the rollup, the edges from raw rows.
ROLLUP_RANGE_SQL = "WITH" + _PIECES + """
SELECT coalesce(sum(n), 0)::bigint, max(high), min(low), coalesce(sum(volume), 0),
       coalesce(sum(quote_volume), 0), min(open_time), max(close_time),
       first(open, open_time), last(close, close_time)
FROM pieces"""

# stats from the hourly rollups (Rule 5): the cost is the symbol's hours, never its rows.
# (table shown, trade type or None, statement)
STATS_SQL = (
    ("trades", "trade", """
SELECT coalesce(sum(n), 0)::bigint, min(open_time), max(close_time), min(low), max(high)
FROM trades_1h WHERE symbol = %(symbol)s AND type = 'trade'"""),
    ("trades", "aggTrade", """
SELECT coalesce(sum(n), 0)::bigint, min(open_time), max(close_time), min(low), max(high)
FROM trades_1h WHERE symbol = %(symbol)s AND type = 'aggTrade'"""),
    ("book_ticker", None, """
SELECT coalesce(sum(n), 0)::bigint, min(first_time), max(last_time), min(min_bid), max(max_ask)
FROM book_ticker_1h WHERE symbol = %(symbol)s"""),
)

GAP_STATUS_SQL = "SELECT status, count(*) FROM gaps WHERE symbol = %(symbol)s GROUP BY status"

SPREAD_SQL = """
SELECT time, update_id, bid_price, bid_qty, ask_price, ask_qty, ask_price - bid_price
FROM book_ticker WHERE symbol = %(symbol)s AND time <= %(at)s
ORDER BY time DESC, update_id DESC LIMIT 1"""

# Per bucket of [start, end): the last quote of the bucket (by receipt time, then update id)
# and the widest spread seen in it.
QUOTE_BUCKETS_SQL = """
WITH q AS (
  SELECT time_bucket(make_interval(secs => %(width_s)s), time) AS bucket, time, update_id,
         bid_price, ask_price, ask_price - bid_price AS spread
  FROM book_ticker WHERE symbol = %(symbol)s AND time >= %(start)s AND time < %(end)s
), widest AS (
  SELECT bucket, max(spread) AS max_spread, count(*) AS n FROM q GROUP BY bucket
)
SELECT DISTINCT ON (q.bucket) q.bucket, q.bid_price, q.ask_price, q.spread, w.max_spread, w.n
FROM q JOIN widest w USING (bucket)
ORDER BY q.bucket, q.time DESC, q.update_id DESC"""

WHALES_SQL = """
SELECT time, id, price, qty, buyer_maker, price * qty AS notional FROM trades
WHERE symbol = %(symbol)s AND type = %(type)s AND time >= %(start)s AND time < %(end)s
  AND price * qty >= %(threshold)s
ORDER BY time, id LIMIT %(limit)s"""

# A gap is selected by the time of its data (the missing events), not by when it was noticed:
# its span overlaps [start, end). The span is data_start..data_end (migration 003: a time gap's
# window; an id gap's repaired rows' times, else its neighbours'); a gap whose span is not known
# yet falls back to start_time, then to its detection time. The range expression is the one of
# the GiST index gaps_span_idx (migration 004), which serves the overlap test.
GAPS_SQL = """
SELECT gap_id, stream, kind, first_id, last_id, start_time, end_time, missing, reason, status,
       detected_at, repaired_at, coalesce(data_start, start_time), coalesce(data_end, end_time)
FROM gaps
WHERE symbol = %(symbol)s
  AND tstzrange(coalesce(data_start, start_time, detected_at),
                greatest(coalesce(data_start, start_time, detected_at),
                         coalesce(data_end, end_time, data_start, start_time, detected_at)), '[]')
      && tstzrange(%(start)s::timestamptz, %(end)s::timestamptz, '[)')
ORDER BY coalesce(data_start, start_time, detected_at), gap_id"""

# Rows per UTC day from the rollups' whole hours and minutes plus the raw rows of the edges.
DAY_COUNTS_SQL = """
WITH days AS (
  SELECT d AS day FROM generate_series(
    time_bucket(interval '24 hours', %(start)s::timestamptz),
    %(end)s::timestamptz - interval '1 microsecond', interval '24 hours') AS d
  WHERE %(end)s::timestamptz > %(start)s::timestamptz
), pieces AS (
  SELECT type, bucket AS time, n FROM trades_1m
  WHERE symbol = %(symbol)s AND type = ANY('{trade,aggTrade}') AND bucket >= %(m0)s AND bucket < %(h0)s
  UNION ALL
  SELECT type, bucket AS time, n FROM trades_1h
  WHERE symbol = %(symbol)s AND type = ANY('{trade,aggTrade}') AND bucket >= %(h0)s AND bucket < %(h1)s
  UNION ALL
  SELECT type, bucket AS time, n FROM trades_1m
  WHERE symbol = %(symbol)s AND type = ANY('{trade,aggTrade}') AND bucket >= %(h1)s AND bucket < %(m1)s
  UNION ALL
  SELECT type, time, 1 FROM trades
  WHERE symbol = %(symbol)s AND type = ANY('{trade,aggTrade}') AND time >= %(a0)s AND time < %(a1)s
  UNION ALL
  SELECT type, time, 1 FROM trades
  WHERE symbol = %(symbol)s AND type = ANY('{trade,aggTrade}') AND time >= %(b0)s AND time < %(b1)s
), counts AS (
  SELECT time_bucket(interval '24 hours', time) AS day,
         sum(n) FILTER (WHERE type = 'trade')::bigint AS trades,
         sum(n) FILTER (WHERE type = 'aggTrade')::bigint AS agg_trades
  FROM pieces GROUP BY 1
)
SELECT days.day, coalesce(trades, 0), coalesce(agg_trades, 0)
FROM days LEFT JOIN counts USING (day) ORDER BY days.day"""

HAS_ANY_SQL = """
SELECT EXISTS (SELECT 1 FROM trades WHERE symbol = %(symbol)s)
    OR EXISTS (SELECT 1 FROM book_ticker WHERE symbol = %(symbol)s)
    OR EXISTS (SELECT 1 FROM gaps WHERE symbol = %(symbol)s)"""

HAS_QUOTES_SQL = "SELECT EXISTS (SELECT 1 FROM book_ticker WHERE symbol = %(symbol)s)"

# Readiness of the query API: the pipeline tables the session's search_path cannot resolve.
MISSING_TABLES_SQL = """
SELECT name FROM unnest(%(names)s::text[]) AS name WHERE to_regclass(name) IS NULL ORDER BY name"""


# The symbols in the database: those of the hourly rollups (trades, bookTicker) and of the gap
# records, each read by a loose index scan (one index probe per symbol, on the tables' leading
# symbol column), so the cost follows the number of symbols, not of rows.
_SYMBOLS = """
traded(symbol) AS (
  (SELECT symbol FROM trades_1h ORDER BY symbol LIMIT 1)
  UNION ALL
  SELECT (SELECT t.symbol FROM trades_1h t WHERE t.symbol > traded.symbol ORDER BY t.symbol LIMIT 1)
  FROM traded WHERE traded.symbol IS NOT NULL
), quoted(symbol) AS (
  (SELECT symbol FROM book_ticker_1h ORDER BY symbol LIMIT 1)
  UNION ALL
  SELECT (SELECT b.symbol FROM book_ticker_1h b WHERE b.symbol > quoted.symbol ORDER BY b.symbol LIMIT 1)
  FROM quoted WHERE quoted.symbol IS NOT NULL
), gapped(symbol) AS (
  (SELECT symbol FROM gaps ORDER BY symbol LIMIT 1)
  UNION ALL
  SELECT (SELECT g.symbol FROM gaps g WHERE g.symbol > gapped.symbol ORDER BY g.symbol LIMIT 1)
  FROM gapped WHERE gapped.symbol IS NOT NULL
), symbols AS (
  SELECT symbol FROM traded WHERE symbol IS NOT NULL
  UNION SELECT symbol FROM quoted WHERE symbol IS NOT NULL
  UNION SELECT symbol FROM gapped WHERE symbol IS NOT NULL
)"""

SYMBOLS_SQL = "WITH RECURSIVE" + _SYMBOLS + "\nSELECT symbol FROM symbols ORDER BY symbol"

# The market overview, one statement for every symbol (Rule 4's pieces per symbol, through the
# rollups' primary keys; the last trade and the gap counts through the symbol-leading indexes):
# per symbol, its trades in [start, end), its gap records by status (all of them: the gaps table
# is state, an open gap stays in view until it is repaired), and its last trade. Most trades first.
_MARKETS_SELECT = """
SELECT s.symbol, a.trades, g.open, g.repaired, g.unrepairable, l.time, l.id, l.price
FROM symbols s
CROSS JOIN LATERAL (
  SELECT coalesce(sum(n), 0)::bigint AS trades FROM (
    SELECT n FROM trades_1m
    WHERE symbol = s.symbol AND type = 'trade' AND bucket >= %(m0)s AND bucket < %(h0)s
    UNION ALL
    SELECT n FROM trades_1h
    WHERE symbol = s.symbol AND type = 'trade' AND bucket >= %(h0)s AND bucket < %(h1)s
    UNION ALL
    SELECT n FROM trades_1m
    WHERE symbol = s.symbol AND type = 'trade' AND bucket >= %(h1)s AND bucket < %(m1)s
    UNION ALL
    SELECT count(*) FROM trades
    WHERE symbol = s.symbol AND type = 'trade' AND time >= %(a0)s AND time < %(a1)s
    UNION ALL
    SELECT count(*) FROM trades
    WHERE symbol = s.symbol AND type = 'trade' AND time >= %(b0)s AND time < %(b1)s
  ) pieces
) a
CROSS JOIN LATERAL (
  SELECT count(*) FILTER (WHERE status = 'open') AS open,
         count(*) FILTER (WHERE status = 'repaired') AS repaired,
         count(*) FILTER (WHERE status = 'unrepairable') AS unrepairable
  FROM gaps WHERE symbol = s.symbol
) g
LEFT JOIN LATERAL (
  SELECT time, id, price FROM trades WHERE symbol = s.symbol AND type = 'trade'
  ORDER BY time DESC, id DESC LIMIT 1
) l ON true
ORDER BY a.trades DESC, s.symbol"""
MARKETS_SQL = "WITH RECURSIVE" + _SYMBOLS + _MARKETS_SELECT
