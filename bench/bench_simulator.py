"""Benchmark: events per second the simulator delivers to ONE WebSocket connection.

Runs the simulator as a subprocess (``exchange_sim.testing.start_simulator``) and a minimal
raw-socket WebSocket client in this process that parses frame headers and decodes every
payload with orjson, checking that trade ids arrive consecutively. Prints a summary and
writes ``bench/results/bench_simulator.json``. Goal: >= 50,000 events/s to one connection.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path

import orjson

from exchange_sim.testing import start_simulator

GOAL = 50_000
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
RATE = os.environ.get("BENCH_RATE", "120000")


async def count_frames(ws_url: str, seconds: float) -> tuple[int, int, int]:
    """Receive for ``seconds``; return (events, bytes, trade-id gaps)."""
    host, port = ws_url.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 22)
    key = base64.b64encode(os.urandom(16)).decode()
    path = "/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@bookTicker"
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    events = nbytes = gaps = 0
    last_t = None
    buf = b""
    start = None
    deadline = None
    while True:
        chunk = await reader.read(1 << 20)
        if not chunk:
            break
        if start is None:
            start = time.perf_counter()
            deadline = start + seconds
        nbytes += len(chunk)
        buf += chunk
        pos, size = 0, len(buf)
        while size - pos >= 2:
            opcode, length = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if size - pos < head + length:
                break
            payload = buf[pos + head : pos + head + length]
            pos += head + length
            if opcode == 0x9:  # ping: answer with a masked pong
                writer.write(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
                continue
            if opcode != 0x1:
                continue
            message = orjson.loads(payload)
            events += 1
            data = message["data"]
            if data.get("e") == "trade":
                if last_t is not None and data["t"] != last_t + 1:
                    gaps += 1
                last_t = data["t"]
        buf = buf[pos:]
        if deadline is not None and time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - (start or time.perf_counter())
    writer.close()
    return events, nbytes, gaps if elapsed else 0


def main() -> None:
    """Run the benchmark and write its JSON result."""
    with start_simulator("--symbols", "BTCUSDT", "--rate", RATE, "--start-delay", "0.2") as sim:
        t0 = time.perf_counter()
        events, nbytes, gaps = asyncio.run(count_frames(sim.ws_url, SECONDS))
        elapsed = time.perf_counter() - t0 - 0.2
        stats = sim.stats()["symbols"]["BTCUSDT"]
    rate = events / max(elapsed, 1e-9)
    figures = {
        "events_per_sec": round(rate),
        "events": events,
        "seconds": round(elapsed, 2),
        "mbytes_per_sec": round(nbytes / max(elapsed, 1e-9) / 1e6, 2),
        "trade_id_gaps": gaps,
        "configured_rate": float(RATE),
        "generated_trades": stats["trade"]["generated"],
    }
    met = rate >= GOAL and gaps == 0
    print(
        f"simulator -> 1 connection: {rate:,.0f} events/s over {elapsed:.1f}s "
        f"({figures['mbytes_per_sec']} MB/s, {gaps} trade-id gaps); "
        f"goal >= {GOAL:,}: {'met' if met else 'NOT met'}"
    )
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    result = {
        "name": "bench_simulator",
        "figures": figures,
        "goal": f">= {GOAL} events/s to one connection, no trade-id gaps",
        "met": met,
    }
    (out / "bench_simulator.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
