"""REST endpoints against a real simulator: exact history, errors, weights."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import websockets

from exchange_sim.testing import SimProcess

from .conftest import http


def wait_done(s: SimProcess, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats: dict[str, Any] = s.stats()
        if stats["done"]:
            return stats
        time.sleep(0.05)
    raise AssertionError("simulator never finished")


@pytest.mark.slow  # streams 2,500 trades and reads until 1 s of silence, then pages through REST (~4 s)
def test_rest_serves_exactly_the_streamed_history(sim: Callable[..., SimProcess]) -> None:
    """Paging aggTrades by fromId and by time range, and trades by fromId, gives the streamed events."""
    s = sim("--symbols", "BTCUSDT", "--rate", "3000", "--max-trades", "2500", "--start-delay", "0.2")
    streamed: dict[str, list[dict[str, Any]]] = {"trade": [], "aggTrade": []}

    async def main() -> None:
        async with websockets.connect(s.ws_url + "/ws/btcusdt@trade/btcusdt@aggTrade") as ws:
            try:
                while True:
                    body = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                    streamed[body["e"]].append(body)
            except TimeoutError:
                pass

    asyncio.run(main())
    stats = wait_done(s)
    assert len(streamed["trade"]) == stats["symbols"]["BTCUSDT"]["trade"]["generated"] == 2500
    base = s.rest_url + "/api/v3"
    aggs, from_id = [], streamed["aggTrade"][0]["a"]
    while True:
        status, headers, page = http(f"{base}/aggTrades?symbol=BTCUSDT&fromId={from_id}&limit=1000")
        assert status == 200 and "X-MBX-USED-WEIGHT-1M" in headers
        if not page:
            break
        aggs += page
        from_id = page[-1]["a"] + 1
    expected = [{k: b[k] for k in ("a", "p", "q", "f", "l", "T", "m", "M")} for b in streamed["aggTrade"]]
    assert aggs == expected
    start, end = expected[10]["T"], expected[-10]["T"]
    by_time, cursor = [], start
    while True:
        _, _, page = http(f"{base}/aggTrades?symbol=BTCUSDT&startTime={cursor}&endTime={end}&limit=1000")
        page = [row for row in page if not by_time or row["a"] > by_time[-1]["a"]]
        if not page:
            break
        by_time += page
        cursor = page[-1]["T"]
    assert by_time == [row for row in expected if start <= row["T"] <= end]
    trades, from_id = [], streamed["trade"][0]["t"]
    while True:
        _, _, page = http(f"{base}/historicalTrades?symbol=BTCUSDT&fromId={from_id}&limit=1000")
        if not page:
            break
        trades += page
        from_id = page[-1]["id"] + 1
    assert [(t["id"], t["price"], t["qty"], t["time"], t["isBuyerMaker"]) for t in trades] == [
        (b["t"], b["p"], b["q"], b["T"], b["m"]) for b in streamed["trade"]
    ]
    _, _, recent = http(f"{base}/trades?symbol=BTCUSDT&limit=5")
    assert [t["id"] for t in recent] == [b["t"] for b in streamed["trade"][-5:]]


def test_rest_error_bodies(sim: Callable[..., SimProcess]) -> None:
    """Bad parameters get Binance's codes with HTTP 400."""
    s = sim("--symbols", "BTCUSDT", "--rate", "50")
    base = s.rest_url + "/api/v3"
    cases = {
        "/aggTrades": -1102,
        "/aggTrades?symbol=btc$usdt": -1100,
        "/aggTrades?symbol=NOPEUSDT": -1121,
        "/aggTrades?symbol=BTCUSDT&fromId=1&startTime=2": -1128,
        "/aggTrades?symbol=BTCUSDT&limit=abc": -1100,
        "/aggTrades?symbol=BTCUSDT&limit=1001": -1100,
        "/aggTrades?symbol=BTCUSDT&symbol=BTCUSDT": -1101,
        "/aggTrades?symbol=BTCUSDT&colour=red": -1104,
        "/historicalTrades?symbol=BTCUSDT&fromId=-5": -1100,
        "/trades?symbol=": -1102,
    }
    for path, code in cases.items():
        status, _, body = http(base + path)
        assert status == 400, path
        assert body["code"] == code, path
        assert isinstance(body["msg"], str) and body["msg"], path
    assert http(base + "/ping")[2] == {}
    assert abs(http(base + "/time")[2]["serverTime"] - time.time() * 1000) < 5000
    info = http(base + "/exchangeInfo?symbol=BTCUSDT")[2]
    assert info["symbols"][0]["symbol"] == "BTCUSDT"
    assert info["symbols"][0]["filters"][0]["tickSize"] == "0.01000000"


def test_weight_limit_429_then_418(sim: Callable[..., SimProcess]) -> None:
    """Past the weight limit: 429 with Retry-After; continued abuse: 418."""
    s = sim(
        "--symbols",
        "BTCUSDT",
        "--rate",
        "50",
        "--weight-limit",
        "60",
        "--weight-window",
        "30",
        "--ban-after",
        "2",
        "--ban-seconds",
        "60",
    )
    url = s.rest_url + "/api/v3/trades?symbol=BTCUSDT&limit=1"
    answers = [http(url) for _ in range(6)]
    statuses = [a[0] for a in answers]
    assert statuses == [200, 200, 429, 429, 418, 418]
    assert [a[1]["X-MBX-USED-WEIGHT-1M"] for a in answers[:2]] == ["25", "50"]
    assert int(answers[2][1]["Retry-After"]) >= 1
    assert answers[2][2]["code"] == -1003
    assert int(answers[4][1]["Retry-After"]) == 60
