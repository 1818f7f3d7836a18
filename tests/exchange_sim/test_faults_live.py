"""Each fault does what it says, against a real simulator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from exchange_sim.testing import SimProcess, start_simulator

from .conftest import RawWs, http

ARGS = ("--symbols", "BTCUSDT", "--rate", "500")


async def bodies(ws: Any, seconds: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    end = asyncio.get_running_loop().time() + seconds
    try:
        while True:
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                return out
            out.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
    except TimeoutError:
        return out


async def first_bodies(ws: Any, count: int) -> list[dict[str, Any]]:
    """The next ``count`` messages, as soon as they arrive (not a fixed window); 5 s at most each."""
    return [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(count)]


@pytest.fixture(scope="module")
def malformed_sim() -> Iterator[SimProcess]:
    """One simulator for the malformed-frame kinds: each test opens its own connection."""
    with start_simulator(*ARGS, "--oversized-bytes", "200000") as s:
        yield s


def test_disconnect_is_abrupt(sim: Callable[..., SimProcess]) -> None:
    """POST /control/disconnect drops every connection without a close frame."""
    s = sim(*ARGS)

    async def main() -> None:
        async with websockets.connect(s.ws_url + "/ws/btcusdt@trade") as ws:
            await ws.recv()
            assert (await asyncio.to_thread(s.control, "disconnect"))["closed"] == 1
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(ws.recv(), 3)
            assert info.value.rcvd is None

    asyncio.run(main())


@pytest.mark.slow  # reads the stream for 3 s to be sure nothing dropped arrives late
def test_drop_makes_a_gap_rest_still_holds(sim: Callable[..., SimProcess]) -> None:
    """Dropped trades are missing from the stream but present in REST."""
    s = sim(
        *ARGS,
        "--max-trades",
        "300",
        "--start-delay",
        "0.5",
        "--fault",
        '0:drop:{"symbol":"BTCUSDT","share":1.0,"count":40}',
    )

    async def main() -> list[dict[str, Any]]:
        async with websockets.connect(s.ws_url + "/ws/btcusdt@trade") as ws:
            return await bodies(ws, 3.0)

    trades = asyncio.run(main())
    stats = s.stats()["symbols"]["BTCUSDT"]
    dropped = sum(st["dropped"] for st in stats.values())
    assert dropped == 40
    assert len(trades) == 300 - stats["trade"]["dropped"]
    first = stats["trade"]["first_id"]
    assert trades[0]["t"] > first
    _, _, rest = http(f"{s.rest_url}/api/v3/historicalTrades?symbol=BTCUSDT&fromId={first}&limit=1000")
    assert [r["id"] for r in rest] == list(range(first, first + 300))


def test_duplicates(sim: Callable[..., SimProcess]) -> None:
    """The next `count` events of the symbol are each sent twice in a row."""
    s = sim(*ARGS, "--start-delay", "0.5", "--fault", '0:duplicates:{"symbol":"BTCUSDT","count":10}')

    async def main() -> list[dict[str, Any]]:
        async with websockets.connect(
            s.ws_url + "/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@bookTicker"
        ) as ws:
            return await first_bodies(ws, 22)

    messages = asyncio.run(main())
    assert messages[0:20:2] == messages[1:20:2]
    assert messages[20] != messages[21]


@pytest.mark.slow  # waits out a real 1 s stall
def test_stall_then_resume(sim: Callable[..., SimProcess]) -> None:
    """A stalled connection receives nothing (no data, no pings) for the stall, then resumes with a gap."""
    s = sim(*ARGS, "--ping-interval", "0.2", "--pong-timeout", "5")

    async def main() -> None:
        ws = await RawWs.connect(s.ws_url, "/ws/btcusdt@trade")
        await ws.recv_text()
        await asyncio.to_thread(s.control, "stall", {"seconds": 1.0})
        await asyncio.sleep(0.05)
        while True:  # drain what was in flight
            try:
                await ws.recv(0.2)
            except TimeoutError:
                break
        started = time.monotonic()
        opcode, _ = await ws.recv(3)
        assert time.monotonic() - started > 0.6
        assert opcode in (1, 9)
        await ws.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    "kind", ["invalid_json", "wrong_types", "missing_fields", "unknown_event", "oversized", "invalid_utf8"]
)
def test_malformed_frames(malformed_sim: SimProcess, kind: str) -> None:
    """Each malformed kind reaches the client as a text frame with the stated defect."""
    s = malformed_sim

    async def main() -> None:
        ws = await RawWs.connect(s.ws_url, "/ws/btcusdt@trade")
        await ws.recv_text()
        await asyncio.to_thread(s.control, "malformed", {"kind": kind, "count": 2})
        bad = []
        while len(bad) < 2:
            opcode, payload = await ws.recv()
            assert opcode in (1, 9)
            try:
                body = json.loads(payload.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                bad.append((kind, payload))
                continue
            if body.get("e") != "trade" or not isinstance(body.get("t"), int) or "p" not in body:
                bad.append((kind, payload))
        for _, payload in bad:
            if kind == "invalid_utf8":
                with pytest.raises(UnicodeDecodeError):
                    payload.decode("utf-8")
            elif kind == "invalid_json":
                with pytest.raises(ValueError, match=r"."):
                    json.loads(payload)
            elif kind == "oversized":
                assert len(payload) >= 200000
            elif kind == "unknown_event":
                assert json.loads(payload)["e"] == "mysteryEvent"
            elif kind == "missing_fields":
                assert "t" not in json.loads(payload)
            else:
                assert isinstance(json.loads(payload)["t"], str)
        await ws.close()

    asyncio.run(main())


def test_refuse_new_connections(sim: Callable[..., SimProcess]) -> None:
    """While refusing, the upgrade is answered 503; afterwards connections work again."""
    s = sim(*ARGS)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(s.control, "refuse", {"seconds": 0.5})
        refused_at = loop.time()
        ws = await RawWs.connect(s.ws_url, "/ws/btcusdt@trade")
        assert ws.status == 503
        await ws.close()
        while ws.status == 503 and loop.time() < refused_at + 5:  # poll until the window is over
            await asyncio.sleep(0.05)
            ws = await RawWs.connect(s.ws_url, "/ws/btcusdt@trade")
            await ws.close()
        assert ws.status == 101
        assert loop.time() - refused_at >= 0.4

    asyncio.run(main())


def test_pause_resume_and_bad_control_body(sim: Callable[..., SimProcess]) -> None:
    """Pause stops generation, resume restarts it; a bad body is a 400."""
    s = sim(*ARGS)
    s.control("pause")
    time.sleep(0.1)
    before = s.stats()["symbols"]["BTCUSDT"]["bookTicker"]["generated"]
    time.sleep(0.3)
    assert s.stats()["symbols"]["BTCUSDT"]["bookTicker"]["generated"] == before
    s.control("resume")
    deadline = time.monotonic() + 5
    while (after := s.stats()["symbols"]["BTCUSDT"]["bookTicker"]["generated"]) == before:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert after > before
    status, _, body = http(s.control_url + "/drop", data=b'{"symbol":"NOPE","count":1}')
    assert status == 400 and "symbol" in body["error"]
