"""Versioned SQL migrations: ``python -m db.migrate``.

Rules:
  1. Migrations are the files ``db/store/migrations/NNN_name.sql``, applied in order of NNN.
  2. Each is applied in one transaction together with its row in ``schema_migrations``, so a
     migration is either wholly applied and recorded, or not at all.
  3. Applying is idempotent: recorded versions are skipped. Concurrent appliers serialise on
     an advisory lock.
  4. Objects are created unqualified, in the first schema of the connection's search_path
     (tests give each test its own schema this way).
  5. TimescaleDB comes first: a database without the extension gets it (CREATE EXTENSION, when
     the server has it and the role may); otherwise ``apply`` raises ``MigrationError`` with one
     line naming the database (host:port/dbname) and what to run. Nothing else is touched then.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from binance_pipeline.common.logs import configure
from binance_pipeline.common.settings import MigrateSettings, dsn_endpoint, load_stage, settings_epilog
from db.store.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_ADVISORY_LOCK = 0x62696E616E6365  # "binance"
_NAME_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations on disk, in order; a misnamed or duplicate-version file is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME_RE.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name!r} is not named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations with version {version}")
        found[version] = Migration(version, match.group(2), path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


_RUN = "CREATE EXTENSION timescaledb; in this database"
_PRELOAD = "shared_preload_libraries must include timescaledb, then restart PostgreSQL"


def ensure_timescaledb(conn: psycopg2.extensions.connection, where: str) -> None:
    """Rule 5: the extension exists afterwards, or MigrationError says what to do (autocommit conn)."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        if cur.fetchone():
            return
        cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        if not cur.fetchone():
            raise MigrationError(f"database {where}: TimescaleDB is not installed on this server; "
                                 f"install it ({_PRELOAD}), then run {_RUN}")
        try:
            cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        except psycopg2.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise MigrationError(f"database {where} has no timescaledb extension and this role cannot "
                                 f"create it ({exc.pgcode}: {first}); ask a superuser to run {_RUN} "
                                 f"({_PRELOAD})") from exc
    log.info("created the timescaledb extension in %s", where)


def apply(dsn: str, migrations: list[Migration] | None = None) -> list[int]:
    """Apply what is not yet applied; return the versions applied now."""
    todo = discover() if migrations is None else migrations
    applied_now: list[int] = []
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        ensure_timescaledb(conn, dsn_endpoint(dsn))
        conn.autocommit = False
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version int PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in cur.fetchall()}
            for migration in todo:
                if migration.version in done:
                    continue
                cur.execute(migration.sql)
                cur.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                applied_now.append(migration.version)
                log.info("applied migration %03d_%s", migration.version, migration.name)
    finally:
        conn.close()
    return applied_now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m db.migrate",
        description="Apply the database migrations (idempotent).",
        epilog=settings_epilog(stage=MigrateSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    settings = load_stage("db.migrate", MigrateSettings)
    configure(settings.log_level)
    dsn = settings.database_url.get_secret_value()
    try:
        versions = apply(dsn)
    except MigrationError as exc:
        sys.stderr.write(f"db.migrate: {exc}\n")
        return 1
    except psycopg2.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        sys.stderr.write(f"db.migrate: database {dsn_endpoint(dsn)}: {first}\n")
        return 1
    log.info("migrations applied now: %s", versions or "none (up to date)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
