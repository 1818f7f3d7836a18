"""What ``Flow`` knows about each connection (pure state, no I/O).

A connection's socket lives in ``ingestion.connection``; what the flow must remember about
it -- which streams it subscribed, whether it is a rollover replacement still buffering, the
first id it saw per stream, whether the server announced a shutdown, which control requests
wait for a reply -- lives here, owned by ``Flow``.

Rules:
  1. A link exists from ``Flow.attach`` until ``Flow.retire``; frames of a connection with no
     link are ignored (a retired connection may still deliver a few).
  2. While ``handoff.buffering``, events wait in ``handoff.buffer`` (in arrival order, with
     their raw frames, which a later rejection dead-letters) and ``handoff.first_ids`` holds
     the first id seen per (type, symbol); ``release`` empties both.
  3. ``combined``: the connection uses the combined-stream endpoint, so every event frame must
     come in a ``{"stream": .., "data": ..}`` envelope naming one of ``streams``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingestion.actions import Event, Key


@dataclass(slots=True)
class Handoff:
    """A rollover replacement's events, held until the old connection has caught up."""

    buffering: bool = False
    buffer: list[tuple[Event, bytes]] = field(default_factory=list)
    first_ids: dict[Key, int] = field(default_factory=dict)

    def hold(self, msg: Event, raw: bytes, key: Key, ident: int) -> None:
        self.buffer.append((msg, raw))
        self.first_ids.setdefault(key, ident)

    def drain(self) -> list[tuple[Event, bytes]]:
        """Stop buffering; return what was held (Rule 2)."""
        held, self.buffer = self.buffer, []
        self.buffering = False
        self.first_ids.clear()
        return held


@dataclass(slots=True)
class Link:
    """One connection as the flow sees it."""

    id: str
    streams: frozenset[str]
    combined: bool = True
    shutdown_notice: bool = False
    handoff: Handoff = field(default_factory=Handoff)
    pending: set[int] = field(default_factory=set)  # control request ids awaiting a reply
