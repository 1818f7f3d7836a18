"""Worker test helpers the kit does not hold: a paced producer (a live stream) and the exactness check.

Events, the producer and the worker subprocess come from binance_pipeline.testing (events, helpers, stages).
"""

from __future__ import annotations

import threading
import time

import orjson

from binance_pipeline.testing.events import trade
from binance_pipeline.testing.helpers import producer, query


class PacedProducer:
    """Produce trades ``range(start, start+n)`` over about ``seconds`` in a thread (a live stream)."""

    def __init__(self, bootstrap: str, topic: str, n: int, seconds: float, start: int = 0) -> None:
        self._p, self._topic, self.n, self._seconds, self._start = (
            producer(bootstrap),
            topic,
            n,
            seconds,
            start,
        )
        self.produced = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            chunk = max(1, self.n // max(1, int(self._seconds * 20)))
            began = time.monotonic()
            for s in range(0, self.n, chunk):
                ids = range(self._start + s, self._start + min(self.n, s + chunk))
                for i in ids:
                    m = trade(i)
                    self._p.produce(self._topic, value=orjson.dumps(m), key=m["symbol"].encode())
                self._p.poll(0)
                self.produced = s + len(ids)
                lag = began + self._seconds * self.produced / self.n - time.monotonic()
                if lag > 0:
                    time.sleep(lag)
            assert self._p.flush(60) == 0
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def join(self, timeout: float = 120) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "producer did not finish"
        if self.error is not None:
            raise self.error


def assert_exactly(db_url: str, n: int) -> None:
    """The trades table holds ids 0..n-1, each exactly once."""
    rows = query(db_url, "SELECT count(*), count(DISTINCT (symbol, type, id)), min(id), max(id) FROM trades")
    assert rows == [(n, n, 0, n - 1)]
