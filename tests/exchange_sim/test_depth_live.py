"""Depth against a real simulator: streams, the local-book procedure, /api/v3/depth, faults, ground truth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from exchange_sim.testing import SimProcess, start_simulator

from .conftest import http

DEPTH_KEYS = ["e", "E", "s", "U", "u", "b", "a"]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    """One synthetic BTCUSDT simulator; a day-long weight window so weight deltas are exact."""
    with start_simulator("--depth", "--symbols", "BTCUSDT", "--rate", "300", "--weight-limit", "1000000",
                         "--weight-window", "86400") as s:  # fmt: skip
        yield s


async def recv(ws: Any) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def next_depth(ws: Any, tickers: dict[int, Any] | None = None) -> Any:
    """The next depthUpdate payload of a combined connection, noting bookTickers on the way."""
    while True:
        message = await recv(ws)
        data = message["data"]
        if data.get("e") == "depthUpdate":
            return data
        if tickers is not None and "A" in data:
            tickers[data["u"]] = data


def book(s: SimProcess, **moment: int) -> Any:
    query = "&".join(f"{k}={v}" for k, v in moment.items())
    return http(f"{s.control_url}/book?symbol=BTCUSDT&{query}")


def apply(local: dict[str, dict[str, str]], event: Any) -> None:
    for side, rows in (("bids", event["b"]), ("asks", event["a"])):
        for price, qty in rows:
            local[side].pop(price, None) if float(qty) == 0 else local[side].__setitem__(price, qty)


def test_local_book_procedure_rebuilds_the_ground_truth(sim: SimProcess) -> None:
    """Buffer, snapshot, apply as Binance documents: the book equals /control/book and bookTicker's top."""
    url = sim.ws_url + "/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker"

    async def main() -> None:
        async with websockets.connect(url) as ws:
            tickers: dict[int, Any] = {}
            buffered = [await next_depth(ws, tickers)]
            status, _, snap = http(sim.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=5000")
            assert status == 200 and list(snap) == ["lastUpdateId", "bids", "asks"]
            assert snap["lastUpdateId"] >= buffered[0]["U"]
            while buffered[-1]["u"] <= snap["lastUpdateId"]:
                buffered.append(await next_depth(ws, tickers))
            events = [e for e in buffered if e["u"] > snap["lastUpdateId"]]
            assert events[0]["U"] <= snap["lastUpdateId"] + 1 <= events[0]["u"]
            local = {"bids": dict(snap["bids"]), "asks": dict(snap["asks"])}
            while len(events) < 8:
                events.append(await next_depth(ws, tickers))
            for before, event in zip([None, *events], events, strict=False):
                assert before is None or event["U"] == before["u"] + 1
                assert list(event) == DEPTH_KEYS
                apply(local, event)
                ticker = tickers[event["u"]]  # one id sequence: the bookTicker at u is this book's top
                best_bid = max(local["bids"], key=float)
                best_ask = min(local["asks"], key=float)
                assert (ticker["b"], ticker["B"]) == (best_bid, local["bids"][best_bid])
                assert (ticker["a"], ticker["A"]) == (best_ask, local["asks"][best_ask])
            status, _, truth = book(sim, u=events[-1]["u"])
            assert status == 200 and truth["lastUpdateId"] == events[-1]["u"]
            assert dict(truth["bids"]) == local["bids"] and dict(truth["asks"]) == local["asks"]

    asyncio.run(main())


def test_depth_goes_only_to_its_subscribers_on_both_speeds(sim: SimProcess) -> None:
    """@depth events come a second apart in ids order; a trade/bookTicker connection never sees depth."""
    plain_url = sim.ws_url + "/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@bookTicker"

    async def main() -> None:
        # max_queue=None: a client holding unread frames otherwise waits 10 s for the close handshake
        async with websockets.connect(sim.ws_url + "/ws/btcusdt@depth", max_queue=None) as slow, \
                websockets.connect(plain_url, max_queue=None) as plain:  # fmt: skip
            first, second = await recv(slow), await recv(slow)
            assert first["e"] == second["e"] == "depthUpdate" and second["U"] == first["u"] + 1
            assert second["E"] // 1000 > first["E"] // 1000  # the next 1000 ms boundary
            seen = [await recv(plain) for _ in range(100)]
            assert {m["stream"] for m in seen} <= {"btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker"}

    asyncio.run(main())
    depth = sim.stats()["depth"]["BTCUSDT"]
    assert set(depth) == {"depth@100ms", "depth"}
    assert depth["depth"]["sent"] >= 2 and depth["depth@100ms"]["generated"] >= depth["depth"]["generated"]
    assert set(sim.stats()["symbols"]["BTCUSDT"]) == {"trade", "aggTrade", "bookTicker"}


def test_depth_limits_and_weights(sim: SimProcess) -> None:
    """limit 1-100 weighs 5, 101-500 25, 501-1000 50, 1001-5000 250; 0 and 5001 are refused (-1100)."""
    base = sim.rest_url + "/api/v3/depth?symbol=BTCUSDT"
    used = int(http(sim.rest_url + "/api/v3/ping")[1]["X-MBX-USED-WEIGHT-1M"])
    for limit, weight in (("", 5), ("&limit=100", 5), ("&limit=101", 25), ("&limit=1000", 50),
                          ("&limit=1001", 250), ("&limit=5000", 250)):  # fmt: skip
        status, headers, body = http(base + limit)
        assert status == 200 and int(headers["X-MBX-USED-WEIGHT-1M"]) == used + weight, limit
        used += weight
    status, _, body = http(base + "&limit=1")
    assert status == 200 and len(body["bids"]) == 1 and len(body["asks"]) == 1
    assert float(body["bids"][0][0]) < float(body["asks"][0][0])
    for bad in ("&limit=0", "&limit=5001"):
        status, _, body = http(base + bad)
        assert status == 400 and body["code"] == -1100, bad
    assert http(sim.rest_url + "/api/v3/depth?symbol=NOPE")[2]["code"] == -1121


def test_dropped_depth_frames_are_a_gap_the_stats_name(sim: SimProcess) -> None:
    """drop_depth count 3: the stream skips exactly the ids /control/stats reports as dropped."""

    async def main() -> tuple[int, int]:
        async with websockets.connect(sim.ws_url + "/stream?streams=btcusdt@depth@100ms") as ws:
            previous = await next_depth(ws)
            sim.control("drop_depth", {"symbol": "BTCUSDT", "count": 3})
            while (event := await next_depth(ws))["U"] == previous["u"] + 1:
                previous = event
            return previous["u"] + 1, event["U"] - 1

    before = sim.stats()["depth"]["BTCUSDT"]["depth@100ms"]
    hole = asyncio.run(main())
    after = sim.stats()["depth"]["BTCUSDT"]["depth@100ms"]
    assert after["dropped"] - before["dropped"] == 3
    assert after["dropped_ranges"][-1] == list(hole)


def test_stale_snapshot_is_older_than_the_stream_then_fresh_again(sim: SimProcess) -> None:
    """stale_snapshot: the next answer is the true book 20 events back; the one after is live again."""
    url = sim.rest_url + "/api/v3/depth?symbol=BTCUSDT"
    fresh = http(url)[2]
    assert sim.control("stale_snapshot", {"symbol": "BTCUSDT", "behind": 20}) == {"ok": True}
    stale = http(url)[2]
    again = http(url)[2]
    assert stale["lastUpdateId"] < fresh["lastUpdateId"] <= again["lastUpdateId"]
    status, _, truth = book(sim, u=stale["lastUpdateId"])
    assert status == 200 and (truth["bids"], truth["asks"]) == (stale["bids"], stale["asks"])
    assert book(sim, u=1)[0] == 404 and book(sim)[0] == 400
