"""Control-message replies and errors, stream names and connection URLs (pure)."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange_sim.protocol import Session, parse_url


def ask(session: Session, message: object) -> dict[str, object]:
    text = message if isinstance(message, str) else json.dumps(message)
    return session.handle(text).reply


def test_subscribe_reply() -> None:
    """SUBSCRIBE answers {"result":null,"id":...} and adds the streams in order."""
    s = Session(combined=False, max_streams=1024)
    reply = ask(s, {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@depth"], "id": 1})
    assert reply == {"result": None, "id": 1}
    assert list(s.streams) == ["btcusdt@aggTrade", "btcusdt@depth"]


def test_unsubscribe_and_list() -> None:
    """UNSUBSCRIBE removes; LIST_SUBSCRIPTIONS lists what is left."""
    s = Session(False, 1024, dict.fromkeys(["btcusdt@aggTrade", "btcusdt@depth"]))
    assert ask(s, {"method": "UNSUBSCRIBE", "params": ["btcusdt@depth"], "id": 312}) == {
        "result": None,
        "id": 312,
    }
    assert ask(s, {"method": "LIST_SUBSCRIPTIONS", "id": 3}) == {"result": ["btcusdt@aggTrade"], "id": 3}


def test_set_and_get_property() -> None:
    """SET_PROPERTY combined true then GET_PROPERTY answers true."""
    s = Session(False, 1024)
    assert ask(s, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}) == {"result": False, "id": 2}
    assert ask(s, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}) == {
        "result": None,
        "id": 5,
    }
    assert ask(s, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}) == {"result": True, "id": 2}


def test_string_and_null_ids_are_echoed() -> None:
    """Alphanumeric string ids and null ids are accepted and echoed."""
    s = Session(False, 1024)
    assert ask(s, {"method": "LIST_SUBSCRIPTIONS", "id": "abc123"}) == {"result": [], "id": "abc123"}
    assert ask(s, {"method": "LIST_SUBSCRIPTIONS", "id": None}) == {"result": [], "id": None}


@pytest.mark.parametrize(
    ("message", "code", "msg_start"),
    [
        ({"method": "SET_PROPERTY", "params": ["colour", True], "id": 7}, 0, "Unknown property"),
        ({"method": "GET_PROPERTY", "params": ["nope"], "id": 7}, 0, "Unknown property"),
        (
            {"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 7},
            1,
            "Invalid value type: expected Boolean",
        ),
        (
            {"method": "SUBSCRIBE", "params": ["btcusdt@nonsense"], "id": 7},
            2,
            "Invalid request: invalid stream",
        ),
        ({"method": "SUBSCRIBE", "params": ["BTCUSDT@trade"], "id": 7}, 2, "Invalid request: invalid stream"),
        ({"method": "FROBNICATE", "id": 7}, 2, "Invalid request: unknown variant `FROBNICATE`"),
        ({"params": [], "id": 7}, 2, "Invalid request: missing field `method`"),
        (
            {"method": "GET_PROPERTY", "params": ["combined", 1], "id": 7},
            2,
            "Invalid request: too many parameters",
        ),
        (
            {"method": "GET_PROPERTY", "params": [5], "id": 7},
            2,
            "Invalid request: property name must be a string",
        ),
    ],
)
def test_error_replies(message: dict[str, object], code: int, msg_start: str) -> None:
    """Each documented error comes back wrapped with its code and the request id."""
    reply = ask(Session(False, 1024), message)
    assert reply["id"] == 7
    error = reply["error"]
    assert isinstance(error, dict)
    assert error["code"] == code
    assert str(error["msg"]).startswith(msg_start)


def test_invalid_json_is_code_3_with_position() -> None:
    """Broken JSON answers code 3 with line and column, id null."""
    reply = ask(Session(False, 1024), '{"method": ')
    assert reply["id"] is None
    assert reply["error"] == {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 12"}


def test_bad_id_type_is_code_2() -> None:
    """A float, bool, container, 37-char string or an integer past int64 is refused (code 2, id null)."""
    for bad in (1.5, True, "x" * 37, [1], {"a": 1}, 2**63, -(2**63) - 1):
        reply = ask(Session(False, 1024), {"method": "LIST_SUBSCRIPTIONS", "id": bad})
        assert reply["id"] is None
        assert reply["error"] == {  # type: ignore[comparison-overlap]
            "code": 2, "msg": "Invalid request: request ID must be an unsigned integer"
        }


def test_every_documented_id_form_is_echoed() -> None:
    """Signed 64-bit integers, strings up to 36 chars (UUIDs, hyphens, any text) and null are echoed."""
    forms = (2**63 - 1, -(2**63), -1, 0, str(uuid.uuid4()), "a-b", "x" * 36, "", "id with spaces", None)
    for good in forms:
        reply = ask(Session(False, 1024), {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": good})
        assert reply == {"result": None, "id": good}


def test_stream_limit_is_enforced_atomically() -> None:
    """Subscribing past max_streams fails and adds nothing."""
    s = Session(False, 3, dict.fromkeys(["aaa@trade", "bbb@trade"]))
    reply = ask(s, {"method": "SUBSCRIBE", "params": ["ccc@trade", "ddd@trade"], "id": 1})
    assert reply["error"]["code"] == 2  # type: ignore[index]
    assert list(s.streams) == ["aaa@trade", "bbb@trade"]


def test_unknown_symbol_is_accepted_silently() -> None:
    """A well-formed stream of a symbol that does not exist is accepted."""
    s = Session(False, 1024)
    assert ask(s, {"method": "SUBSCRIBE", "params": ["zzzqqq@trade"], "id": 1}) == {"result": None, "id": 1}


@given(st.text(max_size=200))
def test_handle_never_raises(text: str) -> None:
    """Any text gets a reply with either result or error, never an exception."""
    reply = Session(False, 1024).handle(text).reply
    assert "id" in reply
    assert ("result" in reply) != ("error" in reply)


def test_parse_url_forms() -> None:
    """Raw, combined, bare paths and timeUnit are understood."""
    assert parse_url("/ws/btcusdt@trade", {}) == (["btcusdt@trade"], False, False)
    assert parse_url("/ws", {}) == ([], False, False)
    assert parse_url("/stream", {}) == ([], True, False)
    assert parse_url("/stream", {"streams": "a@trade/b@bookTicker", "timeUnit": "microsecond"}) == (
        ["a@trade", "b@bookTicker"],
        True,
        True,
    )
    for path, query in (("/wss", {}), ("/ws/BTC@trade", {}), ("/stream", {"timeUnit": "NANO"})):
        with pytest.raises(ValueError, match=r"."):
            parse_url(path, query)
