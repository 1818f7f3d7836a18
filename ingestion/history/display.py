"""Progress of an import: a redrawn bar on a terminal, plain lines otherwise.

The arithmetic is pure (``Progress`` takes the clock); ``Display`` only writes text.

Rules:
  1. Work is measured in units (one archive file, or one REST range), each reporting a
     fraction done in [0, 1] (bytes of the CSV read, or time covered); ETA = elapsed time /
     fraction done x fraction left.
  2. On a terminal the bar is redrawn in place at most 5 times a second; otherwise one plain
     line every ``plain_every`` seconds and one when a unit ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


@dataclass
class Progress:
    """Units done, the current unit's fraction, rows published (Rule 1)."""

    units: int
    started: float
    done: int = 0
    current: float = 0.0
    rows: int = 0
    label: str = ""

    def fraction(self) -> float:
        return 1.0 if self.units == 0 else min(1.0, (self.done + self.current) / self.units)

    def rate(self, now: float) -> float:
        return self.rows / max(now - self.started, 1e-6)

    def eta(self, now: float) -> float | None:
        frac = self.fraction()
        return None if frac <= 0 else (now - self.started) / frac * (1 - frac)

    def line(self, now: float, width: int = 30) -> str:
        """``[####---]  42.0%  1,234 rows  5,678 rows/s  ETA 00:12  label`` (no bar when width 0)."""
        frac, eta = self.fraction(), self.eta(now)
        filled = int(frac * width)
        bar = f"[{'#' * filled}{'-' * (width - filled)}] " if width else ""
        return (
            f"{bar}{frac * 100:5.1f}%  {self.rows:,} rows  {self.rate(now):,.0f} rows/s  "
            f"ETA {'?' if eta is None else _duration(eta)}  {self.label}"
        )


@dataclass
class Display:
    """Writes ``Progress`` to ``out`` (Rule 2)."""

    out: TextIO
    tty: bool
    plain_every: float = 5.0
    _last: float = field(default=-1e9)

    def show(self, progress: Progress, now: float, force: bool = False) -> None:
        if self.tty and (force or now - self._last >= 0.2):
            self.out.write("\r\x1b[2K" + progress.line(now))
            self.out.flush()
            self._last = now
        elif not self.tty and (force or now - self._last >= self.plain_every):
            self.out.write(progress.line(now, width=0) + "\n")
            self.out.flush()
            self._last = now

    def finish(self, progress: Progress, now: float) -> None:
        self.show(progress, now, force=True)
        if self.tty:
            self.out.write("\n")
