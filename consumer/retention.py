"""The retention schedule: RETENTION_DAYS applied at start, then every RETENTION_INTERVAL_S.

Rules:
  1. A failed run is logged and retried at the next interval; it never stops the worker.
  2. RETENTION_DAYS=0 keeps everything: the schedule runs once (removing a policy left by an
     earlier setting, db/maintenance.py Rule 1) and ends.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg2

from binance_pipeline.common.settings import WorkerSettings
from consumer.errors import describe
from db.store.retention import apply_retention

log = logging.getLogger(__name__)


async def retention_schedule(settings: WorkerSettings) -> None:
    """Apply RETENTION_DAYS at start, then every RETENTION_INTERVAL_S while it is > 0."""
    dsn = settings.database_url.get_secret_value()
    while True:
        try:
            await asyncio.to_thread(apply_retention, dsn, settings.retention_days)
        except psycopg2.Error as exc:
            log.warning("retention run failed (will retry): %s", describe(exc))
        if settings.retention_days == 0:
            return
        await asyncio.sleep(settings.retention_interval_s)
