"""Events Kafka never took, folded into ranges so they can be recorded and repaired (pure).

An event is lost here when ``produce`` refused it (producer buffer full) or its delivery
failed for good. Trade and aggTrade losses are id ranges (repairable from REST); bookTicker
losses are time windows (recorded only).

Rules:
  1. Losses of one (symbol, stream, reason) extend the open range while ids are consecutive
     (any id for bookTicker); a non-consecutive id closes it and opens another.
  2. ``drain(now, quiet)`` returns every closed range and every open range not extended for
     ``quiet`` microseconds, each exactly once; every loss is in exactly one range.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class LostRange:
    symbol: str
    stream: str
    reason: str
    first_id: int | None
    last_id: int | None
    start_time: int
    end_time: int
    count: int
    touched: int  # when the range last grew (us): what ``drain``'s quiet period counts from


class LossTracker:
    """Open and closed ranges of lost events."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, str], LostRange] = {}
        self._closed: list[LostRange] = []
        self.total = 0

    def lost(
        self, symbol: str, stream: str, ident: int | None, at: int, reason: str, now: int
    ) -> None:
        """Record one event received at ``at`` and lost at ``now`` (``ident`` None: no ids)."""
        self.total += 1
        key = (symbol, stream, reason)
        cur = self._open.get(key)
        if cur is not None and _extends(cur, ident):
            cur.last_id = ident
            cur.start_time = min(cur.start_time, at)
            cur.end_time = max(cur.end_time, at)
            cur.count += 1
            cur.touched = now
            return
        if cur is not None:
            self._closed.append(cur)
        self._open[key] = LostRange(symbol, stream, reason, ident, ident, at, at, 1, now)

    def drain(self, now: int, quiet: int) -> list[LostRange]:
        """Ranges that are complete (Rule 2)."""
        done, self._closed = self._closed, []
        for key, cur in list(self._open.items()):
            if now - cur.touched >= quiet:
                done.append(cur)
                del self._open[key]
        return done

    def __bool__(self) -> bool:
        return bool(self._open or self._closed)


def _extends(cur: LostRange, ident: int | None) -> bool:
    if ident is None or cur.last_id is None:
        return ident is None and cur.last_id is None
    return ident == cur.last_id + 1
