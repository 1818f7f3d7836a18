"""WebSocket behaviour against a real simulator subprocess."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from exchange_sim.testing import SimProcess, start_simulator

from .conftest import RawWs

FAST = ("--symbols", "BTCUSDT,ETHUSDT", "--rate", "400")
TRADE_KEYS = ["e", "E", "s", "t", "p", "q", "T", "m", "M"]
AGG_KEYS = ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"]
BOOK_KEYS = ["u", "s", "b", "B", "a", "A"]


@pytest.fixture(scope="module")
def fast_sim() -> Iterator[SimProcess]:
    """One simulator with the FAST options, shared by the tests that each open their own connections."""
    with start_simulator(*FAST) as s:
        yield s


async def take(ws: Any, count: int) -> list[Any]:
    return [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(count)]


def test_payload_shapes_raw_and_combined(fast_sim: SimProcess) -> None:
    """Raw streams arrive bare, combined ones wrapped; each kind has Binance's keys and types."""
    s = fast_sim

    async def main() -> None:
        async with websockets.connect(s.ws_url + "/ws/btcusdt@trade") as raw:
            body = (await take(raw, 1))[0]
            assert list(body) == TRADE_KEYS
            assert isinstance(body["p"], str) and len(body["p"].split(".")[1]) == 8
            assert isinstance(body["t"], int) and isinstance(body["m"], bool)
        url = s.ws_url + "/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@bookTicker"
        async with websockets.connect(url) as comb:
            seen: dict[str, list[str]] = {}
            while len(seen) < 3:
                message = (await take(comb, 1))[0]
                assert list(message) == ["stream", "data"]
                seen[message["stream"]] = list(message["data"])
        assert seen == {
            "btcusdt@trade": TRADE_KEYS,
            "btcusdt@aggTrade": AGG_KEYS,
            "btcusdt@bookTicker": BOOK_KEYS,
        }

    asyncio.run(main())


def test_time_unit_microsecond(fast_sim: SimProcess) -> None:
    """?timeUnit=MICROSECOND gives 16-digit E and T."""
    s = fast_sim

    async def main() -> None:
        async with websockets.connect(s.ws_url + "/ws/btcusdt@trade?timeUnit=MICROSECOND") as ws:
            body = (await take(ws, 1))[0]
            assert len(str(body["E"])) == 16 and len(str(body["T"])) == 16

    asyncio.run(main())


def test_live_subscription_on_bare_paths(fast_sim: SimProcess) -> None:
    """Bare /ws and /stream accept SUBSCRIBE; combined property differs; replies are exact."""
    s = fast_sim

    async def main() -> None:
        for path, combined in (("/ws", False), ("/stream", True)):
            async with websockets.connect(s.ws_url + path) as ws:
                await ws.send('{"method":"GET_PROPERTY","params":["combined"],"id":2}')
                assert (await take(ws, 1))[0] == {"result": combined, "id": 2}
                await ws.send('{"method":"SUBSCRIBE","params":["ethusdt@aggTrade"],"id":1}')
                assert (await take(ws, 1))[0] == {"result": None, "id": 1}
                event = (await take(ws, 1))[0]
                data = event["data"] if combined else event
                assert data["e"] == "aggTrade" and data["s"] == "ETHUSDT"
                await ws.send('{"method":"SUBSCRIBE","params":["ethusdt@bogus"],"id":9}')
                reply = None
                while reply is None or "id" not in reply:
                    reply = (await take(ws, 1))[0]
                assert reply == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 9}

    asyncio.run(main())


def test_uuid_request_id_subscribes_like_the_official_sdk(fast_sim: SimProcess) -> None:
    """A SUBSCRIBE with a uuid4 string id (as Binance's SDK sends) is answered and streams all three kinds."""
    s = fast_sim
    request_id = str(uuid.uuid4())
    streams = ["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker"]

    async def main() -> None:
        async with websockets.connect(s.ws_url + "/stream") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": request_id}))
            assert (await take(ws, 1))[0] == {"result": None, "id": request_id}
            seen: set[str] = set()
            while seen != set(streams):
                seen.add((await take(ws, 1))[0]["stream"])

    asyncio.run(main())


@pytest.mark.slow  # waits on the simulator's real end of stream (1.5 s of silence per connection)
def test_two_connections_get_identical_sequences(sim: Callable[..., SimProcess]) -> None:
    """Two overlapping connections receive the same events in the same order."""
    s = sim("--symbols", "BTCUSDT,ETHUSDT", "--rate", "300", "--max-trades", "60", "--start-delay", "0.3")
    url = s.ws_url + "/stream?streams=btcusdt@trade/btcusdt@aggTrade/ethusdt@trade/ethusdt@bookTicker"

    async def collect(ws: Any) -> list[bytes]:
        frames = []
        try:
            while True:
                frames.append(await asyncio.wait_for(ws.recv(), 1.5))
        except TimeoutError:
            return frames

    async def main() -> None:
        async with websockets.connect(url) as a, websockets.connect(url) as b:
            first, second = await asyncio.gather(collect(a), collect(b))
        assert len(first) > 100
        assert first == second

    asyncio.run(main())
    stats = s.stats()
    assert stats["done"] is True
    assert stats["symbols"]["BTCUSDT"]["trade"]["generated"] == 60


@pytest.mark.slow  # waits on the simulator's real ping/pong timers (~3 s)
def test_pong_timeout_disconnects_silent_client(sim: Callable[..., SimProcess]) -> None:
    """A client that never answers pings is closed after the pong timeout; one that does stays."""
    s = sim(*FAST, "--ping-interval", "0.3", "--pong-timeout", "0.7")

    async def main() -> None:
        silent = await RawWs.connect(s.ws_url, "/ws")
        loop = asyncio.get_running_loop()
        opened, pings = loop.time(), 0
        while True:
            opcode, _ = await silent.recv(3)
            if opcode == 9:
                pings += 1
            elif opcode in (8, -1):
                break
        assert pings >= 2
        assert 0.6 <= loop.time() - opened < 2.0
        await silent.close()
        async with websockets.connect(s.ws_url + "/ws/btcusdt@trade") as polite:
            end = loop.time() + 1.5
            while loop.time() < end:  # keep reading: websockets answers pings as it reads
                await asyncio.wait_for(polite.recv(), 1)
            await polite.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
            reply = None
            while reply is None or "id" not in reply:
                reply = json.loads(await asyncio.wait_for(polite.recv(), 3))
            assert reply == {"result": ["btcusdt@trade"], "id": 1}

    asyncio.run(main())


@pytest.mark.slow  # waits on the simulator's real pong timeout (~1 s)
def test_unsolicited_pongs_do_not_keep_alive(sim: Callable[..., SimProcess]) -> None:
    """Pongs with a payload that echoes no ping do not prevent the pong-timeout cut."""
    s = sim(*FAST, "--ping-interval", "0.2", "--pong-timeout", "0.6")

    async def main() -> None:
        ws = await RawWs.connect(s.ws_url, "/ws")
        loop = asyncio.get_running_loop()
        opened = loop.time()
        while True:
            opcode, _ = await ws.recv(3)
            if opcode == 9:
                ws.send(0xA, b"unsolicited")
            elif opcode in (8, -1):
                break
        assert loop.time() - opened < 2.0
        await ws.close()

    asyncio.run(main())


@pytest.mark.slow  # waits on the simulator's real connection lifetime (~1.5 s per case)
@pytest.mark.parametrize(
    ("path", "first"),
    [
        ("/ws/btcusdt@trade", {"e": "serverShutdown"}),
        ("/stream?streams=btcusdt@trade", {"stream": "!serverShutdown"}),
    ],
)
def test_lifetime_cut_after_server_shutdown(
    sim: Callable[..., SimProcess], path: str, first: dict[str, str]
) -> None:
    """serverShutdown arrives shutdown-notice before max-lifetime; then the server closes."""
    s = sim(*FAST, "--max-lifetime", "1.2", "--shutdown-notice", "0.5")

    async def main() -> None:
        ws = await RawWs.connect(s.ws_url, path)
        loop = asyncio.get_running_loop()
        opened, notice_at = loop.time(), None
        while True:
            opcode, payload = await ws.recv(3)
            if opcode == 1:
                message = json.loads(payload)
                if "serverShutdown" in payload.decode():
                    assert all(message[k] == v for k, v in first.items())
                    data = message.get("data", message)
                    assert data["e"] == "serverShutdown" and len(str(data["E"])) == 13
                    notice_at = loop.time() - opened
            elif opcode == 9:
                ws.send(0xA, payload)
            elif opcode in (8, -1):
                closed_at = loop.time() - opened
                break
        assert notice_at is not None and 0.6 <= notice_at < 1.0
        assert 1.0 <= closed_at < 1.8
        assert opcode == 8 and int.from_bytes(payload[:2], "big") == 1001
        await ws.close()

    asyncio.run(main())


def test_incoming_message_limit(sim: Callable[..., SimProcess]) -> None:
    """More than --max-incoming-per-sec messages in a second closes the connection (1008)."""
    s = sim(*FAST, "--max-incoming-per-sec", "5")

    async def main() -> None:
        async with websockets.connect(s.ws_url + "/ws") as ws:
            for i in range(5):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            assert [json.loads(await ws.recv())["id"] for _ in range(5)] == [0, 1, 2, 3, 4]
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":99}')
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 3)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008

    asyncio.run(main())


def test_stream_and_attempt_limits(sim: Callable[..., SimProcess]) -> None:
    """--max-streams caps subscriptions; --max-conn-attempts answers 429 past the budget."""
    s = sim(*FAST, "--max-streams", "2", "--max-conn-attempts", "3", "--conn-window", "30")

    async def main() -> None:
        async with websockets.connect(s.ws_url + "/stream?streams=btcusdt@trade") as ws:
            await ws.send('{"method":"SUBSCRIBE","params":["a1@trade","a2@trade"],"id":1}')
            reply = None
            while reply is None or "id" not in reply:
                reply = json.loads(await ws.recv())
            assert reply["error"]["code"] == 2
        statuses = []
        for _ in range(3):
            raw = await RawWs.connect(s.ws_url, "/ws/a@trade/b@trade/c@trade")
            statuses.append(raw.status)
            await raw.close()
        assert statuses == [400, 400, 429]

    asyncio.run(main())
