"""The bare ingestion baseline: websockets receive + orjson parse + confluent-kafka produce, nothing
else (no validation, no sequencing, no replay window, no receipt stamp).

Run by ``bench.bench_ingestion`` as its own process, so its CPU time is measured the way
ingestion's is: ``python -m bench.bare_ingest URL TRADES_TOPIC,BOOK_TOPIC EVENTS BOOTSTRAP``.
It receives ``EVENTS`` frames, produces each event (the combined stream's ``data``, encoded
again, keyed by symbol; a bookTicker to the second topic, the rest to the first, as ingestion
does) with ingestion's producer settings, waits for every acknowledgement, and prints one JSON line: events,
seconds from the first frame to the last acknowledgement, CPU seconds over that span.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time

import orjson
from confluent_kafka import Producer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from binance_pipeline.common.settings import Settings
from ingestion.producer_slot import producer_config

QUIET_S = 5.0


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(url: str, topics: str, events: int, bootstrap: str) -> dict[str, float]:
    trades, book = topics.split(",")
    producer = Producer(producer_config(Settings(kafka_bootstrap_servers=bootstrap)))
    acked = [0]

    def done(err: object, _msg: object) -> None:
        if err is None:
            acked[0] += 1

    got = [0]

    async def watchdog(ws: ClientConnection) -> None:
        """Close the socket once no frame came for QUIET_S (the simulator sent fewer than asked)."""
        seen = -1
        while seen != got[0]:
            seen = got[0]
            await asyncio.sleep(QUIET_S)
        await ws.close()

    async with connect(url, compression=None, max_size=1 << 20, max_queue=1024) as ws:
        raw: bytes | str = await ws.recv(decode=False)
        start, cpu0 = time.perf_counter(), cpu()
        guard = asyncio.create_task(watchdog(ws))
        try:
            while True:
                data = orjson.loads(raw)["data"]
                while True:
                    try:
                        topic = book if "u" in data else trades
                        producer.produce(topic, orjson.dumps(data), data["s"], on_delivery=done)
                        break
                    except BufferError:
                        producer.poll(0.01)
                got[0] += 1
                if not got[0] & 255:
                    producer.poll(0)
                if got[0] == events:
                    break
                raw = await ws.recv(decode=False)
        except ConnectionClosed:
            pass
        guard.cancel()
    left = producer.flush(120)
    return {"events": acked[0], "left": left, "seconds": time.perf_counter() - start, "cpu_s": cpu() - cpu0}


def main() -> int:
    url, topic, events, bootstrap = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    print(orjson.dumps(asyncio.run(run(url, topic, events, bootstrap))).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
