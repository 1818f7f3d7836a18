"""Hostile frames over a real WebSocket into a real broker: each invalid frame is dead-lettered
with its reason, and every valid trade is published exactly once (issue 16, "Why" 1-4)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from binance_pipeline.common.events import HDR_REASON
from binance_pipeline.testing.events import combined, trade_frame
from binance_pipeline.testing.helpers import Topics, read_all, wait_for
from binance_pipeline.testing.stages import start_ingestion

VALID = 20
# The script's clock, set when the test starts (not at import: inside the whole suite the module is
# imported many minutes before it runs, and trades that old are rightly outside INGESTION_TIME_WINDOW_S).
CLOCK = {"now_us": time.time_ns() // 1000}


def live_trade(ident: int, **change: Any) -> dict[str, Any]:
    """The kit's trade frame, on the script's clock."""
    return trade_frame(ident, at=CLOCK["now_us"] + ident, **change)


def rest_row(ident: int) -> dict[str, Any]:
    t = live_trade(ident)
    return {"id": ident, "price": t["p"], "qty": t["q"], "quoteQty": "1", "time": t["T"],
            "isBuyerMaker": t["m"], "isBestMatch": True}  # fmt: skip


def hostile() -> list[tuple[bytes, bool, str]]:
    """(frame, binary, reason the dead letter must carry), on the script's clock."""
    return [
        (b'{"stream":"btcusdt@trade","data":' + orjson.dumps(live_trade(8))[:-1] + b',"t":500008}}', False,
         "duplicate key 't'"),
        (combined(live_trade(9, s="XRPUSDT")), False, "'xrpusdt@trade' was not subscribed"),
        (combined(live_trade(9, p="0")), False, "p: Value error, must be positive"),
        (combined(live_trade(9, q="0.00000000")), False, "q: Value error, must be positive"),
        (combined(live_trade(9, T=1_000, E=1_000)), False, "trade time 1000000 us"),
        (combined(live_trade(9, T=9_999_999_999_000_000)), False, "from the receipt time"),
        (combined(live_trade(9)), True, "binary frame"),
        (orjson.dumps(live_trade(9)), False, "bare payload without the combined-stream envelope"),
        (combined(live_trade(9, p="1" * 80)), False, "p: String should match pattern"),
        (b'{"id":1,"result":null}', False, "matches no pending request"),
        (b'{"id":1,"error":{"code":2,"msg":"Invalid request"}}', False, "matches no pending request"),
        (orjson.dumps({**live_trade(9), "id": 1, "result": None}), False, "matches no pending request"),
        (combined(live_trade(500_010)), False, "implausible id jump to 500010 not confirmed"),
    ]  # fmt: skip


def script() -> list[tuple[bytes, bool]]:
    """Valid trades 1..VALID with the hostile frames between trades 7 and 8."""
    frames = [(combined(live_trade(i)), False) for i in range(1, 8)]
    frames += [(raw, binary) for raw, binary, _ in hostile()]
    return frames + [(combined(live_trade(i)), False) for i in range(8, VALID + 1)]


async def ws_handler(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    for raw, binary in script():
        await (ws.send_bytes(raw) if binary else ws.send_str(raw.decode()))
    async for _ in ws:  # keep it open (the client pings) until the client leaves
        pass
    return ws


async def rest_handler(request: web.Request) -> web.Response:
    start, limit = int(request.query["fromId"]), int(request.query["limit"])
    rows = [rest_row(i) for i in range(max(start, 1), min(start + limit, VALID + 1))]
    return web.json_response(rows)


class FakeExchange:
    """A scripted WebSocket and REST server on a port of this helper's range (20000-20099)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        app = web.Application()
        app.router.add_get("/stream", ws_handler)
        app.router.add_get("/api/v3/historicalTrades", rest_handler)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        for port in range(20000, 20100):
            try:
                self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", port).start())
            except OSError:
                continue
            self.port = port
            break
        ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def fake_exchange() -> Iterator[FakeExchange]:
    CLOCK["now_us"] = time.time_ns() // 1000
    server = FakeExchange()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_hostile_frames_are_dead_lettered_and_valid_trades_published_once(
    fake_exchange: FakeExchange, kafka_bootstrap: str, topics: Topics
) -> None:
    """Each hostile frame is in the dead-letter topic with its reason; trades 1..20 are published once."""
    frames = hostile()
    base = f"127.0.0.1:{fake_exchange.port}"
    ing = start_ingestion({
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "BINANCE_WS_URL": f"ws://{base}",
        "BINANCE_REST_URL": f"http://{base}", "SYMBOLS": "BTCUSDT", "STREAM_TYPES": "trade", **topics.env(),
        "WS_STALL_TIMEOUT_S": "300",  # the script goes quiet after its last frame: no stall here
    })  # fmt: skip
    try:
        published: Callable[[], bool] = lambda: ing.metric("ingestion_events_published") >= VALID  # noqa: E731
        wait_for(published, 90, f"{VALID} trades acknowledged")
        wait_for(lambda: ing.metric("ingestion_events_rejected") >= len(frames), 10, "every rejection")
        trades = read_all(kafka_bootstrap, [topics.trades])
        assert sorted(r.json()["id"] for r in trades) == list(range(1, VALID + 1))
        assert all(r.json()["price"] == f"{67000 + r.json()['id']}.50" for r in trades)
        dead = read_all(kafka_bootstrap, [topics.dead_letter])
        assert sorted(r.value for r in dead) == sorted(raw for raw, _, _ in frames)
        reasons = {r.value: r.headers[HDR_REASON].decode() for r in dead}
        for raw, _, why in frames:
            assert why in reasons[raw], (why, reasons[raw])
        assert read_all(kafka_bootstrap, [topics.gaps], idle_s=1) == []
        assert ing.metric("ingestion_jump_checks") == 2  # the first id, and the jump to 500010
        assert ing.metric("ingestion_connects", outcome="ok") == 1
    finally:
        assert ing.stop() == 0
