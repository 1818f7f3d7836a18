"""The SQL text of db.queries: parameterised statements only (%(name)s placeholders).

Rules:
  1. Every trades statement filters on symbol AND type (aggTrades and trades never mix) and
     leads with those two columns so trades_symbol_type_time_idx serves it.
  2. Order is (time, id): open/close/"last" take the row with the least/greatest id among those
     at the least/greatest time.
  3. Bucket widths arrive as whole seconds (``width_s``) and become ``make_interval(secs => ..)``,
     a fixed length whatever the session time zone.
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

CANDLES_SQL = """
WITH agg AS (
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
)
SELECT bucket, open, high, low, close, volume, quote_volume, n FROM candles ORDER BY bucket"""

# Gap fill without the TSL-only time_bucket_gapfill/locf: the same candles, joined onto every
# bucket of generate_series; count(close) over the series numbers each run of empty buckets
# after the candle that precedes it, and that candle's close (or, before the first candle, the
# last trade before start) fills the run.
CANDLES_FILLED_SQL = """
WITH agg AS (
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
), series AS (
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

# (table, trade type or None, column for the min price, column for the max price)
STATS_TABLES = (
    ("trades", "trade", "price", "price"),
    ("trades", "aggTrade", "price", "price"),
    ("book_ticker", None, "bid_price", "ask_price"),
)
STATS_SQL = """
SELECT count(*), min(time), max(time), min({low}), max({high}) FROM {table}
WHERE symbol = %(symbol)s {type_filter}"""

GAP_STATUS_SQL = "SELECT status, count(*) FROM gaps WHERE symbol = %(symbol)s GROUP BY status"

SPREAD_SQL = """
SELECT time, update_id, bid_price, bid_qty, ask_price, ask_qty, ask_price - bid_price
FROM book_ticker WHERE symbol = %(symbol)s AND time <= %(at)s
ORDER BY time DESC, update_id DESC LIMIT 1"""

WHALES_SQL = """
SELECT time, id, price, qty, buyer_maker, price * qty AS notional FROM trades
WHERE symbol = %(symbol)s AND type = %(type)s AND time >= %(start)s AND time < %(end)s
  AND price * qty >= %(threshold)s
ORDER BY time, id LIMIT %(limit)s"""

# A gap is selected by the time of its data (the missing events), not by when it was noticed:
# it overlaps [start, end) when its span begins before end and ends at or after start. The span
# is data_start..data_end (migration 003: a time gap's window; an id gap's repaired rows' times,
# else its neighbours'); a gap whose span is not known yet falls back to start_time, then to its
# detection time.
GAPS_SQL = """
SELECT gap_id, stream, kind, first_id, last_id, start_time, end_time, missing, reason, status,
       detected_at, repaired_at, coalesce(data_start, start_time), coalesce(data_end, end_time)
FROM gaps
WHERE symbol = %(symbol)s
  AND coalesce(data_start, start_time, detected_at) < %(end)s
  AND coalesce(data_end, end_time, data_start, start_time, detected_at) >= %(start)s
ORDER BY coalesce(data_start, start_time, detected_at), gap_id"""

DAY_COUNTS_SQL = """
WITH days AS (
  SELECT d AS day FROM generate_series(
    time_bucket(interval '24 hours', %(start)s::timestamptz),
    %(end)s::timestamptz - interval '1 microsecond', interval '24 hours') AS d
  WHERE %(end)s::timestamptz > %(start)s::timestamptz
), counts AS (
  SELECT time_bucket(interval '24 hours', time) AS day,
         count(*) FILTER (WHERE type = 'trade') AS trades,
         count(*) FILTER (WHERE type = 'aggTrade') AS agg_trades
  FROM trades WHERE symbol = %(symbol)s AND time >= %(start)s AND time < %(end)s
  GROUP BY 1
)
SELECT days.day, coalesce(trades, 0), coalesce(agg_trades, 0)
FROM days LEFT JOIN counts USING (day) ORDER BY days.day"""

HAS_ANY_SQL = """
SELECT EXISTS (SELECT 1 FROM trades WHERE symbol = %(symbol)s)
    OR EXISTS (SELECT 1 FROM book_ticker WHERE symbol = %(symbol)s)
    OR EXISTS (SELECT 1 FROM gaps WHERE symbol = %(symbol)s)"""

HAS_QUOTES_SQL = "SELECT EXISTS (SELECT 1 FROM book_ticker WHERE symbol = %(symbol)s)"

# --- audit (db.audit has the rules; these statements return anomalies, never a range's rows)

# The rows around [start, end) of one stream: the last one before it, the first and last in
# it, and the first one after it (index probes on trades_symbol_type_time_idx).
AUDIT_BOUNDS_SQL = """
SELECT b.id, b.time, f.id, f.time, l.id, l.time, a.id, a.time
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT id, time FROM trades WHERE symbol = %(symbol)s AND type = %(type)s
                   AND time < %(start)s ORDER BY time DESC, id DESC LIMIT 1) b ON true
LEFT JOIN LATERAL (SELECT id, time FROM trades WHERE symbol = %(symbol)s AND type = %(type)s
                   AND time >= %(start)s AND time < %(end)s ORDER BY time, id LIMIT 1) f ON true
LEFT JOIN LATERAL (SELECT id, time FROM trades WHERE symbol = %(symbol)s AND type = %(type)s
                   AND time >= %(start)s AND time < %(end)s ORDER BY time DESC, id DESC LIMIT 1) l ON true
LEFT JOIN LATERAL (SELECT id, time FROM trades WHERE symbol = %(symbol)s AND type = %(type)s
                   AND time >= %(end)s ORDER BY time, id LIMIT 1) a ON true"""

# Continuity: one pass over the ids lo_id..hi_id in id order (an index-only scan of the
# unique key (symbol, type, id, time), chunk by chunk, no sort); only the rows whose successor
# is not id + 1 come back (a hole after them, or a duplicate), plus the last row, whose
# row_number is the number of rows scanned. The time bounds only exclude chunks.
AUDIT_ANOMALIES_SQL = """
SELECT id, time, next_id, next_time, rn FROM (
  SELECT id, time, lead(id) OVER w AS next_id, lead(time) OVER w AS next_time,
         row_number() OVER w AS rn
  FROM trades
  WHERE symbol = %(symbol)s AND type = %(type)s AND id >= %(lo_id)s AND id <= %(hi_id)s
    AND time >= %(lo_t)s AND time <= %(hi_t)s
  WINDOW w AS (ORDER BY id)
) x
WHERE next_id IS NULL OR next_id <> id + 1
ORDER BY next_id IS NULL DESC, id
LIMIT %(limit)s"""

# trade/aggTrade consistency, first pass: per trade time (every trade of an aggTrade has the
# aggTrade's time), the trades' count, quantity and id bounds against the aggTrades' covered
# count, quantity and id bounds; one streaming pass, only disagreeing times come back.
AUDIT_TIMES_SQL = """
SELECT time FROM trades
WHERE symbol = %(symbol)s AND type IN ('trade', 'aggTrade') AND time >= %(start)s AND time < %(end)s
GROUP BY time
HAVING sum(qty) FILTER (WHERE type = 'trade') IS DISTINCT FROM sum(qty) FILTER (WHERE type = 'aggTrade')
    OR count(*) FILTER (WHERE type = 'trade')
       <> coalesce(sum((last_id - first_id + 1)::int) FILTER (WHERE type = 'aggTrade'), 0)
    OR min(id) FILTER (WHERE type = 'trade') IS DISTINCT FROM min(first_id) FILTER (WHERE type = 'aggTrade')
    OR max(id) FILTER (WHERE type = 'trade') IS DISTINCT FROM max(last_id) FILTER (WHERE type = 'aggTrade')
ORDER BY time
LIMIT %(limit)s"""

# Second pass, at the disagreeing times only: each aggTrade with its trades' sum and count...
AUDIT_AGGS_SQL = """
SELECT a.time, a.id, a.first_id, a.last_id, a.qty, coalesce(sum(t.qty), 0), count(t.id)
FROM trades a
LEFT JOIN trades t ON t.symbol = a.symbol AND t.type = 'trade' AND t.time = a.time
                  AND t.id BETWEEN a.first_id AND a.last_id
WHERE a.symbol = %(symbol)s AND a.type = 'aggTrade' AND a.time = ANY(%(times)s)
GROUP BY a.time, a.id, a.first_id, a.last_id, a.qty
ORDER BY a.time, a.id"""

# ...and the trades that no aggTrade of their time covers.
AUDIT_UNCOVERED_SQL = """
SELECT t.time, min(t.id), max(t.id), sum(t.qty), count(*)
FROM trades t
WHERE t.symbol = %(symbol)s AND t.type = 'trade' AND t.time = ANY(%(times)s)
  AND NOT EXISTS (SELECT 1 FROM trades a WHERE a.symbol = t.symbol AND a.type = 'aggTrade'
                  AND a.time = t.time AND t.id BETWEEN a.first_id AND a.last_id)
GROUP BY t.time ORDER BY t.time"""

# The id gap records that overlap ids lo..hi of one stream.
AUDIT_GAPS_SQL = """
SELECT gap_id, first_id, last_id, status, reason FROM gaps
WHERE symbol = %(symbol)s AND stream = %(type)s AND kind = 'ids'
  AND first_id <= %(hi_id)s AND last_id >= %(lo_id)s
ORDER BY first_id, gap_id"""
