"""What the worker's /readyz says about the broker and the poll loop: pure functions of times.

Rules:
  1. The broker is unreachable when it has answered nothing for BROKER_SILENCE_S: the topic-id
     requests (kafka/topic_ids.py ``TopicIds``) go out every 2 s with a 5 s time-out, so a broker that
     answers is heard from every ~2 s; a paused, partitioned or dead one turns readiness off within
     BROKER_SILENCE_S + 2 s, and the reason names its address.
  2. The poll loop is stalled when it has not turned for LOOP_STALL_S (its longest bounded waits,
     a revocation's flush and a consumer's close, stay below that).
  3. Nothing here does I/O or reads a clock: the caller passes ``now`` (monotonic seconds).
"""

from __future__ import annotations

BROKER_SILENCE_S = 6.0
LOOP_STALL_S = 10.0


def broker_reason(servers: str, answered_at: float, last_error: str, now: float) -> str | None:
    """None while the broker answers; else why not, naming it (Rule 1)."""
    silent = now - answered_at
    if silent <= BROKER_SILENCE_S:
        return None
    why = f": {last_error}" if last_error else ""
    return f"kafka broker {servers} unreachable: no answer for {silent:.0f} s{why}"


def loop_reason(turned_at: float | None, now: float) -> str | None:
    """None while the poll loop turns (or has not started); else for how long it has not (Rule 2)."""
    if turned_at is None or now - turned_at <= LOOP_STALL_S:
        return None
    return f"poll loop stalled for {now - turned_at:.0f} s"
