-- 003: 1-minute rollups, kept exact by the worker in the same transaction as the rows.
--
-- The Apache build has no continuous aggregates, so the rollups are plain tables that
-- consumer/sink.py merges into in every write transaction, from the rows that transaction
-- actually inserted (a replayed row skipped by ON CONFLICT is never counted twice). The same
-- tables are used under the Timescale licence, so there is one code path, tested here.
--
-- trades_1m: one row per (symbol, type, minute). open/close are the first/last row of the
-- minute by (time, id); open_time/open_id and close_time/close_id keep the order key, so a row
-- arriving late (backfill, replay of an old minute) merges exactly: the smaller key wins open,
-- the greater key wins close; high/low are greatest/least; volume, quote_volume (sum of
-- price * qty, exact NUMERIC) and n add up.
-- book_ticker_1m: the same for quotes, with what `stats` needs (count, first/last time,
-- min bid, max ask).
-- trades_1h / book_ticker_1h: the same per hour, recomputed from the minute rows of every hour
-- a transaction touched (so long candles and `stats` read hours, not minutes).

CREATE TABLE IF NOT EXISTS trades_1m (
    symbol        text        NOT NULL,
    type          text        NOT NULL,
    bucket        timestamptz NOT NULL,
    open_time     timestamptz NOT NULL,
    open_id       bigint      NOT NULL,
    open          numeric     NOT NULL,
    close_time    timestamptz NOT NULL,
    close_id      bigint      NOT NULL,
    close         numeric     NOT NULL,
    high          numeric     NOT NULL,
    low           numeric     NOT NULL,
    volume        numeric     NOT NULL,
    quote_volume  numeric     NOT NULL,
    n             bigint      NOT NULL,
    PRIMARY KEY (symbol, type, bucket)
);

CREATE TABLE IF NOT EXISTS trades_1h (LIKE trades_1m INCLUDING ALL);

CREATE TABLE IF NOT EXISTS book_ticker_1m (
    symbol      text        NOT NULL,
    bucket      timestamptz NOT NULL,
    first_time  timestamptz NOT NULL,
    last_time   timestamptz NOT NULL,
    min_bid     numeric     NOT NULL,
    max_ask     numeric     NOT NULL,
    n           bigint      NOT NULL,
    PRIMARY KEY (symbol, bucket)
);
CREATE TABLE IF NOT EXISTS book_ticker_1h (LIKE book_ticker_1m INCLUDING ALL);

-- Recompute the rollups from the raw rows of [start, end) (whole hours): the backfill of
-- this migration, a repair tool, and what benchmarks call after generating rows in SQL.
CREATE OR REPLACE FUNCTION rollup_rebuild(
    start_at timestamptz DEFAULT '-infinity', end_at timestamptz DEFAULT 'infinity'
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    done bigint;
BEGIN
    DELETE FROM trades_1m WHERE bucket >= start_at AND bucket < end_at;
    DELETE FROM book_ticker_1m WHERE bucket >= start_at AND bucket < end_at;
    DELETE FROM trades_1h WHERE bucket >= start_at AND bucket < end_at;
    DELETE FROM book_ticker_1h WHERE bucket >= start_at AND bucket < end_at;
    INSERT INTO trades_1m
    SELECT symbol, type, time_bucket(INTERVAL '1 minute', time),
           min(time), first(id, (time, id)), first(price, (time, id)),
           max(time), last(id, (time, id)), last(price, (time, id)),
           max(price), min(price), sum(qty), sum(price * qty), count(*)
    FROM trades WHERE time >= start_at AND time < end_at
    GROUP BY 1, 2, 3;
    GET DIAGNOSTICS done = ROW_COUNT;
    INSERT INTO book_ticker_1m
    SELECT symbol, time_bucket(INTERVAL '1 minute', time), min(time), max(time),
           min(bid_price), max(ask_price), count(*)
    FROM book_ticker WHERE time >= start_at AND time < end_at
    GROUP BY 1, 2;
    INSERT INTO trades_1h
    SELECT symbol, type, time_bucket(INTERVAL '1 hour', bucket),
           min(open_time), first(open_id, open_time), first(open, open_time),
           max(close_time), last(close_id, close_time), last(close, close_time),
           max(high), min(low), sum(volume), sum(quote_volume), sum(n)
    FROM trades_1m WHERE bucket >= start_at AND bucket < end_at
    GROUP BY 1, 2, 3;
    INSERT INTO book_ticker_1h
    SELECT symbol, time_bucket(INTERVAL '1 hour', bucket), min(first_time), max(last_time),
           min(min_bid), max(max_ask), sum(n)
    FROM book_ticker_1m WHERE bucket >= start_at AND bucket < end_at
    GROUP BY 1, 2;
    RETURN done;
END
$$;

SELECT rollup_rebuild();

-- gaps over a range: db.sqltext.GAPS_SQL tests overlap of the gap's data span (migration 003:
-- data_start..data_end, else its start/end times, else its detection time) with the asked
-- [from, to) as ranges, served by this GiST index, so a range query reads the gaps that touch the
-- range, not every gap before or after it.
CREATE INDEX IF NOT EXISTS gaps_span_idx ON gaps USING gist (
    tstzrange(coalesce(data_start, start_time, detected_at),
              greatest(coalesce(data_start, start_time, detected_at),
                       coalesce(data_end, end_time, data_start, start_time, detected_at)),
              '[]'));
