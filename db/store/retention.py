"""Retention of the hypertables: ``python -m db.maintenance`` (the worker also runs it).

Rules:
  1. RETENTION_DAYS = 0 keeps everything (and removes a retention policy left by an earlier
     setting). N > 0 drops chunks whose data is entirely older than N days.
  2. Timescale license: retention is a TimescaleDB policy (a background job), reconciled on
     every run: remove the policy, then add it with the configured age.
  3. Apache license (no policies): ``drop_chunks(older_than => now() - N days)`` on each
     hypertable, run now; the worker repeats it every RETENTION_INTERVAL_S.
  4. ``plan`` is pure (license, days -> statements), so both paths are tested; values are
     bound as parameters, table names resolve through the search_path as ``regclass``.
  5. The 1-minute rollups (migration 003) follow their raw rows: every run with N > 0 ends with
     ``trim_rollups``, deleting the rollup minutes older than the oldest raw row left (all of
     them when none is left; hours likewise), so rollup answers equal raw answers after chunks
     are dropped (whole days), by either path (under a policy: at the next run after it).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions

from binance_pipeline.common.logs import configure
from binance_pipeline.common.settings import MaintenanceSettings, load_stage, settings_epilog

log = logging.getLogger(__name__)

HYPERTABLES = ("trades", "book_ticker")
TSL_LICENSE = "timescale"
_AGE = "make_interval(days => %s)"
REMOVE_POLICY = "SELECT remove_retention_policy(%s::regclass, if_exists => true)"
ADD_POLICY = f"SELECT add_retention_policy(%s::regclass, drop_after => {_AGE})"
DROP_CHUNKS = f"SELECT drop_chunks(%s::regclass, older_than => now() - {_AGE})"
ROLLUPS = {  # rollup -> (raw table, its bucket)
    "trades_1m": ("trades", "1 minute"), "trades_1h": ("trades", "1 hour"),
    "trades_cov_1m": ("trades", "1 minute"),  # the audit's coverage (migration 006)
    "book_ticker_1m": ("book_ticker", "1 minute"), "book_ticker_1h": ("book_ticker", "1 hour"),
}
TRIM_ROLLUP = {
    rollup: f"DELETE FROM {rollup} WHERE bucket < coalesce("  # noqa: S608 (constant names)
    f"(SELECT time_bucket(INTERVAL '{width}', min(time)) FROM {table}), 'infinity')"
    for rollup, (table, width) in ROLLUPS.items()
}


@dataclass(frozen=True)
class Step:
    table: str
    sql: str
    params: tuple[object, ...]


def plan(license_name: str, days: int, tables: tuple[str, ...] = HYPERTABLES) -> list[Step]:
    """The statements that apply ``days`` of retention under ``license_name`` (Rules 1-3)."""
    steps: list[Step] = []
    for table in tables:
        if license_name == TSL_LICENSE:
            steps.append(Step(table, REMOVE_POLICY, (table,)))
            if days > 0:
                steps.append(Step(table, ADD_POLICY, (table, days)))
        elif days > 0:
            steps.append(Step(table, DROP_CHUNKS, (table, days)))
    return steps


def apply_retention(dsn: str, days: int) -> dict[str, int]:
    """Run the plan for this database's license; returns chunks dropped per table."""
    results: dict[str, int] = {}
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SHOW timescaledb.license")
            row = cur.fetchone()
            license_name = str(row[0]) if row else ""
            for step in plan(license_name, days):
                cur.execute(step.sql, step.params)
                returned = cur.fetchall()
                if step.sql == DROP_CHUNKS:
                    results[step.table] = results.get(step.table, 0) + len(returned)
            if days > 0:
                trim_rollups(cur)
        log.info("retention (%s license, %d days): %s", license_name, days, results or "nothing to do")
    finally:
        conn.close()
    return results


def trim_rollups(cur: psycopg2.extensions.cursor) -> dict[str, int]:
    """Rule 5: delete rollup minutes older than the oldest raw row; returns minutes deleted."""
    deleted = {}
    for rollup, statement in TRIM_ROLLUP.items():
        cur.execute(statement)
        deleted[rollup] = cur.rowcount
    log.info("rollup minutes trimmed: %s", deleted)
    return deleted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m db.maintenance",
        description="Apply RETENTION_DAYS: a retention policy (Timescale license) or drop_chunks now "
        "(Apache license).",
        epilog=settings_epilog(stage=MaintenanceSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    settings = load_stage("db.maintenance", MaintenanceSettings)
    configure(settings.log_level)
    apply_retention(settings.database_url.get_secret_value(), settings.retention_days)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
