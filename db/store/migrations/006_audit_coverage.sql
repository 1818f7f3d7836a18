-- 006: per-minute id coverage beside the trade rollups, so the audit reads raw rows only where
-- the coverage does not already prove a minute whole (db/store/audit_cover.py has the rules).
--
-- trades_cov_1m: per (symbol, type, minute), over the rows of that minute:
--   n, volume                       how many rows, the sum of their quantities
--   id_min, id_max, id_sum, id_sq   the stream's own ids: least, greatest, sum, and the sum of
--                                   the squares of their low 20 bits (id & 1048575)
--   tid_n, tid_min, tid_max, tid_sum the trade ids the rows name: a trade names its id, an
--                                   aggTrade first_id..last_id: how many (0 when either is
--                                   NULL), least, greatest, their sum
--   tid_tw, qty_tw                  that count and the quantity, each row's weighted by
--                                   coverage_weight(time) (a hash of the time within the minute)
-- A trade minute and the aggTrade minute over it agree when these sums agree; a minute of one
-- stream is whole when n = id_max - id_min + 1 and its id sums are those of id_min..id_max. The
-- worker keeps it in the transaction of the rows, with the rollups (db/store/rollups.py), and
-- rollup_rebuild() below recomputes it, from the same expressions. A table of its own, not more
-- columns of trades_1m, so the rollups read as they did.
--
-- coverage_state.dirty says that rows were written to trades around the worker's rollups (by a
-- statement from a session that did not declare it keeps them, SET pipeline.rollups = 'on'),
-- so the coverage may not be the rows': the audit then reads raw rows only, as before. A full
-- rollup_rebuild() makes it clean again; it locks coverage_state first, so a write around the
-- worker during a rebuild waits for it and then marks the coverage dirty again. (Statement
-- triggers: TimescaleDB allows no transition tables on hypertables, and one check per statement
-- costs the worker nothing per row.)

CREATE TABLE IF NOT EXISTS trades_cov_1m (
    symbol   text        NOT NULL,
    type     text        NOT NULL,
    bucket   timestamptz NOT NULL,
    n        bigint      NOT NULL,
    volume   numeric     NOT NULL,
    id_min   bigint      NOT NULL,
    id_max   bigint      NOT NULL,
    id_sum   numeric     NOT NULL,
    id_sq    numeric     NOT NULL,  -- of (id & 1048575)^2
    tid_n    numeric     NOT NULL,
    tid_min  bigint,
    tid_max  bigint,
    tid_sum  numeric     NOT NULL,
    tid_tw   numeric     NOT NULL,
    qty_tw   numeric     NOT NULL,
    PRIMARY KEY (symbol, type, bucket)
);

-- The weight of a row at ``t`` in tid_tw and qty_tw: a hash of its microsecond within the minute,
-- so that disagreements at two times of one minute do not cancel in the sums.
CREATE OR REPLACE FUNCTION coverage_weight(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashint4(date_part('microseconds', t AT TIME ZONE 'UTC')::int)::bigint
$$;

CREATE TABLE IF NOT EXISTS coverage_state (
    one    boolean PRIMARY KEY DEFAULT true CHECK (one),
    dirty  boolean NOT NULL
);
INSERT INTO coverage_state VALUES (true, false) ON CONFLICT (one) DO NOTHING;

CREATE OR REPLACE FUNCTION coverage_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('pipeline.rollups', true) IS DISTINCT FROM 'on' THEN
        UPDATE coverage_state SET dirty = true;  -- always: it waits for a rebuild in progress
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS trades_coverage_dirty ON trades;
CREATE TRIGGER trades_coverage_dirty AFTER INSERT OR UPDATE OR DELETE ON trades
    FOR EACH STATEMENT EXECUTE FUNCTION coverage_mark_dirty();
DROP TRIGGER IF EXISTS trades_coverage_dirty_truncate ON trades;
CREATE TRIGGER trades_coverage_dirty_truncate AFTER TRUNCATE ON trades
    FOR EACH STATEMENT EXECUTE FUNCTION coverage_mark_dirty();

-- rollup_rebuild as in 004, with the coverage; a rebuild of everything makes the coverage clean.
CREATE OR REPLACE FUNCTION rollup_rebuild(
    start_at timestamptz DEFAULT '-infinity', end_at timestamptz DEFAULT 'infinity'
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    done bigint;
BEGIN
    -- Taken first, so a write around the worker either committed before (and is rebuilt) or
    -- marks the coverage dirty after this commits (its trigger waits on this row).
    PERFORM 1 FROM coverage_state FOR UPDATE;
    DELETE FROM trades_1m WHERE bucket >= start_at AND bucket < end_at;
    DELETE FROM trades_cov_1m WHERE bucket >= start_at AND bucket < end_at;
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
    INSERT INTO trades_cov_1m
    SELECT symbol, type, time_bucket(INTERVAL '1 minute', time), count(*), sum(qty),
           min(id), max(id), sum(id), sum((id & 1048575) * (id & 1048575)),
           count(*) FILTER (WHERE type = 'trade')
             + coalesce(sum(last_id::numeric - first_id + 1) FILTER (WHERE type <> 'trade'), 0),
           min(tid_lo), max(tid_hi),
           coalesce(sum(id) FILTER (WHERE type = 'trade'), 0)
             + coalesce(sum((first_id::numeric + last_id) * (last_id::numeric - first_id + 1) / 2)
                        FILTER (WHERE type <> 'trade'), 0),
           coalesce(sum(w) FILTER (WHERE type = 'trade'), 0)
             + coalesce(sum((last_id::numeric - first_id + 1) * w) FILTER (WHERE type <> 'trade'), 0),
           sum(qty * w)
    FROM (SELECT time, symbol, type, id, first_id, last_id, qty,
                 CASE WHEN type = 'trade' THEN id ELSE first_id END AS tid_lo,
                 CASE WHEN type = 'trade' THEN id ELSE last_id END AS tid_hi,
                 coverage_weight(time) AS w
          FROM trades WHERE time >= start_at AND time < end_at) t
    GROUP BY 1, 2, 3;
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
    IF start_at = '-infinity' AND end_at = 'infinity' THEN
        UPDATE coverage_state SET dirty = false WHERE dirty;
    END IF;
    RETURN done;
END
$$;

SELECT rollup_rebuild();
