"""The replay window (delivery Rule 5), kept compact: what ingestion handed to Kafka lately.

A message is ``(topic, key, value, timestamp ms, headers)`` stamped with the monotonic second it
was sent. Kept as tuples, one costs ~230 bytes besides its value (a tuple of five, a tuple of two,
a float, an int, the bytes object's header); at 15,000 events/s the window holds 100,000 of them.

Rules:
  1. Messages are kept in columns, in chunks of CHUNK messages: the values' bytes back to back in
     one ``bytearray``, their ends, stamps and timestamps in typed arrays, and their (topic, key)
     as a 2-byte index into the window's table of routes. About 22 bytes besides the value.
  2. A message with headers (a dead letter) is kept whole beside its chunk; it is rare.
  3. Order is the order of ``append``; iteration yields ``(stamp, message)`` pairs rebuilt as the
     tuples they were, equal to what was appended.
  4. ``maxlen`` bounds the count: appending past it drops the oldest. ``evict(horizon)`` drops,
     from the front, the messages stamped before ``horizon``. A chunk is freed once all its
     messages are dropped.
  5. ``push`` (the per-event path) only lists the message; up to SETTLE messages wait so, and are
     moved into the columns together (one join, one extend per column) before anything reads
     the window or appends to it otherwise. Waiting values are the producer's own bytes objects
     (orjson's, several KB each), hence the small bound.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import accumulate

from ingestion.replay import Pending, Stamped

CHUNK = 4096  # Rule 1
SETTLE = 128  # Rule 5


class _Chunk:
    __slots__ = ("data", "ends", "extras", "routes", "stamps", "start", "top", "ts")

    def __init__(self) -> None:
        self.data = bytearray()
        self.ends = array("I")
        self.stamps = array("d")
        self.ts = array("q")
        self.routes = array("H")
        self.extras: dict[int, Pending] = {}  # Rule 2: index -> the message with its headers
        self.start = 0  # messages before it are dropped
        self.top = float("-inf")  # the latest stamp in the chunk, set when it is full


class ReplayWindow:
    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._chunks: deque[_Chunk] = deque()
        self._open = self._chunk()  # the last chunk, where messages go
        self._route_of: dict[tuple[str, str | None], int] = {}
        self._routes: list[tuple[str, str | None]] = []
        self._len = 0  # in the columns
        self._values: list[bytes] = []  # Rule 5: pushed, not yet in the columns
        self._waiting: list[tuple[float, int, int]] = []  # their (stamp, route, ts)

    def __len__(self) -> int:
        self._settle()
        return self._len

    def _chunk(self) -> _Chunk:
        chunk = _Chunk()
        self._chunks.append(chunk)
        return chunk

    def route(self, topic: str, key: str | None) -> int:
        """The index of (``topic``, ``key``) in the window's table of routes (Rule 1), for ``push``."""
        route = self._route_of.get((topic, key))
        if route is None:
            route = self._route_of[(topic, key)] = len(self._routes)
            self._routes.append((topic, key))
        return route

    def push(self, stamp: float, route: int, value: bytes, ts: int) -> None:
        """``append`` of a message without headers, its route given (``route``): the hot path (Rule 5)."""
        if self.maxlen:
            self._values.append(value)
            self._waiting.append((stamp, route, ts))
            if len(self._values) >= SETTLE:
                self._settle()

    def append(self, stamp: float, item: Pending) -> None:
        """Rule 1 (Rule 4 past ``maxlen``)."""
        if not self.maxlen:
            return
        self._settle()
        topic, key, value, ts, headers = item
        chunk = self._room()
        if headers is not None:
            chunk.extras[len(chunk.ends)] = item
        self._put(chunk, [value], [(stamp, self.route(topic, key), ts)])
        self._trim()

    def _room(self) -> _Chunk:
        """The open chunk, a new one when it is full."""
        if len(self._open.ends) == CHUNK:
            self._open = self._chunk()
        return self._open

    def _put(self, chunk: _Chunk, values: list[bytes], meta: list[tuple[float, int, int]]) -> None:
        """Append to ``chunk``'s columns (they fit in it)."""
        data = chunk.data
        base = len(data)
        data += b"".join(values)
        chunk.ends.extend(accumulate(map(len, values), initial=base))
        chunk.ends.pop(len(chunk.ends) - len(values) - 1)  # the ``initial`` base
        stamps, routes, ts = zip(*meta, strict=True)
        chunk.stamps.extend(stamps)
        chunk.routes.extend(routes)
        chunk.ts.extend(ts)
        self._len += len(values)
        if len(chunk.ends) == CHUNK:
            chunk.top = max(chunk.stamps)

    def _settle(self) -> None:
        """Rule 5: the pushed messages into the columns, in order."""
        values, meta = self._values, self._waiting
        if not values:
            return
        self._values, self._waiting = [], []
        at = 0
        while at < len(values):
            chunk = self._room()
            end = at + CHUNK - len(chunk.ends)
            self._put(chunk, values[at:end], meta[at:end])
            at = end
        self._trim()

    def _trim(self) -> None:
        """Rule 4's bound: the oldest go, whole chunks at once where they can."""
        while self._len > self.maxlen:
            chunk, excess = self._chunks[0], self._len - self.maxlen
            left = len(chunk.ends) - chunk.start
            if excess >= left and chunk is not self._open:
                self._chunks.popleft()
                self._len -= left
                continue
            self._drop_first(min(excess, left))

    def extend(self, stamped: Iterable[Stamped]) -> None:
        for stamp, item in stamped:
            self.append(stamp, item)

    def clear(self) -> None:
        self._chunks.clear()
        self._values, self._waiting = [], []
        self._open = self._chunk()
        self._len = 0

    def __iter__(self) -> Iterator[Stamped]:
        """Rule 3."""
        self._settle()
        routes = self._routes
        for chunk in list(self._chunks):
            data, ends, extras = chunk.data, chunk.ends, chunk.extras
            for i in range(chunk.start, len(ends)):
                item = extras.get(i)
                if item is None:
                    topic, key = routes[chunk.routes[i]]
                    begin = ends[i - 1] if i else 0
                    item = (topic, key, bytes(data[begin : ends[i]]), chunk.ts[i], None)
                yield chunk.stamps[i], item

    def evict(self, horizon: float) -> int:
        """Rule 4; returns how many left."""
        self._settle()
        dropped = 0
        while self._len:
            chunk = self._chunks[0]
            if chunk.top < horizon and len(chunk.ends) == CHUNK:  # all of it, at once
                dropped += CHUNK - chunk.start
                self._len -= CHUNK - chunk.start
                self._chunks.popleft()
                continue
            if chunk.stamps[chunk.start] >= horizon:
                break
            self._drop_first()
            dropped += 1
        return dropped

    def _drop_first(self, count: int = 1) -> None:
        """The first ``count`` messages of the first chunk go (it holds at least that many)."""
        chunk = self._chunks[0]
        if chunk.extras:
            for i in range(chunk.start, chunk.start + count):
                chunk.extras.pop(i, None)
        chunk.start += count
        self._len -= count
        if chunk.start == len(chunk.ends):
            self._chunks.popleft()
            if chunk is self._open and len(chunk.ends) < CHUNK:  # it emptied before it filled
                self._open = self._chunk()
