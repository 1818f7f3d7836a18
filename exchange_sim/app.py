"""Composition root: build the market, hub, servers and feed; run until SIGTERM/SIGINT.

Owns process lifetime only. Prints exactly one line to stdout, the ready line, once both
ports are bound.

Shutdown steps, in order: 1. stop generation and scheduled faults; 2. close every WebSocket
with a close frame (1001); 3. stop the HTTP servers; 4. return (exit status 0).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import UTC, datetime, timedelta

import orjson
from aiohttp import web

from exchange_sim.archive import Archive, seed_days
from exchange_sim.archive_routes import ArchiveApi
from exchange_sim.config import SimConfig
from exchange_sim.control import Controller
from exchange_sim.faults import Faults
from exchange_sim.feed import Feed
from exchange_sim.hub import Hub
from exchange_sim.market import Market
from exchange_sim.ratelimit import WeightLimiter
from exchange_sim.replay import read_file
from exchange_sim.rest import RestApi
from exchange_sim.synthetic import SyntheticSymbol
from exchange_sim.whole_market import listings
from exchange_sim.ws_server import WsServer, shutdown_all

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
PRESCAN = 10_000  # replay records read at start-up to learn the symbols REST must know


def prescan_symbols(cfg: SimConfig, market: Market) -> None:
    """Register the symbols at the start of each replay file so REST knows them early."""
    for path in cfg.replay_files:
        for count, record in enumerate(read_file(path, cfg.symbols[0] if cfg.symbols else None)):
            if count >= PRESCAN:
                break
            if cfg.symbols is None or record.event.symbol in cfg.symbols:
                market.ensure(record.event.symbol)


def build_market(cfg: SimConfig) -> Market:
    """The market: a whole one first (``--market``), then the symbols named (``--symbols``)."""
    market = Market([], cfg.history_cap, cfg.depth_record)
    if cfg.market and cfg.source == "synthetic":
        for listing in listings(cfg.market, cfg.seed):
            market.add(listing.spec, listing.activity, listing.trading)
        log.info("market: %d symbols, %d TRADING", len(market.symbols), len(market.trading()))
    for symbol in cfg.market_symbols():
        market.ensure(symbol)
    return market


async def _start(app: web.Application, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, shutdown_timeout=1.0)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def _scheduled_faults(cfg: SimConfig, controller: Controller, feed: Feed) -> None:
    await feed.started.wait()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for fault in sorted(cfg.faults, key=lambda f: f.at):
        await asyncio.sleep(max(0.0, start + fault.at - loop.time()))
        log.info("scheduled fault %s %s", fault.action, fault.body)
        controller.run(fault.action, fault.body)


async def _periodic_disconnect(cfg: SimConfig, hub: Hub) -> None:
    while True:
        await asyncio.sleep(cfg.disconnect_every)
        hub.abort_all()


def seed_archive(cfg: SimConfig, market: Market, archive: Archive) -> dict[str, SyntheticSymbol]:
    """Generate the ``--archive-days`` days before today; the live feed goes on with these generators."""
    if cfg.source != "synthetic" or cfg.archive_days == 0:
        return {}
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in range(cfg.archive_days, 0, -1)]
    gens = {}
    for symbol, state in market.symbols.items():
        gens[symbol] = SyntheticSymbol(state.spec, cfg.seed, cfg.max_trades, cfg.depth)
        seed_days(archive, symbol, gens[symbol], days, cfg.archive_day_aggs)
    log.info("archive: %d days x %d symbols seeded", len(days), len(gens))
    return gens


def _say_ready(ws_port: int, rest_port: int) -> None:
    """The one line on stdout: where the simulator listens (read by tests and the launcher)."""
    ready = {
        "ready": True,
        "ws_url": f"ws://{HOST}:{ws_port}",
        "rest_url": f"http://{HOST}:{rest_port}",
        "control_url": f"http://{HOST}:{rest_port}/control",
        "pid": os.getpid(),
    }
    print(orjson.dumps(ready).decode(), flush=True)  # noqa: T201


async def serve(cfg: SimConfig) -> None:
    """Run the simulator until SIGTERM or SIGINT."""
    market = build_market(cfg)
    prescan_symbols(cfg, market)
    faults, running, stop = Faults(), asyncio.Event(), asyncio.Event()
    running.set()
    hub = Hub(market, faults)
    limiter = WeightLimiter(cfg.weight_limit, cfg.weight_window, cfg.ban_after, cfg.ban_seconds)
    archive = Archive()
    generators = seed_archive(cfg, market, archive)
    archive_api = ArchiveApi(market, archive)
    controller = Controller(cfg, market, hub, faults, limiter, running, archive_api)
    rest_app = web.Application()
    RestApi(market, limiter, faults).add_routes(rest_app)
    archive_api.add_routes(rest_app)
    controller.add_routes(rest_app)
    ws_runner, ws_port = await _start(WsServer(cfg, hub, faults).app(), cfg.ws_port)
    rest_runner, rest_port = await _start(rest_app, cfg.rest_port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    feed = Feed(cfg, market, hub, running, generators)
    _say_ready(ws_port, rest_port)
    async with asyncio.TaskGroup() as tasks:
        workers = [tasks.create_task(feed.run()), tasks.create_task(_scheduled_faults(cfg, controller, feed))]
        if cfg.disconnect_every > 0:
            workers.append(tasks.create_task(_periodic_disconnect(cfg, hub)))
        await stop.wait()
        for worker in workers:
            worker.cancel()
    shutdown_all(hub)
    await asyncio.sleep(0.05)
    hub.abort_all()
    await ws_runner.cleanup()
    await rest_runner.cleanup()
