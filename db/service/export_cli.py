"""``python -m db.query export SYMBOL --stream trade|aggTrade --from --to --format csv|parquet [--out FILE]``.

Rules:
  1. The file goes to ``--out`` (default stdout; Parquet needs ``--out``); progress (rows,
     rows/s) goes to stderr: redrawn on a terminal, a plain line every 5 s otherwise, and a
     final line always.
  2. Exit status as the other commands: 0 written, 1 the database could not answer, 2 a bad
     argument (usage message naming it).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, Any

from binance_pipeline.common.settings import Settings
from db.service import queries
from db.service.errors import DatabaseError, InvalidArgument
from db.service.export import ExportRequest, parse_export, write_csv, write_parquet

HELP = "the rows of a range in Binance's daily-archive CSV format, or Parquet"


def add_subcommand(sub: Any) -> argparse.ArgumentParser:
    cmd: argparse.ArgumentParser = sub.add_parser("export", help=HELP, description=HELP)
    cmd.add_argument("symbol", help="e.g. BTCUSDT")
    cmd.add_argument("--stream", required=True, help="trade or aggTrade")
    cmd.add_argument("--from", dest="from_", metavar="FROM", required=True, help="ISO 8601 or epoch ms")
    cmd.add_argument("--to", required=True, help="end (exclusive), ISO 8601 or epoch ms")
    cmd.add_argument("--format", default="csv", help="csv (default) or parquet")
    cmd.add_argument("--out", help="output file (default stdout; required for parquet)")
    return cmd


class _Progress:
    def __init__(self, out: IO[str]) -> None:
        self.out, self.tty = out, out.isatty()
        self.rows, self.started = 0, time.monotonic()
        self.last = self.started

    def __call__(self, rows: int) -> None:
        self.rows += rows
        now = time.monotonic()
        if now - self.last >= (0.2 if self.tty else 5.0):
            self.last = now
            self._write(now)

    def _write(self, now: float, end: str = "") -> None:
        rate = self.rows / max(now - self.started, 1e-6)
        text = f"exported {self.rows:,} rows  {rate:,.0f} rows/s"
        self.out.write(("\r\x1b[2K" + text + end) if self.tty else text + "\n")
        self.out.flush()

    def finish(self) -> None:
        self._write(time.monotonic(), "\n")


def run(args: argparse.Namespace, settings: Settings, cmd: argparse.ArgumentParser) -> int:
    raw = {"symbol": args.symbol, "stream": args.stream, "from": args.from_, "to": args.to,
           "format": args.format}
    try:
        req = parse_export(raw)
    except InvalidArgument as exc:
        name = exc.param if exc.param == "symbol" else f"--{exc.param}"
        cmd.error(f"argument {name}: {exc.message}")
    if req.fmt == "parquet" and not args.out:
        cmd.error("argument --out: required with --format parquet")
    try:
        export(req, settings, args.out)
    except DatabaseError as exc:
        sys.stderr.write(f"python -m db.query export: the database could not answer: {exc}\n")
        return 1
    return 0


def export(req: ExportRequest, settings: Settings, out_path: str | None) -> int:
    conn = queries.connect(settings.database_url.get_secret_value(), 0)
    progress = _Progress(sys.stderr)
    try:
        if req.fmt == "parquet":
            rows = write_parquet(conn, req, out_path, progress)
        elif out_path:
            with open(out_path, "wb") as out:
                rows = write_csv(conn, req, out, progress)
        else:
            rows = write_csv(conn, req, sys.stdout.buffer, progress)
            sys.stdout.buffer.flush()
    finally:
        conn.close()
    progress.finish()
    return rows
