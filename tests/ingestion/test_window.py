"""The compact replay window keeps exactly what a deque of tuples would (``ingestion.window``)."""

from __future__ import annotations

import sys
from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestion import window as w
from ingestion.replay import Pending, Stamped
from ingestion.window import ReplayWindow


def msg(topic: str, n: int, key: str | None = "BTCUSDT", headers: bool = False) -> Pending:
    hdrs = [("reason", f"r{n}".encode())] if headers else None
    return (topic, key, f'{{"id":{n},"pad":"{"x" * (n % 7)}"}}'.encode(), 1_000 + n, hdrs)


def test_messages_come_back_in_order_equal_to_what_was_appended() -> None:
    win = ReplayWindow(10)
    items = [(1.0, msg("t", 1)), (1.5, msg("b", 2, "ETHUSDT")), (2.0, msg("d", 3, None, headers=True)),
             (2.0, msg("t", 4)), (2.5, ("t", "BTCUSDT", b"", 9, None))]  # fmt: skip
    win.extend(items)
    assert list(win) == items and len(win) == 5


def test_evict_drops_only_what_is_older_than_the_horizon_from_the_front() -> None:
    win = ReplayWindow(10)
    win.extend([(1.0, msg("t", 1)), (2.0, msg("t", 2)), (3.0, msg("t", 3))])
    assert win.evict(2.0) == 1
    assert [s for s, _ in win] == [2.0, 3.0]
    assert win.evict(0.0) == 0
    assert win.evict(10.0) == 2
    assert not list(win) and len(win) == 0
    win.append(11.0, msg("t", 4))  # and it goes on
    assert list(win) == [(11.0, msg("t", 4))]


def test_past_maxlen_the_oldest_go_and_chunks_are_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(w, "CHUNK", 4)
    win = ReplayWindow(6)
    for n in range(20):
        win.append(float(n), msg("t", n, headers=n % 5 == 0))
    assert [item for _, item in win] == [msg("t", n, headers=n % 5 == 0) for n in range(14, 20)]
    assert len(win._chunks) == 2  # 16-19 and 14-15: the others freed
    assert sum(len(c.extras) for c in win._chunks) == 1  # the dead letter at 15 only


def test_a_window_of_size_zero_keeps_nothing() -> None:
    win = ReplayWindow(0)
    win.append(1.0, msg("t", 1))
    assert len(win) == 0 and list(win) == []


def test_clear_empties_it() -> None:
    win = ReplayWindow(5)
    win.extend([(1.0, msg("t", 1))])
    win.clear()
    assert len(win) == 0 and list(win) == [] and win.evict(100.0) == 0


def test_a_kept_event_costs_about_its_value_plus_two_dozen_bytes() -> None:
    """Rule 1: 4096 events of 200 bytes take < 240 bytes each (a tuple each took ~430)."""
    win = ReplayWindow(10_000)
    value = b"x" * 200
    for n in range(w.CHUNK):
        win.append(float(n), ("topic", "BTCUSDT", value, n, None))
    (chunk,) = win._chunks
    size = (sys.getsizeof(chunk.data) + sys.getsizeof(chunk.ends) + sys.getsizeof(chunk.stamps)
            + sys.getsizeof(chunk.ts) + sys.getsizeof(chunk.routes))  # fmt: skip
    assert size / w.CHUNK < 240


stamped = st.tuples(
    st.floats(0, 100, allow_nan=False),
    st.tuples(st.sampled_from(["t", "b", "d"]), st.sampled_from(["A", "B", None]), st.binary(max_size=20),
              st.integers(0, 2**40), st.none() | st.just([("h", b"v")])),
)


@given(st.lists(st.one_of(stamped, st.floats(0, 100, allow_nan=False)), max_size=60), st.integers(0, 8))
def test_it_behaves_as_a_bounded_deque_with_front_eviction(ops: list[object], maxlen: int) -> None:
    """Appends (pairs) and evictions (floats) give what a ``deque(maxlen)`` of the pairs gives."""
    against_deque([step for op in ops for step in (op, "look")], maxlen, 128)


pushed = st.tuples(
    st.just("push"), st.floats(0, 100, allow_nan=False),
    st.tuples(st.sampled_from(["t", "b"]), st.sampled_from(["A", "B", None]), st.binary(max_size=20),
              st.integers(0, 2**40), st.none()),
)


def against_deque(ops: list[object], maxlen: int, settle: int) -> None:
    """Run ``ops`` (pushes, appends, evictions, looks) on a window of CHUNK 3 and on a ``deque(maxlen)``:
    whenever looked at, they hold the same."""
    w.CHUNK, w.SETTLE = 3, settle
    try:
        win, model = ReplayWindow(maxlen), deque[Stamped](maxlen=maxlen)
        for op in ops:
            if op == "look":
                assert list(win) == list(model) and len(win) == len(model)
            elif isinstance(op, float):
                dropped = 0
                while model and model[0][0] < op:
                    model.popleft()
                    dropped += 1
                assert win.evict(op) == dropped
            elif isinstance(op, tuple) and op[0] == "push":
                _, stamp, item = op
                topic, key, value, ts, _ = item
                win.push(stamp, win.route(topic, key), value, ts)
                if maxlen:
                    model.append((stamp, item))
            else:
                stamp, item = op  # type: ignore[misc]
                win.append(stamp, item)
                if maxlen:
                    model.append((stamp, item))
        assert list(win) == list(model) and len(win) == len(model)
    finally:
        w.CHUNK, w.SETTLE = 4096, 128


@given(st.lists(st.one_of(pushed, stamped, st.floats(0, 100, allow_nan=False), st.just("look")), max_size=80),
       st.integers(0, 8), st.sampled_from([1, 2, 5]))  # fmt: skip
def test_pushed_messages_wait_then_join_the_columns(ops: list[object], maxlen: int, settle: int) -> None:
    """Rule 5: pushes (the hot path) mixed with appends and evictions give what a ``deque(maxlen)``
    gives, whenever the window is looked at, however many pushes wait."""
    against_deque(ops, maxlen, settle)


def _push(n: int, stamp: float | None = None, key: str | None = "A") -> tuple[str, float, Pending]:
    return ("push", float(n) if stamp is None else stamp, ("t", key, f"v{n}".encode(), n, None))


@pytest.mark.parametrize(
    ("ops", "maxlen", "settle"),
    [
        ([_push(n) for n in range(8)] + ["look"], 100, 5),  # settled across chunk seams, 3 left waiting
        ([_push(n) for n in range(7)] + ["look"], 100, 1),  # each push settled at once
        ([_push(n) for n in range(10)] + ["look"], 4, 2),  # the bound drops whole chunks and a run
        ([_push(n) for n in range(10)] + ["look"], 4, 100),  # all waiting when looked at, then bounded
        ([_push(0), _push(1), (1.5, msg("d", 2, headers=True)), _push(3), "look"], 100, 5),  # order kept
        ([_push(n) for n in range(6)] + [3.5, "look", _push(9), 9.5, "look"], 100, 4),  # evict settles
        ([_push(n) for n in range(5)] + [10.0, _push(11), "look"], 100, 3),  # all evicted, then more
        ([_push(0, key=None), _push(1, key="B"), "look"], 100, 2),  # routes with and without a key
        ([_push(n) for n in range(4)] + ["look"], 0, 2),  # a window of size zero keeps no push
    ],
    ids=["seams", "settle-1", "bound", "bound-waiting", "headers-between", "evict", "evict-all", "routes",
         "size-zero"],
)  # fmt: skip
def test_pushes_against_a_deque(ops: list[object], maxlen: int, settle: int) -> None:
    """Examples of the property above, one per path (mutation testing counts only example tests)."""
    against_deque(ops, maxlen, settle)


def test_evict_drops_whole_chunks_then_the_front_of_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(w, "CHUNK", 4)
    win = ReplayWindow(100)
    for n in range(10):
        win.append(float(n), msg("t", n))
    assert win.evict(1.0) == 1
    assert win.evict(3.0) == 2  # stamp 3 stays: the chunk 0-3 is not all older
    assert win.evict(6.0) == 3  # 3 (the rest of the first chunk), then 4 and 5
    assert len(win) == 4 and [s for s, _ in win] == [6.0, 7.0, 8.0, 9.0]
    assert len(win._chunks) == 2
    more = ReplayWindow(100)
    for n in range(12):
        more.append(float(n), msg("t", n))
    assert more.evict(8.5) == 9  # two whole chunks, then one


def test_chunks_hold_chunk_messages_and_routes_are_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(w, "CHUNK", 4)
    win = ReplayWindow(100)
    for n in range(5):
        win.append(float(n), msg("t", n, "BTCUSDT" if n % 2 else "ETHUSDT"))
    assert [len(c.ends) for c in win._chunks] == [4, 1]
    assert win._routes == [("t", "ETHUSDT"), ("t", "BTCUSDT")]


def test_a_dropped_dead_letter_is_freed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(w, "CHUNK", 4)
    win = ReplayWindow(2)
    for n in range(3):
        win.append(float(n), msg("d", n, None, headers=n == 0))
    assert win._chunks[0].extras == {}


def test_pushes_settle_at_settle_and_fill_chunks_of_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule 5: the SETTLE-th push moves the waiting ones into the columns; they fill chunks of CHUNK."""
    monkeypatch.setattr(w, "CHUNK", 4)
    monkeypatch.setattr(w, "SETTLE", 3)
    win = ReplayWindow(100)
    route = win.route("t", "A")
    for n in range(2):
        win.push(float(n), route, b"v%d" % n, n)
    assert len(win._values) == 2 and win._chunks[0].ends.tolist() == []
    win.push(2.0, route, b"v2", 2)
    assert win._values == [] and win._chunks[0].ends.tolist() == [2, 4, 6]
    for n in range(3, 6):
        win.push(float(n), route, b"v%d" % n, n)
    assert [len(c.ends) for c in win._chunks] == [4, 2]
    assert [item[2] for _, item in win] == [b"v%d" % n for n in range(6)]
