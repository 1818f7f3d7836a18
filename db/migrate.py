"""Versioned SQL migrations: ``python -m db.migrate``.

Rules:
  1. Migrations are the files ``db/migrations/NNN_name.sql``, applied in order of NNN.
  2. Each is applied in one transaction together with its row in ``schema_migrations``, so a
     migration is either wholly applied and recorded, or not at all.
  3. Applying is idempotent: recorded versions are skipped. Concurrent appliers serialise on
     an advisory lock.
  4. Objects are created unqualified, in the first schema of the connection's search_path
     (tests give each test its own schema this way).
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from common.logs import configure
from common.settings import load_or_exit, settings_epilog

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


def apply(dsn: str, migrations: list[Migration] | None = None) -> list[int]:
    """Apply what is not yet applied; return the versions applied now."""
    todo = discover() if migrations is None else migrations
    applied_now: list[int] = []
    conn = psycopg2.connect(dsn)
    try:
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
        epilog=settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    settings = load_or_exit("db.migrate")
    configure(settings.log_level)
    versions = apply(settings.database_url.get_secret_value())
    log.info("migrations applied now: %s", versions or "none (up to date)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
