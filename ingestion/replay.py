"""What ingestion sends again when the broker lost a topic's log (delivery Rule 5), decided
without Kafka: the delivery core keeps the window, this module says what of it goes out again.

Rules:
  1. The window holds ``(stamp, message)`` pairs in the order the messages were handed to the
     producer (``stamp``: monotonic seconds). A message is ``(topic, key, value, timestamp ms,
     headers)``.
  2. Sent again: the messages of the changed topics stamped before ``cut`` (the moment this
     process recreated the topics; +inf when something else did, so all of them).
  3. Each once: a message sent twice (a failed delivery sent again) is one message, by (value,
     timestamp, headers): two dead letters of the same bad bytes differ by their headers (the
     time each frame was received); and one already waiting in ``pending`` or sent again at or
     after ``cut`` (so on the new log) is not sent from the window.
  4. Kept in the window, in order: the other topics' messages and those stamped at or after
     ``cut``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

Headers = list[tuple[str, str | bytes | None]]
Pending = tuple[str, str | None, bytes, int, Headers | None]  # topic, key, value, timestamp ms, headers
Stamped = tuple[float, Pending]
Identity = tuple[bytes, int, tuple[tuple[str, str | bytes | None], ...] | None]


def identity(item: Pending) -> Identity:
    """What makes two messages the same message (Rule 3)."""
    return item[2], item[3], tuple(item[4]) if item[4] else None


def plan_replay(window: Iterable[Stamped], pending: Iterable[Pending], changed: Collection[str],
                cut: float) -> tuple[list[Pending], list[Stamped]]:
    """(what to send again, what stays in the window): Rules 2-4."""
    window = list(window)
    seen = {identity(item) for stamp, item in window if stamp >= cut}
    seen |= {identity(item) for item in pending}
    again: list[Pending] = []
    kept: list[Stamped] = []
    for stamp, item in window:
        if item[0] not in changed or stamp >= cut:
            kept.append((stamp, item))
        elif (key := identity(item)) not in seen:
            seen.add(key)
            again.append(item)
    return again, kept
