"""The wall clock, read in one place: UTC microseconds since the epoch.

Rule: pure modules never call this; they take ``now`` as an argument. Only the I/O shells
(connections, the writer, the backfiller) read the clock, through this function.
"""

from __future__ import annotations

import time


def now_us() -> int:
    """Microseconds since the Unix epoch (UTC), the unit of every ``*_at`` field of an event."""
    return time.time_ns() // 1000
