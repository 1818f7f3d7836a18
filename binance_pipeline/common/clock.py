"""The clocks, read in one place: wall time in UTC microseconds, monotonic time in microseconds.

Rule: pure modules never call these; they take ``now`` as an argument. Only the I/O shells
(connections, the writer, the backfiller, the frontier writer) read a clock, through these.
Converting an instant to and from a datetime is ``utc`` (pure).
"""

from __future__ import annotations

import time


def now_us() -> int:
    """Microseconds since the Unix epoch (UTC), the unit of every ``*_at`` field of an event."""
    return time.time_ns() // 1000


def mono_us() -> int:
    """Monotonic microseconds (for intervals; unrelated to the wall clock)."""
    return time.monotonic_ns() // 1000
