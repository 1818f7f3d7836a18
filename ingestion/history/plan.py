"""What an import has to do, given what earlier runs finished (pure).

Rules:
  1. Whole UTC days before today come from the daily archive, oldest first; a day recorded as
     done in the progress topic is never fetched again.
  2. From the first day the archive does not have (404: not published yet, typically
     yesterday and today) to the end of the range, rows come from REST by ``fromId``,
     starting right after the last archived id; ``[start_us, end_us)`` bounds their time.
  3. Progress keys: ``SYM/stream/YYYY-MM-DD`` for a finished archive day and ``SYM/stream/rest``
     for the REST cursor (``from_id``..``last_id`` published without a hole).
  4. ``decode_progress`` takes any key and value bytes: it returns a record only with the integer
     fields its key's kind is read for, else raises ValueError; nothing else escapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson

from binance_pipeline.common.utc import day_start_us

DAY_US = 86_400_000_000


def days(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last`` inclusive."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def day_key(symbol: str, stream: str, day: date) -> str:
    return f"{symbol}/{stream}/{day.isoformat()}"


def rest_key(symbol: str, stream: str) -> str:
    return f"{symbol}/{stream}/rest"


PROGRESS_FIELDS = {"day": ("first_id", "last_id", "rows"), "rest": ("from_id", "last_id")}


def decode_progress(key: bytes, value: bytes) -> tuple[str, dict[str, Any]]:
    """One progress record as (key, record) (Rule 4); ValueError saying why it is not one."""
    try:
        text, record = key.decode(), orjson.loads(value)
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"not a progress record: {exc}") from exc
    fields = PROGRESS_FIELDS["rest" if text.endswith("/rest") else "day"]
    if not isinstance(record, dict) or not all(type(record.get(f)) is int for f in fields):
        raise ValueError(f"not a progress record: {', '.join(fields)} must be integers")
    return text, record


@dataclass(frozen=True)
class DayTask:
    """Import one archive file."""

    symbol: str
    stream: str
    day: date


@dataclass(frozen=True)
class RestTask:
    """Import ``symbol``'s ``stream`` from REST: ids from ``from_id`` (or the first at
    ``start_us`` when None) with trade time in ``[start_us, end_us)``."""

    symbol: str
    stream: str
    from_id: int | None
    start_us: int
    end_us: int


def archive_days(first: date, last: date, today: date) -> list[date]:
    """Rule 1: the days of the range that can be archived (before today; none when ``first`` is not)."""
    return days(first, min(last, today - timedelta(days=1)))


def rest_task(
    symbol: str, stream: str, first_rest_day: date, last: date, now_us: int,
    last_archived_id: int | None, cursor: dict[str, Any] | None,
) -> RestTask | None:
    """Rule 2, resumed from the REST cursor when it covers our starting id (Rule 3)."""
    start_us = day_start_us(first_rest_day)
    end_us = min(day_start_us(last) + DAY_US, now_us)
    if start_us >= end_us:
        return None
    from_id = None if last_archived_id is None else last_archived_id + 1
    if cursor is not None and from_id is not None and cursor["from_id"] <= from_id <= cursor["last_id"]:
        from_id = cursor["last_id"] + 1
    return RestTask(symbol, stream, from_id, start_us, end_us)
