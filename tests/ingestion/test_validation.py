"""Frames that must not be stored: each is dead-lettered with its reason (pure, at the Flow level),
and the bounds ingestion enforces are the database's own."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_pipeline.common.bounds import BIGINT_MAX, DECIMAL_RE, NUMERIC_BELOW, NUMERIC_BELOW_SQL
from ingestion.actions import Action, DeadLetter, PublishEvent, Reply
from ingestion.errors import ParseError
from ingestion.flow import Flow, Tallies
from ingestion.models import MAX_ID
from ingestion.parse import _loads

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000_000_000
STREAMS = ("btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker")
TRADE: dict[str, Any] = {"e": "trade", "E": T0, "s": "BTCUSDT", "t": 1, "p": "67000.5", "q": "0.001",
                         "T": T0, "m": True}  # fmt: skip
AGG: dict[str, Any] = {"e": "aggTrade", "E": T0, "s": "BTCUSDT", "a": 1, "p": "67000.5", "q": "0.001",
                       "f": 10, "l": 11, "T": T0, "m": True}  # fmt: skip
YEAR_1970_US = 1_000_000  # read as ms (models Rule 3): 1970-01-01T00:16:40
YEAR_2286_US = 9_999_999_999_000_000  # 2286-11-20


def wrap(stream: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


def run(*frames: bytes, binary: bool = False, pending: int | None = None) -> list[Action]:
    """Feed frames to a fresh flow with one combined connection; return its actions."""
    flow = Flow(Tallies(defaultdict(int), defaultdict(int)), 600_000_000)
    flow.seed(("trade", "BTCUSDT"), 0)  # as from a stored frontier: no REST check of the first id
    flow.seed(("aggTrade", "BTCUSDT"), 0)
    flow.attach("c1", STREAMS)
    if pending is not None:
        flow.request_sent("c1", pending)
    for raw in frames:
        flow.receive("c1", raw, T0, binary)
    return flow.take_actions()


def reason_of(frame: bytes, binary: bool = False) -> str:
    """The dead-letter reason of one frame, which must be rejected and nothing else."""
    [action] = run(frame, binary=binary)
    assert isinstance(action, DeadLetter) and action.raw == frame
    return action.reason


GOOD = wrap("btcusdt@trade", TRADE)


def test_a_valid_trade_is_published() -> None:
    """The baseline frame of these tests is accepted (so each rejection below is the check's doing)."""
    [action] = run(GOOD)
    assert isinstance(action, PublishEvent) and action.msg["id"] == 1  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (wrap("xrpusdt@trade", {**TRADE, "s": "XRPUSDT"}), "'xrpusdt@trade' was not subscribed"),
        (wrap("btcusdt@trade", {**TRADE, "p": "0"}), "p: Value error, must be positive"),
        (wrap("btcusdt@trade", {**TRADE, "q": "0.00000000"}), "q: Value error, must be positive"),
        (wrap("btcusdt@aggTrade", {**AGG, "p": "0", "q": "0"}), "positive (zero only when f = l = -1)"),
        (wrap("btcusdt@trade", {**TRADE, "T": YEAR_1970_US}), "trade time 1000000000 us is"),
        (wrap("btcusdt@trade", {**TRADE, "T": YEAR_2286_US, "E": YEAR_2286_US}), "from the receipt time"),
        (wrap("btcusdt@trade", {**TRADE, "E": T0 + 601_000_000}), "event time"),
        (orjson.dumps(TRADE), "bare payload without the combined-stream envelope"),
        (wrap("btcusdt@trade", {**TRADE, "p": "9" * 80}), "p: String should match pattern"),
        (wrap("btcusdt@trade", {**TRADE, "q": "1" + "0" * 20}), "q: String should match pattern"),
        (b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1800000000000000,"s":"BTCUSDT","t":1,'
         b'"t":500001,"p":"1","q":"1","T":1800000000000000,"m":true}}', "duplicate key 't'"),
        (b'{"id":1,"result":null}', "control reply with id '1' matches no pending request"),
        (b'{"id":7,"error":{"code":2,"msg":"Invalid request"}}', "id '7' matches no pending request"),
        (orjson.dumps({**TRADE, "id": 1, "result": None}), "id '1' matches no pending request"),
    ],
)
def test_rejected_with_the_stated_reason(frame: bytes, reason: str) -> None:
    """Issue 16 "Why" 2-4: each lookalike, wrong stream, bad number or time is dead-lettered with why."""
    assert reason in reason_of(frame)


def test_binary_frame_is_rejected_even_when_it_holds_a_valid_trade() -> None:
    """A binary frame is dead-lettered unchanged, whatever it holds."""
    assert reason_of(GOOD, binary=True).startswith("binary frame")


def test_the_anomaly_and_bounds_edges_are_accepted() -> None:
    """The documented aggTrade anomaly (p=q=0, f=l=-1) and the largest storable numbers pass."""
    anomaly = wrap("btcusdt@aggTrade", {**AGG, "p": "0", "q": "0", "f": -1, "l": -1})
    biggest = wrap("btcusdt@trade", {**TRADE, "t": 2, "p": "9" * 20 + "." + "9" * 40, "q": "0" * 30 + "1"})
    assert [type(a) for a in run(anomaly, GOOD, biggest)] == [PublishEvent] * 3


def test_a_matching_control_reply_is_routed_not_dead_lettered() -> None:
    """A reply whose id a request of this connection waits for goes to that request."""
    [action] = run(b'{"id":3,"result":null}', pending=3)
    assert isinstance(action, Reply) and action.reply.id == 3


def test_migration_checks_use_the_shared_bounds() -> None:
    """Every numeric CHECK in the migrations is [0, NUMERIC_BELOW); the validator's pattern agrees."""
    sql = "\n".join(p.read_text() for p in sorted((ROOT / "db" / "store" / "migrations").glob("*.sql")))
    checks = re.findall(r"CHECK \((\w+) >= 0 AND \1 < ([0-9e]+)\)", sql)
    assert {col for col, _ in checks} == {"price", "qty", "bid_price", "bid_qty", "ask_price", "ask_qty"}
    assert {bound for _, bound in checks} == {NUMERIC_BELOW_SQL}
    assert int(float(NUMERIC_BELOW_SQL)) == NUMERIC_BELOW
    pattern = re.compile(DECIMAL_RE)
    assert pattern.match(str(NUMERIC_BELOW - 1)) and not pattern.match(str(NUMERIC_BELOW))
    assert pattern.match("0" * 5 + str(NUMERIC_BELOW - 1)) and not pattern.match("0" + str(NUMERIC_BELOW))
    assert MAX_ID == BIGINT_MAX == 2**63 - 1  # the migrations' ids are bigint
    id_columns = re.findall(r"^\s+(id|first_id|last_id|update_id)\s+(\w+)", sql, re.M)
    assert len(id_columns) == 6 and {kind for _, kind in id_columns} == {"bigint"}


VALUES = st.integers(-(2**63), 2**63 - 1) | st.text(max_size=4)  # orjson's integers are 64-bit


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.text(max_size=4), VALUES, min_size=1, max_size=6),
    st.sampled_from(["", " ", "\t", "\n  "]),
    st.data(),
)
def test_duplicate_keys_are_found_whatever_the_spacing(
    doc: dict[str, Any], space: str, data: st.DataObject
) -> None:
    """An object repeating a key is rejected however it is spaced and whatever its strings hold."""
    body = ",".join(f"{json.dumps(k)}{space}:{json.dumps(v)}" for k, v in doc.items())
    key = data.draw(st.sampled_from(sorted(doc)))
    assert _loads(("{" + body + "}").encode()) == doc
    with pytest.raises(ParseError, match="duplicate key"):
        _loads(("{" + body + f",{json.dumps(key)}{space}:[1]" + "}").encode())
