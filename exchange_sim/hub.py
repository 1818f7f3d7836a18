"""Fan-out of the one market to every connection (the thin I/O layer under the WS server).

Owns the open connections, the stream -> connections routing index, and per-connection
output buffers. Frames are written straight to the transport: each event's frame bytes are
built once (``Event.frame``) and the bytes queued for one connection during one event-loop
turn go out in a single ``transport.write``.

Rule 1: an event is published to connections in one fixed order of events for every
        connection, so overlapping connections see identical sequences.
Rule 2: a stalled connection gets no data frames and no pings until its stall ends; what was
        published meanwhile is lost for it (a gap), never queued.
Rule 3: a connection whose unsent output exceeds ``max_buffer`` bytes is cut (slow consumer),
        so one stuck client never holds memory or the market back.
Rule 4: ``abort`` closes the TCP connection without a close frame; ``close`` sends a close
        frame first, then closes TCP after flushing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from exchange_sim.events import Event
from exchange_sim.faults import Faults
from exchange_sim.frames import close_frame
from exchange_sim.market import Market
from exchange_sim.protocol import Session

log = logging.getLogger(__name__)


class Connection:
    """One WebSocket client as seen by the hub."""

    def __init__(
        self,
        cid: int,
        path: str,
        transport: asyncio.Transport,
        session: Session,
        micro: bool,
        max_buffer: int,
    ) -> None:
        self.cid = cid
        self.path = path
        self.transport = transport
        self.session = session
        self.micro = micro
        self.max_buffer = max_buffer
        self.loop = asyncio.get_running_loop()
        self.opened = self.loop.time()
        self.stalled_until = 0.0
        self.closed = False
        self.frames_sent = 0
        self.control_messages = 0  # text/binary frames received (SUBSCRIBE, UNSUBSCRIBE, ...)
        self.peak_incoming_per_sec = 0  # most frames received within any 1 s window
        self.pending_pings: dict[bytes, float] = {}  # ping payload -> loop time sent, oldest first
        self._buf: list[bytes] = []

    def send(self, data: bytes, data_frame: bool = True) -> bool:
        """Queue one frame; False if the connection is closed or (for data) stalled."""
        if self.closed or (data_frame and self.stalled_until and self.loop.time() < self.stalled_until):
            return False
        if not self._buf:
            self.loop.call_soon(self._flush)
        self._buf.append(data)
        self.frames_sent += 1
        return True

    def _flush(self) -> None:
        if self.closed or not self._buf:
            self._buf.clear()
            return
        data = b"".join(self._buf)
        self._buf.clear()
        self.transport.write(data)
        if self.transport.get_write_buffer_size() > self.max_buffer:
            log.warning(
                "conn %d: slow consumer, %d bytes unsent: cutting",
                self.cid,
                self.transport.get_write_buffer_size(),
            )
            self.abort()

    def buffered(self) -> int:
        """Bytes queued but not yet on the wire."""
        return 0 if self.closed else self.transport.get_write_buffer_size() + sum(map(len, self._buf))

    def abort(self) -> None:
        """Drop the TCP connection at once: no close frame."""
        if not self.closed:
            self.closed = True
            self._buf.clear()
            self.transport.abort()

    def close(self, code: int, reason: str) -> None:
        """Send a close frame after what is queued, then close TCP."""
        if not self.closed:
            self._flush()
            self.transport.write(close_frame(code, reason))
            self.closed = True
            self.transport.close()

    def describe(self) -> dict[str, Any]:
        """JSON summary for ``/control/stats``."""
        return {
            "id": self.cid,
            "path": self.path,
            "streams": list(self.session.streams),
            "combined": self.session.combined,
            "micro": self.micro,
            "frames_sent": self.frames_sent,
            "control_messages": self.control_messages,
            "peak_incoming_per_sec": self.peak_incoming_per_sec,
        }


class Hub:
    """All connections and the routing of events to them."""

    def __init__(self, market: Market, faults: Faults) -> None:
        self.market = market
        self.faults = faults
        self.connections: dict[int, Connection] = {}
        self.routes: dict[str, dict[Connection, None]] = {}
        self.first_subscription = asyncio.Event()
        self._next_id = 1
        # Accounting of incoming messages over every connection, closed ones included.
        self.control_messages = 0
        self.peak_incoming_per_sec = 0
        self.rate_limit_closes = 0

    def new_id(self) -> int:
        """A fresh connection id."""
        cid, self._next_id = self._next_id, self._next_id + 1
        return cid

    def add(self, conn: Connection) -> None:
        """Register an open connection and route its initial streams."""
        self.connections[conn.cid] = conn
        self.subscribe(conn, tuple(conn.session.streams))

    def remove(self, conn: Connection) -> None:
        """Forget a connection (closed by either side)."""
        conn.closed = True
        self.connections.pop(conn.cid, None)
        self.unsubscribe(conn, tuple(conn.session.streams))

    def subscribe(self, conn: Connection, streams: tuple[str, ...]) -> None:
        """Route ``streams`` to ``conn``."""
        for name in streams:
            self.routes.setdefault(name, {})[conn] = None
        if streams:
            self.first_subscription.set()

    def unsubscribe(self, conn: Connection, streams: tuple[str, ...]) -> None:
        """Stop routing ``streams`` to ``conn``."""
        for name in streams:
            subscribers = self.routes.get(name)
            if subscribers is not None:
                subscribers.pop(conn, None)
                if not subscribers:
                    del self.routes[name]

    def publish(self, event: Event) -> None:
        """Send a recorded event to its subscribers, applying drop/duplicate faults."""
        copies = self.faults.copies(event)
        if copies == 0:
            self.market.mark_dropped(event)
            return
        subscribers = self.routes.get(event.stream)
        if not subscribers:
            return
        sent = False
        for conn in subscribers:
            frame = event.frame(conn.session.combined, conn.micro)
            if conn.send(frame):
                sent = True
                if copies == 2:
                    conn.send(frame)
        if sent:
            self.market.mark_sent(event)
            if copies == 2:
                self.market.mark_duplicated(event)

    def broadcast(self, make: Any, data_frame: bool = True) -> int:
        """Send ``make(conn)`` bytes to every open connection; returns how many got it."""
        return sum(conn.send(make(conn), data_frame) for conn in list(self.connections.values()))

    def abort_all(self) -> int:
        """Drop every connection without a close frame; returns how many."""
        conns = list(self.connections.values())
        for conn in conns:
            conn.abort()
        return len(conns)

    def stall_all(self, seconds: float) -> int:
        """Stall every currently open connection for ``seconds``."""
        until = asyncio.get_running_loop().time() + seconds
        for conn in self.connections.values():
            conn.stalled_until = until
        return len(self.connections)

    async def drained(self, limit: int = 1 << 20) -> None:
        """Wait until no connection holds more than ``limit`` unsent bytes."""
        deadline = time.monotonic() + 30.0
        # Polling: raw transports offer no drain event without the library's protocol object.
        while time.monotonic() < deadline:  # bounded: a stuck client is cut by max_buffer anyway
            if all(c.buffered() <= limit for c in self.connections.values()):
                return
            await asyncio.sleep(0.002)
