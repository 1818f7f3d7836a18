"""Ingestion's delivery core: every decision about a message once it is handed to Kafka, made
without Kafka (sans-I/O, like ``flow.py`` for frames). ``ingestion.publisher`` executes it.

Inputs: produce refusals, delivery reports (acknowledged, or failed with a ``kafka.codes.Kind``),
client errors, the topics' ids, the topics created again, the clock (``now``: monotonic seconds,
always passed in). Outputs: what to send (``pending``), what to keep for a replay (``window``),
the verdict on each failed message, reports for the rest of ingestion (``take_reports``: an
event lost, a gap record queued or acknowledged), when to retire the producer, when to recreate
the topics, and readiness.

Rules:
  1. Nothing is lost silently. An event the producer refuses, or whose delivery fails, is
     reported ``Lost`` (the flow records and repairs it); a gap record is never dropped: refused
     or failed ones wait in ``pending`` and are sent again in order.
  2. A failed delivery's fate is one table, ``OUTCOMES``: the failure's kind against the
     message's role (event, gap record, dead letter) gives ``RESEND`` (queued again, in order),
     ``HOLD`` (kept until the topic is back; past PRODUCER_BUFFER_MAX_MESSAGES held, lost),
     ``LOST`` or ``DROP`` (a dead letter: counted and logged); ``AGAIN`` for a message of a
     retired producer (purged, or failed with its fatal error): the new one sends it, once (Rule 6).
  3. Readiness is off while the broker does not acknowledge queued messages, or answers none of
     the topic-id requests (a quiet feed queues nothing to acknowledge) for UNANSWERED_S, after a
     delivery failure or a refused produce (for ``stall_s``), when all brokers are down, and
     while the topics are missing or not created yet.
  4. Topics that vanish (a non-durable broker restarted empty, a new cluster on the same address)
     are found by a produce refused or a delivery failed because the topic or partition is
     unknown, or the broker's metadata lacking a topic while acknowledgements stall. Then the
     topics are *lost*: readiness off, nothing produced (events, gap records and dead letters
     are held in ``pending``), the executor creates them again and says ``topics_created``.
  5. What the broker acknowledged, it can still lose. Every message sent is kept in ``window``
     (``window_s``, at most ``window_max``). A topic whose id changed is a new, empty log: the
     window's messages of that topic are sent again, each once (``ingestion.replay``). Exactly
     those that may have reached the old log go again: when this process finds its topics
     missing it retires its producer at once (the *cut*; its unsent messages come back purged,
     Rule 6); when another client recreated them first, the cut is when all brokers were last
     seen down (else the whole window), and the producer is retired when the new ids are seen.
     Messages leave the window only once older than ``window_s`` at a check that found every
     topic's id unchanged, so an outage of any length keeps them.
  6. Retiring a producer: its messages are purged and each comes back once (as the window kept
     it, with its headers and timestamp; rebuilt from the report when evicted), except those
     the replay sends already.
  7. A fatal producer error replaces the producer at most FATAL_RENEWALS times per
     FATAL_WINDOW_S; past that the error is final (``fatal``) and ingestion exits.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import orjson

from binance_pipeline.common.events import GapMessage
from binance_pipeline.kafka.codes import Kind
from ingestion.replay import Pending, plan_replay
from ingestion.window import ReplayWindow

Role = Literal["event", "gap", "dead_letter"]
UNANSWERED_S = 6.0  # Rule 3: the topic-id requests unanswered this long: broker away
FATAL_RENEWALS, FATAL_WINDOW_S = 5, 60.0  # Rule 7


class Verdict(Enum):
    AGAIN = "again"  # a retired producer's message: the new producer sends it (Rule 6)
    RESEND = "resend"
    HOLD = "hold"
    LOST = "lost"
    DROP = "drop"


A, R, H, L, D = Verdict.AGAIN, Verdict.RESEND, Verdict.HOLD, Verdict.LOST, Verdict.DROP
# Rule 2: a failed delivery's kind -> (an event's, a gap record's, a dead letter's) verdict
OUTCOMES: dict[Kind, tuple[Verdict, Verdict, Verdict]] = {
    Kind.PRODUCER_LOST: (A, A, A),  # purged from a retired producer (Rule 6)
    Kind.FATAL: (A, A, A),  # the producer is replaced (Rule 7)
    Kind.TOPIC_MISSING: (H, R, R),  # the topics are lost (Rule 4)
    Kind.PARTITION_MISSING: (H, R, R),
}
OTHERWISE = (L, R, D)
ROLE_COLUMN: dict[Role, int] = {"event": 0, "gap": 1, "dead_letter": 2}
MISSING = (Kind.TOPIC_MISSING, Kind.PARTITION_MISSING)


def verdict(kind: Kind, role: Role) -> Verdict:
    """Rule 2: the fate of a message of ``role`` whose delivery failed with ``kind``."""
    return OUTCOMES.get(kind, OTHERWISE)[ROLE_COLUMN[role]]


@dataclass(frozen=True)
class Lost:
    """An event Kafka did not take: the flow records it and repairs it (Rule 1)."""

    symbol: str
    kind: str
    ident: int | None
    received_at: int
    reason: str


@dataclass(frozen=True)
class GapQueued:
    record: GapMessage


@dataclass(frozen=True)
class GapAcked:
    record: GapMessage


Report = Lost | GapQueued | GapAcked


@dataclass(frozen=True)
class Limits:
    hold_max: int  # events held while the topics are missing (PRODUCER_BUFFER_MAX_MESSAGES)
    stall_s: float  # PRODUCER_ACK_STALL_S (Rule 3)
    window_s: float  # INGESTION_REPLAY_WINDOW_S (Rule 5)
    window_max: int  # INGESTION_REPLAY_MAX_MESSAGES


def lost_of(value: bytes, reason: str) -> Lost:
    """The ``Lost`` report of an encoded event."""
    event = orjson.loads(value)  # a bookTicker has no "id" (its ``update_id`` is not an event id)
    return Lost(event["symbol"], event["type"], event.get("id"), event["received_at"], reason)


class DeliveryCore:
    """The Kafka side's whole state; methods take inputs and leave decisions for the executor."""

    lost_because: str  # why the topics were last found lost (set with ``losses``)

    def __init__(self, roles: dict[str, Role], limits: Limits, now: float) -> None:
        self.roles, self.topics, self.limits = roles, list(roles), limits
        self.pending: deque[Pending] = deque()
        self.window = ReplayWindow(limits.window_max)
        self.reports: deque[Report] = deque()
        self.now = now  # the executor's last serve: what the window stamps messages with
        self.topics_ready = self.ever_lost = False
        self.topic_error: str | None = None
        self.losses = 0  # Rule 4: how many times the topics were found lost (the executor watches it)
        self.retire_due = False
        self.fatal: str | None = None
        self.fatal_seen: str | None = None  # Rule 7: replace the producer at the next serve
        self._renewals: deque[float] = deque(maxlen=FATAL_RENEWALS)
        self.cut: float | None = None  # Rule 5: when the producer of a lost log was retired
        self.down_at: float | None = None  # Rule 5: when all brokers were last seen down
        self.confirmed_at = 0.0  # when every topic last had its known id
        self.known_ids: dict[str, str] = {}
        self._resending: Counter[bytes] | None = None  # Rule 6: values the replay sends already
        self._sent: dict[bytes, deque[Pending]] = {}  # Rule 6: while retiring, the window by value
        self.acks = [0]  # acknowledgements of any message, ever (counted by the executor's callbacks)
        self._acks_seen = 0
        self.last_ack = self.last_empty = now
        self.last_trouble: tuple[float, str] | None = None
        self.brokers_down = False
        self.failures = 0
        self._last_log = float("-inf")
        self.refusal = "producer_overflow"  # why the last refused offer was refused

    # ----------------------------------------------------------------- outputs
    def take_reports(self) -> list[Report]:
        reports = list(self.reports)
        self.reports.clear()
        return reports

    def readiness(self, now: float, depth: int, answered_at: float | None) -> str | None:
        """None when publishing works, else why not (Rule 3)."""
        hold = self.limits.stall_s
        if self.fatal:
            return f"fatal producer error: {self.fatal}"
        if not self.topics_ready:
            if self.ever_lost:
                return "topics missing on the broker; recreating them"
            return (
                f"topics not created yet: {self.topic_error}"
                if self.topic_error
                else "topics not created yet"
            )
        waited = now - max(self.last_ack, self.last_empty)
        if depth and waited > hold:
            return f"{depth} messages unacknowledged for {waited:.1f} s"
        silent = now - answered_at if answered_at is not None else 0.0
        if silent > max(hold, UNANSWERED_S):  # a quiet feed queues nothing: ask the broker itself
            return f"broker unreachable: no answer for {silent:.0f} s"
        if self.brokers_down:
            return "all brokers down"
        if self.last_trouble and now - self.last_trouble[0] < hold:
            return f"{self.last_trouble[1]} ({now - self.last_trouble[0]:.1f} s ago)"
        return None

    def acks_stalled(self, now: float, depth: int) -> bool:
        """Rule 4: time to ask the broker whether the topics still exist."""
        waited = now - max(self.last_ack, self.last_empty)
        return self.topics_ready and depth > 0 and waited > self.limits.stall_s

    def missing(self, known: set[str]) -> list[str]:
        """The pipeline topics not among ``known`` (the broker's answer)."""
        return [t for t in self.topics if t not in known]

    # ----------------------------------------------------------------- inputs
    def hold(self, item: Pending) -> bool:
        """Rule 4: keep an event while its topic is missing; False (nothing kept) past ``hold_max``."""
        if len(self.pending) >= self.limits.hold_max:
            self.refusal = "topic_missing"
            return False
        self.pending.append(item)
        return True

    def overflowed(self) -> None:
        """The producer's buffer refused an event (reported lost by the executor, Rule 1)."""
        self.refusal = "producer_overflow"

    def refused(self, kind: Kind, topic: str, why: str) -> bool:
        """A produce the client refused outright; False when the refusal is not ours to judge."""
        if kind is Kind.FATAL:
            self.refusal = "producer_fatal"
            self.fatal_seen = why
            return True
        if kind not in MISSING:
            return False
        self.refusal = "topic_missing"
        self.lose_topics(f"topic {topic} does not exist on the broker")
        return True

    def refused_event(self, lost: Lost, now: float, dropped: int) -> None:
        """An event the producer refused, or that could not be held: reported lost (Rule 1)."""
        if lost.reason == "producer_overflow":
            self.trouble(now, f"producer buffer full ({dropped} events refused so far)")
        self.reports.append(lost)

    def gap_queued(self, record: GapMessage, item: Pending) -> None:
        self.reports.append(GapQueued(record))
        self.pending.append(item)

    def gap_acked(self, value: bytes) -> None:
        self.reports.append(GapAcked(orjson.loads(value or b"{}")))

    def failed(self, kind: Kind, item: Pending, why: str, now: float) -> Verdict:
        """A failed delivery (Rule 2); returns the verdict the executor counts and logs."""
        fate = verdict(kind, self.roles.get(item[0], "dead_letter"))
        if fate is Verdict.AGAIN:
            self._purged(item)
            return fate
        self.failures += 1
        self.trouble(now, why)
        if kind in MISSING:
            self.lose_topics(why)
        if fate is Verdict.RESEND:
            self.pending.append(item)
        elif fate is Verdict.LOST or (fate is Verdict.HOLD and not self.hold(item)):
            self.reports.append(lost_of(item[2], "delivery_failed"))
            return Verdict.LOST
        return fate

    def _purged(self, item: Pending) -> None:
        """Rule 6: a retired producer's message goes again, once, as the window kept it."""
        value = item[2]
        if self._resending is not None and self._resending[value] > 0:
            self._resending[value] -= 1
            return  # the replay sends it again already: once is enough
        copies = self._sent.get(value)
        self.pending.append(copies.popleft() if copies else item)  # identical bad frames: one copy each

    def broker_error(self, now: float, all_down: bool, fatal: str | None, why: str | None) -> None:
        """A client error: all brokers down (Rule 5's cut), fatal (Rule 7), or explained trouble."""
        if all_down:
            self.brokers_down = True
            self.down_at = now  # nothing sent from now on reached the old log
            self._acks_seen = self.acks[0]  # acks served before this error do not undo it
        if fatal:
            self.fatal_seen = fatal
        if why:
            self.trouble(now, why)

    def log_due(self, now: float, every_s: float) -> bool:
        """Whether to log this delivery failure: the first, then one per ``every_s``."""
        if self.failures == 1 or now - self._last_log >= every_s:
            self._last_log = now
            return True
        return False

    def trouble(self, now: float, what: str) -> None:
        self.last_trouble = (now, what)

    def lose_topics(self, why: str) -> None:
        """Rule 4: readiness off, the topics to be created again (``losses`` counts it)."""
        self.lost_because = why
        if self.cut is None:  # Rule 5: the first sign of a lost log since the last replay
            self.retire_due = True
        self.topics_ready, self.ever_lost = False, True
        self.losses += 1

    def creating(self, error: str | None) -> None:
        """The executor asked for the topics; ``error``: why they are not there (Rule 3)."""
        self.topic_error = error

    def topics_created(self) -> None:
        """The topics exist and the producer knows them: publishing goes on (Rule 4)."""
        self.refusal = "producer_overflow"
        self.topics_ready = True

    def fatal_error(self, why: str) -> None:
        """The producer reported a fatal error: replaced at the next serve (Rule 7)."""
        self.fatal_seen = why

    def served(self, now: float) -> None:
        """Delivery reports were served: acknowledgements since the last serve mean the broker is
        up (Rule 3)."""
        if self.acks[0] != self._acks_seen:
            self._acks_seen = self.acks[0]
            self.last_ack = now
            self.brokers_down = False
        self.now = now

    def emptied(self, now: float) -> None:
        """The producer holds nothing: nothing waits for an acknowledgement (Rule 3)."""
        self.last_empty = now

    def renew(self, why: str, now: float) -> bool:
        """Rule 7: True to replace the producer; False when that happened too often (then final)."""
        self.fatal_seen = None
        if len(self._renewals) == FATAL_RENEWALS and now - self._renewals[0] < FATAL_WINDOW_S:
            self.fatal = why
            return False
        self._renewals.append(now)
        return True

    def retiring(self, resending: Counter[bytes] | None) -> None:
        """Rule 6: the producer is being retired; its purged messages come back through ``failed``."""
        self._resending = resending or Counter()
        self._sent = {}
        for _, item in self.window:
            self._sent.setdefault(item[2], deque()).append(item)

    def retired(self) -> None:
        self._resending, self._sent = None, {}

    def cut_now(self) -> None:
        """Rule 5: the producer of a lost log is retired now."""
        self.retire_due = False
        self.cut = self.now

    def ids_seen(
        self, changed: list[str], complete: bool, now: float
    ) -> tuple[list[Pending], Counter[bytes] | None]:
        """Rule 5: the topics' ids, answered; ``changed`` have a new id, ``complete`` when every
        topic answered. Returns (what to send again, queued by the executor after retiring the
        producer when the second item is not None: the values the replay resends already)."""
        again: list[Pending] = []
        retire: Counter[bytes] | None = None
        if changed:
            cut = self.cut
            if cut is None:  # the topics came back before we saw them missing (another client made them)
                down = self.down_at
                cut = down if down is not None and down > self.confirmed_at else float("inf")
            again, kept = plan_replay(self.window, self.pending, changed, cut)
            self.window.clear()
            self.window.extend(kept)
            if self.cut is None:  # the producer of the lost log is still ours: retire it now
                retire = Counter(item[2] for item in (*again, *self.pending))
            self.cut = None
        elif complete and self.topics_ready:
            self.confirmed_at, self.cut = now, None  # the log is the one we know: no replay due
        return again, retire

    def evict(self) -> int:
        """Rule 5: the window's messages older than ``window_s`` at the last confirmed check go."""
        return self.window.evict(self.confirmed_at - self.limits.window_s)
