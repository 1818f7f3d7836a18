"""``python -m ingestion.ws_consumer``: Binance streams into Kafka, complete and exact.

Start-up, in order: settings (a bad one exits 2 naming it), SYMBOLS patterns resolved against
exchangeInfo (ingestion.refresh), health server, topics (created when missing; retried while the
broker is unreachable), the last instance's frontier (read in full, ``ingestion.resume``),
producer, its unfinished gaps picked up, then the connections, the producer upkeep, the
backfiller, the frontier writer, the loss ticker and the symbol refresh under one TaskGroup.
Shutdown (SIGINT/SIGTERM): stop reading, close open time gaps, flush the producer within
PRODUCER_FLUSH_TIMEOUT_S, write the frontier, exit 0. A fatal producer error exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from binance_pipeline.common.backoff import Backoff
from binance_pipeline.common.health import HealthServer
from binance_pipeline.common.logs import configure
from binance_pipeline.common.settings import Settings, load_or_exit, settings_epilog
from ingestion.backfill import Backfiller
from ingestion.effects import Effects
from ingestion.errors import TopicSetupError
from ingestion.frontier_store import FrontierWriter
from ingestion.metrics import IngestionMetrics
from ingestion.publisher import Publisher
from ingestion.refresh import UniverseRefresher, resolve_settings
from ingestion.resume import pick_up, probe_quiet, read_frontier, stop_cleanly
from ingestion.supervisor import Supervisor

PROG = "python -m ingestion.ws_consumer"
TICK_S = 0.25
log = logging.getLogger("ingestion")

# option -> setting it overrides
OPTIONS = {
    "symbols": "symbols to capture, comma-separated; or patterns: *USDT, ALL (SYMBOLS)",
    "streams": "stream types: trade,aggTrade,bookTicker (STREAM_TYPES)",
    "bootstrap_servers": "Kafka bootstrap servers (KAFKA_BOOTSTRAP_SERVERS)",
    "ws_url": "Binance WebSocket base URL (BINANCE_WS_URL)",
    "rest_url": "Binance REST base URL (BINANCE_REST_URL)",
    "health_port": "health/metrics port, 0 picks one (INGESTION_HEALTH_PORT)",
    "log_level": "DEBUG, INFO, WARNING, ERROR (LOG_LEVEL)",
}
SETTING_OF = {
    "streams": "stream_types", "bootstrap_servers": "kafka_bootstrap_servers",
    "ws_url": "binance_ws_url", "rest_url": "binance_rest_url", "health_port": "ingestion_health_port",
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Capture Binance trade, aggTrade and bookTicker streams into Kafka: every event\n"
        "once, exactly as published, stamped with its receipt time; gaps detected, repaired\n"
        "from REST and recorded. Options override the environment variables of the same meaning.",
        epilog=settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name, help_text in OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=help_text)
    return parser


def load_settings(argv: Sequence[str] | None) -> Settings:
    args = vars(build_parser().parse_args(argv))
    overrides = {SETTING_OF.get(k, k): v for k, v in args.items() if v is not None}
    return load_or_exit(PROG, "ingestion", **overrides)  # validates ingestion's settings only


async def ensure_topics(publisher: Publisher, settings: Settings, stop: asyncio.Event) -> bool:
    """Create the topics, retrying while the broker is unreachable; False if stopped first."""
    backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
    while not stop.is_set():
        try:
            await asyncio.to_thread(publisher.ensure_topics)
        except TopicSetupError as exc:
            delay = backoff.next_delay()
            log.warning("%s; retrying in %.1f s", exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            continue
        return True
    return False


async def tick(effects: Effects, stop: asyncio.Event) -> None:
    while not stop.is_set():
        effects.tick()
        if effects.fatal:
            log.critical("fatal Kafka producer error: %s; exiting", effects.fatal)
            stop.set()
        await asyncio.sleep(TICK_S)


async def run(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM; returns the exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    resolved = await resolve_settings(settings, stop)  # SYMBOLS patterns -> exact symbols
    if resolved is None:
        return 0
    metrics = IngestionMetrics()
    publisher = Publisher(resolved, metrics)
    backfiller = Backfiller(resolved, metrics)
    effects = Effects(resolved, metrics, publisher, backfiller)
    supervisor = Supervisor(resolved, effects, metrics)
    refresher = UniverseRefresher(resolved, settings.symbols, supervisor)
    metrics.read_live(Live(publisher, supervisor, backfiller, effects, refresher))
    health = HealthServer(
        resolved.ingestion_health_host, resolved.ingestion_health_port, metrics.registry,
        [supervisor.readiness, publisher.readiness],
    )  # fmt: skip
    await health.start()
    log.info("ingestion starting: %d symbols (%s); health on %s:%s", len(resolved.symbols),
             ",".join(settings.symbols), resolved.ingestion_health_host, health.port)  # fmt: skip
    writer: FrontierWriter | None = None
    try:
        ready = await ensure_topics(publisher, resolved, stop)
        entries = await read_frontier(resolved, stop) if ready else None
        if entries is not None:
            publisher.start()
            writer = pick_up(resolved, entries, publisher, backfiller, effects)
            await _stream(supervisor, backfiller, effects, (writer, refresher), stop)
    finally:
        await _shutdown(effects, publisher, backfiller, resolved, writer)
        await health.stop()
    return 1 if publisher.fatal else 0


async def _stream(
    supervisor: Supervisor, backfiller: Backfiller, effects: Effects,
    side: tuple[FrontierWriter, UniverseRefresher], stop: asyncio.Event,
) -> None:
    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(supervisor.run(), name="supervisor"),
            tg.create_task(effects.serve_publisher(), name="publisher"),
            tg.create_task(backfiller.run(), name="backfill"),
            tg.create_task(effects.hear(), name="backfill-answers"),
            tg.create_task(tick(effects, stop), name="tick"),
            tg.create_task(side[0].run(), name="frontier"),
            tg.create_task(probe_quiet(side[0].settings, effects, backfiller), name="resume-probe"),
            tg.create_task(side[1].run(), name="symbols-refresh"),
        ]
        await stop.wait()
        log.info("stopping: closing connections")
        for task in tasks:
            task.cancel()


async def _shutdown(
    effects: Effects, publisher: Publisher, backfiller: Backfiller, settings: Settings,
    writer: FrontierWriter | None,
) -> None:
    if backfiller.pending():
        log.warning("stopping with %d backfill job(s) unfinished; their gaps stay open for the next "
                    "instance", backfiller.pending())  # fmt: skip
    if not publisher.started:
        return
    left = stop_cleanly(settings, effects, writer)
    if left:
        log.error("producer flush timed out: %d messages not delivered", left)
    else:
        log.info("producer flushed; bye")


class Live:
    """What the live gauges read at scrape time (``metrics`` Rule 2), from the parts that know."""

    def __init__(
        self, publisher: Publisher, supervisor: Supervisor, backfiller: Backfiller, effects: Effects,
        refresher: UniverseRefresher,
    ) -> None:
        self._publisher, self._supervisor = publisher, supervisor
        self._backfiller, self._effects, self._refresher = backfiller, effects, refresher

    def queue_depth(self) -> int:
        return self._publisher.queue_depth()

    def connection_ages(self) -> list[tuple[str, float]]:
        return self._supervisor.connection_ages()

    def backfill_remaining(self) -> int:
        return self._backfiller.remaining_ids()

    def open_gaps_detected_us(self) -> list[int]:
        book = self._effects.book
        return [g["detected_at"] for g in book.open_gaps()] if book is not None else []

    def open_gap_symbols(self) -> set[str]:
        book = self._effects.book
        return {g["symbol"] for g in book.open_gaps()} if book is not None else set()

    def captured_symbols(self) -> list[str]:
        return list(self._refresher.symbols)


def main(argv: Sequence[str] | None = None) -> int:
    settings = load_settings(argv)
    configure(settings.log_level)
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())
