-- 002: storage policies, by license.
--
-- Timescale (community) license: native compression of chunks older than 7 days (the Kafka
-- topics' default retention, so a replay from Kafka lands in uncompressed chunks; later
-- inserts into compressed chunks still work and still honour the unique keys). The compression
-- settings keep every unique-key column in segmentby/orderby, as TimescaleDB requires.
-- Retention (RETENTION_DAYS) is applied as a policy by db/maintenance.py, not here: a
-- migration cannot read a setting, and changing RETENTION_DAYS must not need a new migration.
--
-- Apache license (the local build): compression and policies do not exist there. Nothing is
-- created; retention falls back to drop_chunks run on a schedule by the worker (every
-- RETENTION_INTERVAL_S) or by `python -m db.maintenance`, both driven by RETENTION_DAYS.
--
-- PL/pgSQL plans each statement when it first runs, so the TSL-only calls below are never
-- even looked up on an Apache build.
DO $$
BEGIN
    IF current_setting('timescaledb.license', true) = 'timescale' THEN
        ALTER TABLE trades SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'symbol, type',
            timescaledb.compress_orderby = 'time DESC, id DESC'
        );
        PERFORM add_compression_policy('trades', INTERVAL '7 days', if_not_exists => TRUE);
        ALTER TABLE book_ticker SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'symbol',
            timescaledb.compress_orderby = 'time DESC, update_id DESC'
        );
        PERFORM add_compression_policy('book_ticker', INTERVAL '7 days', if_not_exists => TRUE);
    ELSE
        RAISE NOTICE 'TimescaleDB license is %: no compression; retention by scheduled drop_chunks',
            coalesce(current_setting('timescaledb.license', true), 'unknown');
    END IF;
END
$$;
