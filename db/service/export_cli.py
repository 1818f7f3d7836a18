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
from typing import IO

from binance_pipeline.common.settings import QuerySettings
from db.service import queries
from db.service.errors import DatabaseError
from db.service.export import ExportParams, ExportRequest, write_csv, write_parquet
from db.service.export_http import make_export_handler
from db.service.spec import Download


def cli_arguments(cmd: argparse.ArgumentParser) -> None:
    """What the export adds to the arguments generated from its parameters."""
    cmd.add_argument("--out", help="output file (default stdout; required for parquet)")


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


def run(
    args: argparse.Namespace, settings: QuerySettings, params: ExportParams, cmd: argparse.ArgumentParser
) -> int:
    """Rules 1-2, for parameters the CLI has validated."""
    req = params.request()
    if req.fmt == "parquet" and not args.out:
        cmd.error("argument --out: required with --format parquet")
    try:
        export(req, settings, args.out)
    except DatabaseError as exc:
        sys.stderr.write(f"python -m db.query export: the database could not answer: {exc}\n")
        return 1
    return 0


def export(req: ExportRequest, settings: QuerySettings, out_path: str | None) -> int:
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


DOWNLOAD = Download(cli_arguments, run, make_export_handler, ("text/csv", "application/vnd.apache.parquet"))
