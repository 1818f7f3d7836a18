"""Query the tape from the command line: ``python -m db.query <command> SYMBOL ...``.

Commands: latest, price-at, range, candles, stats, spread, sma, whales, gaps, audit (see --help of
each).
Output: a text table by default, ``--json`` (the HTTP API's document) or ``--csv``.

Exit status (rules):
  0  an answer was printed (an interval with no trades is an answer: count 0 / empty list);
     for ``audit``: the range is complete
  1  ``audit``: the range is not complete (the answer, on stdout, lists every hole)
  1  the symbol has no data at all for the question (one line on stderr), or the database
     cannot answer (unreachable: one line naming DATABASE_URL; missing tables; timeout)
  2  a bad argument or setting: a usage message naming it, never a traceback
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from binance_pipeline.common.settings import Settings, dsn_endpoint, load_or_exit, settings_epilog
from db.service import answers, export_cli, queries
from db.service.errors import DatabaseError, DatabaseUnavailable, InvalidArgument
from db.service.params import COMMANDS, Request, parse_request
from db.service.render import to_csv, to_json, to_text

PROG = "python -m db.query"
SETTINGS_USED = ("database_url", "query_statement_timeout_ms", "query_max_rows", "audit_statement_timeout_ms",
                 "audit_repair_wait_s")
REPAIR_NOTE = ("audit --repair also reads ingestion's Kafka settings (KAFKA_*, TOPIC_*) and REST settings "
               "(BINANCE_REST_URL, BINANCE_API_KEY, REST_*): it publishes through Kafka like ingestion")
_HELP = {
    "latest": "the last trade price and its time",
    "price-at": "the price as of a time (last trade at or before it) and the nearest trades",
    "range": "open/high/low/close, volume, quote volume, VWAP and count over an interval",
    "candles": "OHLCV candles of a bucket width from 1s to 1d",
    "stats": "row counts, first/last time and min/max price per table",
    "spread": "best bid, best ask and spread in force at a time (bookTicker)",
    "sma": "simple moving average of bucket closes",
    "whales": "trades whose notional price*qty is at or above a threshold",
    "gaps": "recorded gaps whose data overlaps the range, with their repair status, and rows per UTC day",
    "audit": "check that the range is complete: id continuity per stream and trade/aggTrade consistency "
             "(exit 0 complete, 1 not)",
}
_OPTIONS: dict[str, tuple[str, dict[str, object]]] = {
    "type": ("--type", {"help": "trade (default) or aggTrade"}),
    "stream": ("--stream", {"help": "audit only this stream: trade or aggTrade (default both)"}),
    "at": ("--at", {"help": "ISO 8601 (UTC if no offset), epoch ms or now; default now"}),
    "from": ("--from", {"dest": "from_", "metavar": "FROM", "help": "start: ISO 8601, epoch ms or now"}),
    "to": ("--to", {"help": "interval end (exclusive): ISO 8601, epoch ms or now; default now"}),
    "last": ("--last", {"help": "the interval [now - D, now), e.g. 5m, 1h, 2d (default 1h; gaps 1d)"}),
    "bucket": ("--bucket", {"help": "bucket width 1s..1d, e.g. 1m, 15m, 1h (default 1m)"}),
    "fill": ("--fill", {"action": "store_true", "help": "return empty buckets too (OHLC = previous close)"}),
    "window": ("--window", {"help": "buckets per average (default 20, max 1000)"}),
    "threshold": ("--threshold", {"help": "notional threshold in the quote currency (default 100000)"}),
    "limit": ("--limit", {"help": "most trades to list (default 100)"}),
}


def build_parser(repair: bool = False) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each command's own parser (for usage errors)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Query the captured Binance tape in TimescaleDB.",
        epilog=settings_epilog(SETTINGS_USED) + "\n" + REPAIR_NOTE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    subs: dict[str, argparse.ArgumentParser] = {}
    for command, params in COMMANDS.items():
        cmd = subs[command] = sub.add_parser(command, help=_HELP[command], description=_HELP[command])
        cmd.add_argument("symbol", help="e.g. BTCUSDT")
        if command == "price-at":
            cmd.add_argument("at", help="ISO 8601 (UTC if no offset) or epoch milliseconds")
        for name in params:
            if name in _OPTIONS and not (command == "price-at" and name == "at"):
                flag, kwargs = _OPTIONS[name]
                cmd.add_argument(flag, **kwargs)  # type: ignore[arg-type]
        if command == "audit" and repair:
            cmd.add_argument("--repair", action="store_true",
                             help="fetch every hole from the exchange's REST API "
                             "through Kafka and the worker (recorded as gaps with reason audit), wait "
                             "for the rows (AUDIT_REPAIR_WAIT_S), then audit again")
        out = cmd.add_mutually_exclusive_group()
        out.add_argument("--json", action="store_true", help="print the JSON document")
        out.add_argument("--csv", action="store_true", help="print CSV")
    subs["export"] = export_cli.add_subcommand(sub)
    return parser, subs


def raw_params(args: argparse.Namespace) -> dict[str, str]:
    """The parameters given on the command line, as db.service.params expects them (name -> text)."""
    raw: dict[str, str] = {}
    for name in COMMANDS[args.command]:
        value = getattr(args, "from_" if name == "from" else name, None)
        if value is True:
            raw[name] = "true"
        elif isinstance(value, str):
            raw[name] = value
    return raw


def cli_name(command: str, param: str) -> str:
    """How a parameter is spelled on the command line, for usage errors."""
    if param == "symbol" or (command == "price-at" and param == "at"):
        return param
    return f"--{param}"


def execute(request: Request, settings: Settings, fmt: str) -> tuple[int, str, str]:
    """Run one request; (exit status, text for stdout, text for stderr)."""
    dsn = settings.database_url.get_secret_value()
    try:
        conn = queries.connect(dsn, settings.query_statement_timeout_ms)
    except DatabaseUnavailable as exc:
        return 1, "", f"{PROG}: cannot connect to DATABASE_URL ({dsn_endpoint(dsn)}): {exc}\n"
    try:
        answer = answers.run(conn, request, answers.Limits(settings.audit_statement_timeout_ms))
    except DatabaseError as exc:
        return 1, "", f"{PROG}: the database {dsn_endpoint(dsn)} could not answer: {exc}\n"
    finally:
        conn.close()
    if answer.no_data:
        return 1, "", f"{PROG}: {answer.no_data}\n"
    if fmt == "json":
        return answer.exit_status, to_json(answer).decode() + "\n", ""
    return answer.exit_status, to_csv(answer) if fmt == "csv" else to_text(answer), ""


Execute = Callable[[Request, Settings, str], tuple[int, str, str]]
Repair = Callable[[Request, Settings, str, Execute], int]


def main(argv: Sequence[str] | None = None, repair: Repair | None = None) -> int:
    """The CLI; ``repair`` (db.repair's, handed in by ``python -m db.query``) serves ``audit --repair``."""
    parser, subs = build_parser(repair is not None)
    args = parser.parse_args(argv)
    settings = load_or_exit("db.query")
    if args.command == "export":
        return export_cli.run(args, settings, subs["export"])
    try:
        request = parse_request(args.command, raw_params(args), datetime.now(UTC), settings.query_max_rows)
    except InvalidArgument as exc:
        subs[args.command].error(f"argument {cli_name(args.command, exc.param)}: {exc.message}")
    fmt = "json" if args.json else "csv" if args.csv else "text"
    if repair is not None and getattr(args, "repair", False):
        return repair(request, settings, fmt, execute)
    status, out, err = execute(request, settings, fmt)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return status

