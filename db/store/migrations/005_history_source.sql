-- 005: rows imported from Binance's daily archives (ingestion.history) carry source 'archive'.
-- (Numbered 005 because branches in flight add 003 and 004.)
ALTER TABLE trades DROP CONSTRAINT IF EXISTS trades_source_check;
ALTER TABLE trades ADD CONSTRAINT trades_source_check CHECK (source IN ('stream', 'rest', 'archive'));
