"""Seeded fault schedules for the chaos test (pure: a seed in, a list of faults out).

Rules:
  1. The same seed always gives the same schedule (``random.Random(seed)``, nothing else read).
  2. A schedule is ``FAULTS_PER_SCHEDULE`` faults of distinct kinds drawn from ``KINDS`` (the class
     of faults the pipeline must survive: each stage killed, the broker killed, frozen and replaced
     empty, the database stopped, junk on every topic, REST unreachable), one after the other, each
     over before the next starts, with a pause of ``PAUSE_S`` between them.
  3. ``duration_s`` is how long the fault lasts (a process stays dead, the broker stays frozen, the
     database stays down, REST stays unreachable); junk has none.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

KINDS = (
    "ingestion_sigkill", "ingestion_sigterm", "worker_sigkill",
    "broker_sigkill", "broker_sigstop", "broker_empty",
    "postgres_stopped", "junk_on_every_topic", "rest_unreachable",
)  # fmt: skip
FAULTS_PER_SCHEDULE = 3
PAUSE_S = (2.0, 5.0)
DURATION_S = {
    "ingestion_sigkill": (1.0, 4.0), "ingestion_sigterm": (1.0, 4.0), "worker_sigkill": (1.0, 4.0),
    "broker_sigkill": (1.0, 3.0), "broker_sigstop": (3.0, 12.0), "broker_empty": (0.0, 0.0),
    "postgres_stopped": (3.0, 10.0), "junk_on_every_topic": (0.0, 0.0), "rest_unreachable": (4.0, 12.0),
}  # fmt: skip


@dataclass(frozen=True)
class Fault:
    kind: str
    pause_s: float  # wait before it starts
    duration_s: float

    def __str__(self) -> str:
        return f"{self.kind} after {self.pause_s:.1f} s for {self.duration_s:.1f} s"


def schedule(seed: int, faults: int = FAULTS_PER_SCHEDULE) -> list[Fault]:
    """Rule 1-3: the schedule of ``seed``."""
    rng = random.Random(seed)
    kinds = rng.sample(KINDS, faults)
    return [Fault(kind, round(rng.uniform(*PAUSE_S), 1), round(rng.uniform(*DURATION_S[kind]), 1))
            for kind in kinds]


def seeds(text: str) -> list[int]:
    """``CHAOS_SEEDS`` (``make chaos SEEDS=...``): a count ``N`` (seeds 1 to N), a range ``A-B``, or
    seeds separated by commas (``4,9``; one seed alone: ``9,``)."""
    if text.strip().isdigit():
        return list(range(1, int(text) + 1))
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out
