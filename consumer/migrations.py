"""The worker's wait for the database at start: apply the migrations once it answers.

Rules:
  1. An unreachable database (a TRANSIENT disposition, errors.classify) is waited for with
     jittered backoff; any other failure is fatal (FatalDatabaseError, exit 1).
  2. A stop request ends the wait promptly; nothing has been consumed yet, so nothing is lost.
  3. A database that cannot be migrated as it is (db.errors.MigrationError: TimescaleDB missing
     and not creatable) is fatal too, its one-line message kept as the reason.
"""

from __future__ import annotations

import logging
import threading

import psycopg2

import db.store.migrate
from binance_pipeline.common.backoff import Backoff
from consumer.errors import Disposition, FatalDatabaseError, classify, describe
from db.store.errors import MigrationError

log = logging.getLogger(__name__)


def migrate_when_reachable(dsn: str, stop: threading.Event) -> bool:
    """Apply migrations, waiting for the database while it is unreachable; False if stopped."""
    backoff = Backoff(0.5, 10.0)
    while not stop.is_set():
        try:
            db.store.migrate.apply(dsn)
        except MigrationError as exc:
            raise FatalDatabaseError(f"migrations failed: {exc}") from exc
        except psycopg2.Error as exc:
            if classify(exc) is not Disposition.TRANSIENT:
                raise FatalDatabaseError(f"migrations failed: {describe(exc)}") from exc
            delay = backoff.next_delay()
            log.warning("database unreachable for migrations (%s); retry in %.1f s", describe(exc), delay)
            stop.wait(delay)
        else:
            return True
    return False
