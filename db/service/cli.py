"""Query the tape from the command line: ``python -m db.query <command> SYMBOL ...``.

One subcommand per query spec (db.service.specs), generated: its positional arguments and --flags are
the spec's parameters, its help the spec's summary. See --help of each.
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
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from binance_pipeline.common.settings import (
    QuerySettings,
    Settings,
    dsn_endpoint,
    load_or_exit,
    load_stage,
    settings_epilog,
)
from db.service import queries
from db.service.errors import DatabaseError, DatabaseUnavailable, InvalidArgument
from db.service.params import Doc
from db.service.render import to_csv, to_json, to_text
from db.service.spec import Limits, QuerySpec, Request
from db.service.specs import SPECS

PROG = "python -m db.query"
REPAIR_NOTE = ("audit --repair validates every setting and also reads ingestion's Kafka settings (KAFKA_*, "
               "TOPIC_*) and REST settings (BINANCE_REST_URL, BINANCE_API_KEY, REST_*): it publishes through "
               "Kafka like ingestion")
REPAIR_HELP = ("fetch every hole from the exchange's REST API through Kafka and the worker (recorded as gaps "
               "with reason audit), wait for the rows (AUDIT_REPAIR_WAIT_S), then audit again")
Execute = Callable[[Request, QuerySettings, str], tuple[int, str, str]]
Repair = Callable[[Request, Settings, str, Execute], int]


def add_parameters(cmd: argparse.ArgumentParser, spec: QuerySpec[Any]) -> None:
    """The spec's parameters as arguments: positional ones in order, then one --flag each."""
    for wire, name, field in spec.params.fields():
        doc = next((m for m in field.metadata if isinstance(m, Doc)), Doc({}))
        if wire in spec.params.positional:
            cmd.add_argument(wire, help=field.description)
            continue
        options: dict[str, Any] = {"dest": name, "help": field.description, **doc.cli}
        if wire in spec.params.required:
            options["required"] = True
        cmd.add_argument(f"--{wire}", **options)


def build_parser(
    specs: Iterable[QuerySpec[Any]] = SPECS.values(), repair: bool = False
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each command's own parser (for usage errors)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Query the captured Binance tape in TimescaleDB.",
        epilog=settings_epilog(stage=QuerySettings) + ("\n" + REPAIR_NOTE if repair else ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    subs: dict[str, argparse.ArgumentParser] = {}
    for spec in specs:
        cmd = subs[spec.name] = sub.add_parser(spec.name, help=spec.summary, description=spec.summary)
        add_parameters(cmd, spec)
        if spec.download is not None:
            spec.download.cli_arguments(cmd)
            continue
        if spec.name == "audit" and repair:
            cmd.add_argument("--repair", action="store_true", help=REPAIR_HELP)
        out = cmd.add_mutually_exclusive_group()
        out.add_argument("--json", action="store_true", help="print the JSON document")
        out.add_argument("--csv", action="store_true", help="print CSV")
    return parser, subs


def raw_params(args: argparse.Namespace, spec: QuerySpec[Any]) -> dict[str, str]:
    """The parameters given on the command line, as the spec's model expects them (name -> text)."""
    raw: dict[str, str] = {}
    for wire, name, _ in spec.params.fields():
        value = getattr(args, name, None)  # positional ones are named like their field (symbol, at)
        if value is True:
            raw[wire] = "true"
        elif isinstance(value, str):
            raw[wire] = value
    return raw


def cli_name(spec: QuerySpec[Any], param: str) -> str:
    """How a parameter is spelled on the command line, for usage errors."""
    return param if param in spec.params.positional else f"--{param}"


def execute(request: Request, settings: QuerySettings, fmt: str) -> tuple[int, str, str]:
    """Run one request; (exit status, text for stdout, text for stderr)."""
    dsn = settings.database_url.get_secret_value()
    try:
        conn = queries.connect(dsn, settings.query_statement_timeout_ms)
    except DatabaseUnavailable as exc:
        return 1, "", f"{PROG}: cannot connect to DATABASE_URL ({dsn_endpoint(dsn)}): {exc}\n"
    try:
        answer = request.spec.run(conn, request.params, Limits(settings.audit_statement_timeout_ms))
    except DatabaseError as exc:
        return 1, "", f"{PROG}: the database {dsn_endpoint(dsn)} could not answer: {exc}\n"
    finally:
        conn.close()
    if answer.no_data:
        return 1, "", f"{PROG}: {answer.no_data}\n"
    if fmt == "json":
        return answer.exit_status, to_json(answer).decode() + "\n", ""
    return answer.exit_status, to_csv(answer) if fmt == "csv" else to_text(answer), ""


def main(argv: Sequence[str] | None = None, repair: Repair | None = None,
         specs: Iterable[QuerySpec[Any]] = SPECS.values()) -> int:
    """The CLI; ``repair`` (db.repair's, handed in by ``python -m db.query``) serves ``audit --repair``."""
    by_name = {spec.name: spec for spec in specs}
    parser, subs = build_parser(by_name.values(), repair is not None)
    args = parser.parse_args(argv)
    settings = load_stage("db.query", QuerySettings)
    spec = by_name[args.command]
    try:
        params = spec.parse(raw_params(args, spec), datetime.now(UTC), settings.query_max_rows)
    except InvalidArgument as exc:
        subs[spec.name].error(f"argument {cli_name(spec, exc.param)}: {exc.message}")
    if spec.download is not None:
        return spec.download.cli_run(args, settings, params, subs[spec.name])
    fmt = "json" if args.json else "csv" if args.csv else "text"
    request = Request(spec, params)
    if repair is not None and getattr(args, "repair", False):
        return repair(request, load_or_exit("db.query"), fmt, execute)  # it drives ingestion's code
    status, out, err = execute(request, settings, fmt)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return status
