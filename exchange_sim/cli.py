"""Command line of ``python -m exchange_sim``: parse, validate, then run :func:`app.serve`.

Rule 1: every option is documented in ``--help``; a bad value exits with status 2 and a
        message naming the option (argparse does this; the validators below add ranges).
Rule 2: the only stdout output is the ready line printed by app.py.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from exchange_sim.app import serve
from exchange_sim.config import DEFAULT_SYMBOLS, ScheduledFault, SimConfig
from exchange_sim.control import ACTIONS

D = SimConfig()  # defaults


def _ranged(
    kind: Callable[[str], Any], low: float, high: float = float("inf"), low_open: bool = False
) -> Callable[[str], Any]:
    def check(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a valid {kind.__name__}: {text!r}") from exc
        if value < low or (low_open and value == low) or value > high:
            low_text = f"> {low:g}" if low_open else f">= {low:g}"
            raise argparse.ArgumentTypeError(
                f"must be {low_text}"
                + (f" and <= {high:g}" if high != float("inf") else "")
                + f", got {text}"
            )
        return value

    return check


def _symbols(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    if not names or not all(re.fullmatch(r"[A-Z0-9]{2,20}", s) for s in names):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated upper-case symbols like BTCUSDT,ETHUSDT, got {text!r}"
        )
    return names


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def _fault(text: str) -> ScheduledFault:
    at, _, rest = text.partition(":")
    action, _, body_text = rest.partition(":")
    try:
        when = float(at)
        body = orjson.loads(body_text) if body_text else {}
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"expected SECONDS:ACTION[:JSON], got {text!r}") from exc
    if when < 0 or action not in ACTIONS or not isinstance(body, dict):
        raise argparse.ArgumentTypeError(
            f"expected SECONDS>=0:ACTION[:JSON object] with ACTION in {ACTIONS}, got {text!r}"
        )
    return ScheduledFault(when, action, body)


POS = _ranged(float, 0.0, low_open=True)
NONNEG = _ranged(float, 0.0)
PORT = _ranged(int, 0, 65535)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every option with its default in --help)."""
    p = argparse.ArgumentParser(
        prog="python -m exchange_sim",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Binance spot market-data simulator (WebSocket streams, REST, faults) on 127.0.0.1.",
    )
    g = p.add_argument_group("servers")
    g.add_argument("--ws-port", type=PORT, default=D.ws_port, help="WebSocket port (0 = pick a free one)")
    g.add_argument(
        "--rest-port", type=PORT, default=D.rest_port, help="REST + /control port (0 = pick a free one)"
    )
    g.add_argument(
        "--log-level",
        default=D.log_level,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level",
    )
    g = p.add_argument_group("market data")
    g.add_argument(
        "--symbols",
        type=_symbols,
        default=None,
        help=f"comma-separated symbols (synthetic default {','.join(DEFAULT_SYMBOLS)}; "
        "replay: a filter, default all symbols in the files)",
    )
    g.add_argument(
        "--market",
        type=_ranged(int, 0, 5000),
        default=D.market,
        help="synthetic: a whole exchange of N USDT pairs (a few busy, most quiet: the busiest at "
        "--rate, the rest after it in a Zipf-like spread), some of their bases in other quotes too, "
        "and a few delisted (status BREAK); --symbols adds to it (0 = off)",
    )
    g.add_argument(
        "--source", choices=["synthetic", "replay"], default=D.source, help="where events come from"
    )
    g.add_argument(
        "--replay-file",
        type=_existing_file,
        action="append",
        default=[],
        metavar="PATH",
        help="recorded file to replay (repeatable; played one after another; format sniffed)",
    )
    g.add_argument(
        "--speed", type=NONNEG, default=D.speed, help="replay pace factor (0 = as fast as possible)"
    )
    g.add_argument(
        "--rate", type=POS, default=D.rate, help="synthetic events per second per symbol (all streams)"
    )
    g.add_argument("--seed", type=int, default=D.seed, help="synthetic random seed")
    g.add_argument(
        "--burst-every", type=NONNEG, default=D.burst_every, help="seconds between bursts (0 = no bursts)"
    )
    g.add_argument("--burst-duration", type=POS, default=D.burst_duration, help="seconds a burst lasts")
    g.add_argument(
        "--burst-factor", type=_ranged(float, 1.0), default=D.burst_factor, help="rate multiplier in a burst"
    )
    g.add_argument(
        "--max-trades",
        type=_ranged(int, 0),
        default=None,
        help="per symbol, generate exactly N trades then stop",
    )
    g.add_argument(
        "--start-delay",
        type=NONNEG,
        default=None,
        help="if set: start generating S seconds after the first subscription (unset: at start-up)",
    )
    g.add_argument(
        "--history-cap",
        type=_ranged(int, 1),
        default=D.history_cap,
        help="trades and aggTrades kept per symbol for REST",
    )
    g.add_argument(
        "--depth",
        action="store_true",
        default=D.depth,
        help="keep an order book per symbol: depth streams, /api/v3/depth, /control/book (costs about half "
        "the generator's speed; replay plays recorded depth without it)",
    )
    g.add_argument(
        "--depth-record",
        type=_ranged(int, 1),
        default=D.depth_record,
        help="depth@100ms events kept per symbol as ground truth for /control/book (the latest N)",
    )
    g.add_argument(
        "--archive-days",
        type=_ranged(int, 0, 3660),
        default=D.archive_days,
        help="synthetic: serve daily archives of the N days before today (generated at start-up; "
        "live ids continue theirs)",
    )
    g.add_argument(
        "--archive-day-aggs",
        type=_ranged(int, 1),
        default=D.archive_day_aggs,
        help="aggTrades per symbol in each --archive-days day (trades: 1-6 per aggTrade)",
    )
    g = p.add_argument_group("connection rules")
    g.add_argument("--max-lifetime", type=POS, default=D.max_lifetime, help="seconds a connection lives")
    g.add_argument(
        "--shutdown-notice",
        type=NONNEG,
        default=D.shutdown_notice,
        help="serverShutdown sent S seconds before the cut",
    )
    g.add_argument("--ping-interval", type=POS, default=D.ping_interval, help="seconds between server pings")
    g.add_argument(
        "--pong-timeout",
        type=POS,
        default=D.pong_timeout,
        help="disconnect when a ping is unanswered this long",
    )
    g.add_argument(
        "--max-streams", type=_ranged(int, 1), default=D.max_streams, help="streams per connection"
    )
    g.add_argument(
        "--max-incoming-per-sec",
        type=_ranged(int, 1),
        default=D.max_incoming_per_sec,
        help="incoming messages (incl. pings/pongs) per second before disconnect",
    )
    g.add_argument(
        "--max-conn-attempts",
        type=_ranged(int, 1),
        default=D.max_conn_attempts,
        help="connection attempts per --conn-window before HTTP 429",
    )
    g.add_argument(
        "--conn-window", type=POS, default=D.conn_window, help="seconds of the connection-attempt window"
    )
    g.add_argument(
        "--max-send-buffer",
        type=_ranged(int, 65536),
        default=D.max_send_buffer,
        help="unsent bytes after which a slow connection is cut",
    )
    g = p.add_argument_group("REST limits")
    g.add_argument(
        "--weight-limit", type=_ranged(int, 1), default=D.weight_limit, help="request weight per window"
    )
    g.add_argument("--weight-window", type=POS, default=D.weight_window, help="seconds of the weight window")
    g.add_argument(
        "--ban-after",
        type=_ranged(int, 0),
        default=D.ban_after,
        help="429 answers in one window before a 418 ban",
    )
    g.add_argument("--ban-seconds", type=POS, default=D.ban_seconds, help="length of a 418 ban")
    g = p.add_argument_group("faults")
    g.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="AT:ACTION[:JSON]",
        help="run a control action AT seconds after generation starts (repeatable), "
        f'e.g. \'2:drop:{{"symbol":"BTCUSDT","count":10}}\'; ACTION in {",".join(ACTIONS)}',
    )
    g.add_argument(
        "--disconnect-every",
        type=NONNEG,
        default=D.disconnect_every,
        help="abort every connection every S seconds (0 = never)",
    )
    g.add_argument(
        "--oversized-bytes",
        type=_ranged(int, 1),
        default=D.oversized_bytes,
        help="size of an 'oversized' malformed frame",
    )
    return p


def parse_config(argv: Sequence[str] | None = None) -> SimConfig:
    """Parse and cross-check options (exits 2 on error)."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.source == "replay" and not ns.replay_file:
        parser.error("argument --replay-file: required with --source replay")
    if ns.replay_file and ns.source != "replay":
        parser.error("argument --replay-file: only valid with --source replay")
    if ns.market and ns.source != "synthetic":
        parser.error("argument --market: only valid with --source synthetic")
    values = {k: v for k, v in vars(ns).items() if k not in ("replay_file", "fault")}
    return SimConfig(replay_files=tuple(ns.replay_file), faults=tuple(ns.fault), **values)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m exchange_sim``."""
    cfg = parse_config(argv)
    logging.basicConfig(
        level=cfg.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(cfg))
    return 0
