"""UTC instants as integer microseconds since the Unix epoch, and back (pure: no clock is read).

Every ``*_at`` / ``*_time`` field of an event is such an integer; these conversions are exact
(integer ``timedelta`` arithmetic, never a float). Reading the clock is ``clock.now_us``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def at_us(us: int) -> datetime:
    """The aware UTC datetime ``us`` microseconds after the epoch."""
    return EPOCH + timedelta(microseconds=us)


def us_of(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (any zone)."""
    return (moment - EPOCH) // _ONE_US


def day_start_us(day: date) -> int:
    """Microseconds since the epoch at 00:00 UTC of ``day``."""
    return us_of(datetime(day.year, day.month, day.day, tzinfo=UTC))
