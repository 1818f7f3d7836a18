-- 001: the tape. Hypertables with 1-day chunks; unique keys that make every replay idempotent.
-- Prices and quantities are unconstrained NUMERIC: they keep the exchange's decimal text digit
-- for digit (scale included), with CHECKs that reject nonsense instead of rounding it.

CREATE TABLE IF NOT EXISTS trades (
    time         timestamptz NOT NULL,            -- exchange trade time (T), UTC, microseconds
    symbol       text        NOT NULL,
    type         text        NOT NULL CHECK (type IN ('trade', 'aggTrade')),
    id           bigint      NOT NULL,            -- trade id (t), or aggregate id (a)
    first_id     bigint,                          -- aggTrade: first trade id (f)
    last_id      bigint,                          -- aggTrade: last trade id (l)
    price        numeric     NOT NULL CONSTRAINT trades_price_range CHECK (price >= 0 AND price < 1e20),
    qty          numeric     NOT NULL CONSTRAINT trades_qty_range CHECK (qty >= 0 AND qty < 1e20),
    buyer_maker  boolean     NOT NULL,
    best_match   boolean,
    event_time   timestamptz,                     -- exchange event time (E); NULL when backfilled
    received_at  timestamptz NOT NULL,            -- when ingestion received it
    source       text        NOT NULL DEFAULT 'stream' CHECK (source IN ('stream', 'rest')),
    CONSTRAINT trades_uniq UNIQUE (symbol, type, id, time)
);
SELECT create_hypertable('trades', by_range('time', INTERVAL '1 day'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS trades_symbol_type_time_idx ON trades (symbol, type, time DESC);

CREATE TABLE IF NOT EXISTS book_ticker (
    time         timestamptz NOT NULL,            -- receipt time (spot bookTicker has no E/T)
    symbol       text        NOT NULL,
    update_id    bigint      NOT NULL,            -- u
    bid_price    numeric     NOT NULL CHECK (bid_price >= 0 AND bid_price < 1e20),
    bid_qty      numeric     NOT NULL CHECK (bid_qty >= 0 AND bid_qty < 1e20),
    ask_price    numeric     NOT NULL CHECK (ask_price >= 0 AND ask_price < 1e20),
    ask_qty      numeric     NOT NULL CHECK (ask_qty >= 0 AND ask_qty < 1e20),
    CONSTRAINT book_ticker_uniq UNIQUE (symbol, update_id, time)
);
SELECT create_hypertable('book_ticker', by_range('time', INTERVAL '1 day'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS book_ticker_symbol_time_idx ON book_ticker (symbol, time DESC);

-- Gaps are state, not a tape: one row per gap, upserted as it moves from open to repaired.
CREATE TABLE IF NOT EXISTS gaps (
    gap_id       text        PRIMARY KEY,
    symbol       text        NOT NULL,
    stream       text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('ids', 'time')),
    first_id     bigint,
    last_id      bigint,
    start_time   timestamptz,
    end_time     timestamptz,
    missing      bigint,
    reason       text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('open', 'repaired', 'unrepairable')),
    detected_at  timestamptz NOT NULL,
    repaired_at  timestamptz
);
CREATE INDEX IF NOT EXISTS gaps_symbol_detected_idx ON gaps (symbol, detected_at DESC);
