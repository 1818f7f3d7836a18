"""``python -m ingestion.history SYMBOL[,SYMBOL...] --from DATE [--to DATE] [--streams trade,aggTrade]``.

Exit status: 0 every file imported and the audit clean; 1 a file was reported bad, REST
failed, or the audit is not clean; 2 a bad argument or setting (usage message naming it).
Progress goes to stderr (a bar on a terminal, plain lines otherwise); the summary and the
audit verdict go to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime

import aiohttp

from binance_pipeline.common.logs import configure
from binance_pipeline.common.settings import HistorySettings, Settings, load_or_exit, settings_epilog
from binance_pipeline.common.utc import day_start_us
from binance_pipeline.kafka.errors import TopicsNotCreated
from binance_pipeline.kafka.topics import ensure_topics, pipeline_specs
from ingestion.history import plan
from ingestion.history.display import Display
from ingestion.history.errors import HistoryError
from ingestion.history.fetch import Fetcher
from ingestion.history.kafka_io import RowProducer, load_progress, progress_topic
from ingestion.history.run import Importer, ImportRequest, Outcome
from ingestion.history.verdict import StreamVerdict, audit_import

PROG = "python -m ingestion.history"
_SYMBOLS = re.compile(r"^[A-Z0-9]{2,20}(,[A-Z0-9]{2,20})*$")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, epilog=settings_epilog(stage=HistorySettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Import trades/aggTrades of whole UTC days from Binance's daily archives "
        "(BINANCE_ARCHIVE_URL, checksums verified) and the part not archived yet from REST, through "
        "Kafka to the worker; resumable; ends with an id-continuity audit of the range.",
    )
    p.add_argument("symbols", help="comma-separated symbols, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--from", dest="first", required=True, help="first UTC day, YYYY-MM-DD")
    p.add_argument("--to", dest="last", help="last UTC day, YYYY-MM-DD (default: today)")
    p.add_argument("--streams", default="trade,aggTrade", help="trade, aggTrade or both (default both)")
    p.add_argument("--audit-timeout", type=float, default=300.0,
                   help="seconds to wait for the worker to write the rows before auditing (default 300)")
    p.add_argument("--no-audit", action="store_true", help="skip the audit (exit status ignores it)")
    return p


def parse_request(argv: Sequence[str] | None, now: datetime) -> tuple[ImportRequest, argparse.Namespace]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not _SYMBOLS.match(args.symbols):
        parser.error(f"argument symbols: expected e.g. BTCUSDT,ETHUSDT, got {args.symbols!r}")
    streams = tuple(dict.fromkeys(s.strip() for s in args.streams.split(",")))
    if not streams or any(s not in ("trade", "aggTrade") for s in streams):
        parser.error(f"argument --streams: expected trade, aggTrade or trade,aggTrade, got {args.streams!r}")
    today = now.date()
    try:
        first = date.fromisoformat(args.first)
        last = date.fromisoformat(args.last) if args.last else today
    except ValueError as exc:
        parser.error(f"argument --from/--to: {exc} (expected YYYY-MM-DD)")
    if first > last or last > today:
        parser.error(f"argument --to: the range {first}..{last} must be ordered and end by today ({today})")
    now_us = int(now.timestamp()) * 1_000_000 + now.microsecond
    symbols = tuple(dict.fromkeys(args.symbols.split(",")))
    return ImportRequest(symbols, streams, first, last, today, now_us), args


async def run_import(settings: Settings, request: ImportRequest) -> Outcome:
    ensure_topics(settings, [*pipeline_specs(settings), progress_topic(settings)])
    done = load_progress(settings)
    producer = RowProducer(settings)
    timeout = aiohttp.ClientTimeout(total=max(settings.rest_timeout_s, 300.0))
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            display = Display(sys.stderr, sys.stderr.isatty())
            return await Importer(request, Fetcher(settings, session), producer, done, display).run()
    finally:
        producer.close()


def audit(
    settings: Settings, request: ImportRequest, outcome: Outcome, timeout: float
) -> list[StreamVerdict]:
    """The database audit over the imported range, once the worker has written the rows (verdict.py)."""
    start = day_start_us(request.first)
    end = min(day_start_us(request.last) + plan.DAY_US, request.now_us)
    return audit_import(settings.database_url.get_secret_value(), settings.audit_statement_timeout_ms,
                        outcome.series, (start, end), timeout)


def report(outcome: Outcome, verdicts: list[StreamVerdict] | None, elapsed: float) -> None:
    out = sys.stdout
    now = sum(s.rows - s.earlier_rows for s in outcome.series)
    earlier = sum(s.earlier_rows for s in outcome.series)
    out.write(f"imported {now:,} rows in {elapsed:.1f} s ({now / max(elapsed, 1e-6):,.0f} rows/s)"
              f"{f'; {earlier:,} rows were imported by an earlier run' if earlier else ''}\n")
    for s in outcome.series:
        out.write(f"  {s.symbol} {s.stream}: {s.rows:,} rows, ids {s.first_id}..{s.last_id}; "
                  f"{s.days} archive day(s) now, {s.skipped_days} done earlier; {s.rest_rows:,} from REST"
                  f"{f'; {s.dead_letters} bad line(s) dead-lettered' if s.dead_letters else ''}\n")
    for failure in outcome.failures:
        out.write(f"FAILED {failure}\n")
    if verdicts is not None:
        clean = bool(verdicts) and all(v.clean for v in verdicts)
        out.write(f"audit: {'CLEAN' if clean else 'NOT CLEAN'}\n")
        for v in verdicts:
            out.write(f"  {v.line()}\n")


def main(argv: Sequence[str] | None = None) -> int:
    request, args = parse_request(argv, datetime.now(UTC))
    settings = load_or_exit("ingestion.history", "history")  # its own settings only
    configure(settings.log_level)
    started = time.monotonic()
    try:
        outcome = asyncio.run(run_import(settings, request))
    except (HistoryError, TopicsNotCreated) as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    elapsed = time.monotonic() - started  # published and acknowledged by Kafka
    try:
        verdicts = None if args.no_audit else audit(settings, request, outcome, args.audit_timeout)
    except HistoryError as exc:
        report(outcome, None, elapsed)
        sys.stdout.write(f"audit: UNAVAILABLE ({exc})\n")
        return 1
    report(outcome, verdicts, elapsed)
    clean = verdicts is None or (bool(verdicts) and all(v.clean for v in verdicts))
    return 0 if clean and not outcome.failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
