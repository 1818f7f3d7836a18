"""Replayed depth: recorded depthUpdates played as recorded, the inline snapshot served, the truth rebuilt."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import websockets

from exchange_sim.depth import DEPTH_100MS
from exchange_sim.replay import Recorded, RecordedSnapshot, read_with_depth
from exchange_sim.testing import start_simulator

from .conftest import http

FILE = "hftbacktest_spot_btcusdt_20240808.gz"


def recorded(data_dir: Path) -> tuple[list[Any], Any]:
    """The file's depth payloads and its one inline snapshot, read with plain json."""
    depth, snapshot = [], None
    with gzip.open(data_dir / FILE, "rt") as lines:
        for line in lines:
            message = json.loads(line.partition(" ")[2])
            if "lastUpdateId" in message:
                snapshot = message
            elif message["stream"] == "btcusdt@depth@100ms":
                depth.append(message["data"])
    return depth, snapshot


def test_reader_yields_depth_and_the_snapshot_in_file_order(data_dir: Path) -> None:
    """read_with_depth: 3451 depth@100ms events and one BTCUSDT snapshot, after the 7th line."""
    records = list(read_with_depth(data_dir / FILE))
    depth = [r for r in records if isinstance(r, Recorded) and r.event.kind == DEPTH_100MS]
    snaps = [(i, r) for i, r in enumerate(records) if isinstance(r, RecordedSnapshot)]
    assert len(depth) == 3451 and len(snaps) == 1
    index, snap = snaps[0]
    assert index == 7 and snap.symbol == "BTCUSDT" and snap.book.update_id == 50093239218
    assert depth[0].event.body["U"] == 50093239189 and depth[0].event.stream == "btcusdt@depth@100ms"


def test_replay_plays_depth_and_serves_the_inline_snapshot(data_dir: Path) -> None:
    """Frames equal to the recording; /api/v3/depth is its snapshot; /control/book the procedure's book."""
    depth, snapshot = recorded(data_dir)
    args = ("--source", "replay", "--replay-file", str(data_dir / FILE), "--speed", "0",
            "--start-delay", "0.2")  # fmt: skip
    with start_simulator(*args) as s:

        async def main() -> list[Any]:
            async with websockets.connect(s.ws_url + "/ws/btcusdt@depth@100ms", max_queue=None) as ws:
                return [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(len(depth))]

        assert asyncio.run(main()) == depth
        status, _, served = http(s.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=5000")
        assert status == 200 and served == snapshot
        stats = s.stats()["depth"]["BTCUSDT"]["depth@100ms"]
        assert (stats["generated"], stats["sent"], stats["first_U"], stats["last_u"]) == (
            len(depth), len(depth), depth[0]["U"], depth[-1]["u"])  # fmt: skip
        local = {"bids": dict(snapshot["bids"]), "asks": dict(snapshot["asks"])}
        for event in (e for e in depth if e["u"] > snapshot["lastUpdateId"]):
            for side, rows in (("bids", event["b"]), ("asks", event["a"])):
                for price, qty in rows:
                    local[side][price] = qty
        at = depth[-1]["u"]
        status, _, truth = http(f"{s.control_url}/book?symbol=BTCUSDT&u={at}")
        want = {side: {p: q for p, q in rows.items() if q != "0.00000000"} for side, rows in local.items()}
        assert status == 200 and truth["lastUpdateId"] == at
        assert (dict(truth["bids"]), dict(truth["asks"])) == (want["bids"], want["asks"])
        assert http(f"{s.control_url}/book?symbol=BTCUSDT&u={snapshot['lastUpdateId'] - 1}")[0] == 404
