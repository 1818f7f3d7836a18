-- 003: what the audit (python -m db.query audit) and "gaps by the data's time" need.
--

-- The time span of the data a gap covers (the times of the missing events), as opposed to
-- detected_at (when it was noticed). A time gap's span is its start_time..end_time. An id
-- gap's span is filled by refresh_gap_spans() once the rows around it are in the database:
-- the time of the first and last missing ids when those rows arrived (repaired), else the
-- times of the neighbouring rows, which bound the missing events. span_settled says no later
-- row can change the span any more. recorded_at is when the database first stored the gap (its
-- own clock, unlike detected_at), which bounds how long an unsettled span is looked at.
ALTER TABLE gaps ADD COLUMN IF NOT EXISTS data_start timestamptz;
ALTER TABLE gaps ADD COLUMN IF NOT EXISTS data_end timestamptz;
ALTER TABLE gaps ADD COLUMN IF NOT EXISTS span_settled boolean NOT NULL DEFAULT false;
ALTER TABLE gaps ADD COLUMN IF NOT EXISTS recorded_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS gaps_symbol_data_idx ON gaps (symbol, data_start, data_end);
CREATE INDEX IF NOT EXISTS gaps_unsettled_idx ON gaps (recorded_at) WHERE NOT span_settled;
CREATE INDEX IF NOT EXISTS gaps_symbol_stream_ids_idx ON gaps (symbol, stream, first_id)
    WHERE kind = 'ids';

-- One row's time by id (or the nearest before/after it) within one stream.
CREATE OR REPLACE FUNCTION gap_row_time(p_symbol text, p_type text, p_id bigint)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT time FROM trades WHERE symbol = p_symbol AND type = p_type AND id = p_id
    ORDER BY time LIMIT 1
$$;
CREATE OR REPLACE FUNCTION gap_time_before(p_symbol text, p_type text, p_id bigint)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT time FROM trades WHERE symbol = p_symbol AND type = p_type AND id < p_id
    ORDER BY id DESC LIMIT 1
$$;
CREATE OR REPLACE FUNCTION gap_time_after(p_symbol text, p_type text, p_id bigint)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT time FROM trades WHERE symbol = p_symbol AND type = p_type AND id > p_id
    ORDER BY id LIMIT 1
$$;

-- Fill data_start/data_end of the gaps whose span is not settled yet (first stored in the last
-- 7 days: the topics' default retention, after which no row of theirs can still arrive).
-- Returns how many rows changed. The worker calls it after every write of trades or gaps.
CREATE OR REPLACE FUNCTION refresh_gap_spans() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    WITH todo AS (
        SELECT g.gap_id, g.kind, g.status, g.start_time, g.end_time,
               gap_row_time(g.symbol, g.stream, g.first_id) AS first_t,
               gap_row_time(g.symbol, g.stream, g.last_id) AS last_t,
               gap_time_before(g.symbol, g.stream, g.first_id) AS before_t,
               gap_time_after(g.symbol, g.stream, g.last_id) AS after_t
        FROM gaps g
        WHERE NOT g.span_settled AND g.recorded_at > now() - interval '7 days'
    ), spans AS (
        SELECT gap_id,
               CASE WHEN kind = 'time' THEN start_time
                    ELSE coalesce(start_time, first_t, before_t) END AS s,
               CASE WHEN kind = 'time' THEN end_time
                    ELSE coalesce(end_time, last_t, after_t) END AS e,
               CASE WHEN kind = 'time' THEN status <> 'open'
                    WHEN status = 'repaired' THEN (first_t IS NOT NULL AND last_t IS NOT NULL)
                         OR (start_time IS NOT NULL AND end_time IS NOT NULL)
                    WHEN status = 'unrepairable' THEN coalesce(start_time, first_t, before_t) IS NOT NULL
                         AND coalesce(end_time, last_t, after_t) IS NOT NULL
                    ELSE false END AS settled
        FROM todo
    )
    UPDATE gaps g SET data_start = spans.s, data_end = spans.e, span_settled = spans.settled
    FROM spans
    WHERE g.gap_id = spans.gap_id
      AND (g.data_start IS DISTINCT FROM spans.s OR g.data_end IS DISTINCT FROM spans.e
           OR g.span_settled IS DISTINCT FROM spans.settled);
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END
$$;
