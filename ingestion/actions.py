"""What ``Flow`` asks its shell to do (pure values, no behaviour).

``Flow`` never performs I/O: each call queues actions, and the shell (``ingestion.effects``)
takes them with ``Flow.take_actions()`` and executes them in order.

Rules:
  1. Actions are executed in the order they were queued: a gap's "open" record is published
     before its backfill job starts, an event before the one after it.
  2. An action carries everything its execution needs; the shell decides nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from binance_pipeline.common.events import BookTickerMessage, GapMessage, TradeMessage
from ingestion.models import ControlReply

Event = TradeMessage | BookTickerMessage
Key = tuple[str, str]  # (type, symbol)
OnAck = Callable[[bool], None]  # told once per message: True when Kafka acknowledged it
Row = tuple[TradeMessage, OnAck]  # a backfill row (REST) and what its acknowledgement is told


@dataclass(slots=True)
class PublishEvent:
    """Send one event to its topic. One is made per event: not frozen, whose ``__init__`` costs
    twice as much (nothing changes an action once queued all the same)."""

    msg: Event


@dataclass(frozen=True, slots=True)
class PublishGap:
    """Send a gap record; ``counts`` names the metric it moves (detected / resolved gaps, or
    both for a gap that is detected already settled, such as an unrepairable restart gap)."""

    record: GapMessage
    counts: Literal["detected", "resolved", "settled"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Send a rejected frame, unchanged, to the dead-letter topic with ``reason``."""

    conn_id: str
    raw: bytes
    reason: str
    received_at: int
    key: Key  # (type, symbol) when known, for the rejected-events metric


@dataclass(frozen=True, slots=True)
class Backfill:
    """Repair the open id gap ``record`` from REST."""

    record: GapMessage


@dataclass(frozen=True, slots=True)
class VerifyJump:
    """Ask REST whether id ``ident`` of (``stream``, ``symbol``) exists; answer ``Flow.jump_checked``."""

    token: int
    symbol: str
    stream: str
    ident: int


@dataclass(frozen=True, slots=True)
class AskLatest:
    """Ask REST for the latest id of (``stream``, ``symbol``); answer ``Flow.latest_known``."""

    symbol: str
    stream: str


@dataclass(frozen=True, slots=True)
class Reply:
    """Hand a control reply to the request of connection ``conn_id`` that waits for it."""

    conn_id: str
    reply: ControlReply


Action = PublishEvent | PublishGap | DeadLetter | Backfill | VerifyJump | AskLatest | Reply
