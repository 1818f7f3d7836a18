"""Property: valid frames interleaved with arbitrary invalid ones -> exactly the valid events are
published, each once, and every invalid frame is dead-lettered (pure, Flow level, REST played here)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.actions import DeadLetter, PublishEvent, VerifyJump
from ingestion.flow import Flow, Tallies

T0 = 1_800_000_000_000_000
STREAMS = ("btcusdt@trade", "btcusdt@aggTrade")
ID_FIELD = {"trade": "t", "aggTrade": "a"}


def payload(kind: str, ident: int, price: str = "101.5", qty: str = "0.25", at: int = T0) -> dict[str, Any]:
    data: dict[str, Any] = {"e": kind, "E": at, "s": "BTCUSDT", ID_FIELD[kind]: ident, "p": price, "q": qty,
                            "T": at, "m": ident % 2 == 0}  # fmt: skip
    if kind == "aggTrade":
        data.update(f=ident * 3, l=ident * 3 + 2)
    return data


def framed(stream: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


def valid_frame(kind: str, ident: int) -> bytes:
    return framed(f"btcusdt@{kind}", payload(kind, ident))


def invalid_frame(how: str, kind: str, ident: int) -> tuple[bytes, bool]:
    """(frame, sent as binary) of one invalid kind, built around ``ident`` (copied or shifted)."""
    stream, field = f"btcusdt@{kind}", ID_FIELD[kind]
    if how == "duplicate_key":
        raw, once = framed(stream, payload(kind, ident)), f'"{field}":{ident},'
        return raw.replace(once.encode(), f'{once}"{field}":{ident + 500_000},'.encode()), False
    if how == "wrong_stream":
        return framed(f"xrpusdt@{kind}", {**payload(kind, ident), "s": "XRPUSDT"}), False
    if how == "binary":
        return valid_frame(kind, ident), True
    if how == "bare":
        return orjson.dumps(payload(kind, ident)), False
    if how == "zero_price":
        return framed(stream, payload(kind, ident, price="0.00000000")), False
    if how == "huge_qty":
        return framed(stream, payload(kind, ident, qty="9" * 80)), False
    if how == "old_time":
        return framed(stream, payload(kind, ident, at=T0 - 3_600_000_000)), False
    if how == "reply_lookalike":
        return orjson.dumps({**payload(kind, ident), "id": ident, "result": None}), False
    if how == "jump":  # well-formed, but far beyond the stream's pace and unknown to REST
        return valid_frame(kind, ident + 1_000_000), False
    return b"\x00" + str(ident).encode(), False  # "garbage"


HOWS = ("duplicate_key", "wrong_stream", "binary", "bare", "zero_price", "huge_qty", "old_time",
        "reply_lookalike", "jump", "garbage")  # fmt: skip


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[tuple[bytes, bool, bool]], dict[tuple[str, int], bytes]]:
    """(frames as (raw, binary, valid), valid events by (type, id)); valid ids rise with small gaps,
    some arrive late or twice; invalid frames copy or shift valid ids."""
    valid: dict[tuple[str, int], bytes] = {}
    order: list[tuple[bytes, bool, bool]] = []
    for kind in ("trade", "aggTrade"):
        steps = draw(st.lists(st.integers(1, 4), min_size=1, max_size=25))
        ident = draw(st.integers(1, 10_000))
        for step in steps:
            ident += step
            valid[(kind, ident)] = valid_frame(kind, ident)
    keys = list(valid)
    for key in keys:
        order.append((valid[key], False, True))
    firsts = {0, len([k for k in keys if k[0] == "trade"])}  # each stream's first id sets its baseline
    movable = [i for i in range(len(order)) if i not in firsts]
    late = draw(st.lists(st.sampled_from(movable), max_size=4, unique=True)) if movable else []
    for i in sorted(late, reverse=True):  # move some valid frames a few places later
        item = order.pop(i)
        order.insert(min(len(order), i + draw(st.integers(1, 6))), item)
    for key in draw(st.lists(st.sampled_from(keys), max_size=3)):  # the exchange resends some, later
        after = order.index((valid[key], False, True)) + 1
        order.insert(draw(st.integers(after, len(order))), (valid[key], False, True))
    for _ in range(draw(st.integers(0, 12))):
        kind, ident = draw(st.sampled_from(keys))
        raw, binary = invalid_frame(draw(st.sampled_from(HOWS)), kind, ident + draw(st.integers(-3, 3)))
        order.insert(draw(st.integers(0, len(order))), (raw, binary, False))
    return order, valid


@settings(max_examples=200, deadline=None)
@given(scenario(), st.integers(0, 5))
def test_exactly_the_valid_events_are_published_once(
    case: tuple[list[tuple[bytes, bool, bool]], dict[tuple[str, int], bytes]], rest_delay: int
) -> None:
    """Invalid frames never suppress, duplicate or displace a valid event, and each is dead-lettered."""
    frames, valid = case
    flow = Flow(Tallies(defaultdict(int), defaultdict(int)), 600_000_000)
    flow.attach("c1", STREAMS)
    published: list[Any] = []
    dead: list[bytes] = []
    checks: list[tuple[int, VerifyJump]] = []  # (answer after this many more frames, check)

    def execute() -> None:
        for action in flow.take_actions():
            if isinstance(action, PublishEvent):
                published.append(action.msg)
            elif isinstance(action, DeadLetter):
                dead.append(action.raw)
            elif isinstance(action, VerifyJump):
                checks.append((rest_delay, action))

    def answer(due_only: bool) -> None:
        while checks and (not due_only or checks[0][0] <= 0):
            _, check = checks.pop(0)
            known = (check.stream, check.ident) in valid  # REST holds exactly the valid trades
            found = orjson.loads(valid[(check.stream, check.ident)]) if known else None
            flow.jump_checked(check.token, _message(found, check.stream) if found else None, False)
            execute()

    for n, (raw, binary, _) in enumerate(frames):
        flow.receive("c1", raw, T0 + n, binary)
        execute()
        checks[:] = [(left - 1, c) for left, c in checks]
        answer(due_only=True)
    answer(due_only=False)
    got = Counter((m["type"], m["id"]) for m in published)
    assert got == Counter(valid.keys())
    assert all(m["price"] == "101.5" and m["symbol"] == "BTCUSDT" for m in published)
    assert Counter(dead) == Counter(raw for raw, _, ok in frames if not ok)


def _message(doc: dict[str, Any], stream: str) -> Any:
    """REST's row for a valid trade, as the backfiller's parser would give it."""
    data = doc["data"]
    return {"type": stream, "symbol": "BTCUSDT", "id": data[ID_FIELD[stream]], "price": data["p"],
            "qty": data["q"], "trade_time": data["T"]}  # fmt: skip
