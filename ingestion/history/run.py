"""The import loop: per symbol and stream, archive days then the REST tail, then the audit.

Reads as a loop of named calls; what to fetch is plan.py, what a row is archive.py, where it
goes kafka_io.py, how it is fetched fetch.py.

Rules:
  1. Rows travel the normal path: Kafka (TOPIC_TRADES), then the worker; this module never
     writes to the database.
  2. A day is recorded done only after every row of it is acknowledged (kafka_io Rule 2), so a
     killed import re-reads at most the day (or REST stretch) it was in, and never a finished day.
  3. A file that fails (checksum, unreadable) is reported by name and nothing of it is
     published: its rows are parsed and sent only after the checksum matched; the series
     goes on with the next day, and the REST tail then starts by time, not from its ids.
  4. Bad lines of a verified file go to the dead-letter topic with the file and line named.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from binance_pipeline.common.events import TradeMessage
from ingestion.errors import BackfillError, ParseError
from ingestion.history import plan
from ingestion.history.archive import csv_lines, file_name, is_header, parse_row
from ingestion.history.display import Display, Progress
from ingestion.history.errors import ArchiveError, RowError
from ingestion.history.fetch import Fetcher
from ingestion.history.kafka_io import RowProducer
from ingestion.rest import PAGE_LIMIT

log = logging.getLogger(__name__)
REST_CHECKPOINT_PAGES = 50
SHOW_EVERY_ROWS = 20_000


@dataclass(frozen=True)
class ImportRequest:
    symbols: tuple[str, ...]
    streams: tuple[str, ...]
    first: date
    last: date
    today: date
    now_us: int


@dataclass
class Series:
    """What one symbol's stream got: id span, rows, where from."""

    symbol: str
    stream: str
    first_id: int | None = None
    last_id: int | None = None
    rows: int = 0
    days: int = 0
    skipped_days: int = 0
    earlier_rows: int = 0
    rest_rows: int = 0
    dead_letters: int = 0

    def take(self, first: int, last: int, rows: int) -> None:
        self.first_id = first if self.first_id is None else min(self.first_id, first)
        self.last_id = last if self.last_id is None else max(self.last_id, last)
        self.rows += rows


@dataclass
class Outcome:
    series: list[Series] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Importer:
    """Runs one ImportRequest (Rules 1-4)."""

    def __init__(
        self, request: ImportRequest, fetcher: Fetcher, producer: RowProducer,
        progress: dict[str, dict[str, Any]], display: Display, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.req, self.fetcher, self.producer, self.done = request, fetcher, producer, progress
        self.display, self.clock = display, clock
        days = len(plan.archive_days(request.first, request.last, request.today))
        self.bar = Progress(len(request.symbols) * len(request.streams) * (days + 1), clock())
        self.outcome = Outcome()

    async def run(self) -> Outcome:
        for symbol in self.req.symbols:
            for stream in self.req.streams:
                series = Series(symbol, stream)
                self.outcome.series.append(series)
                rest_from = await self._archive_days(series)
                await self._rest_tail(series, rest_from)
        self.display.finish(self.bar, self.clock())
        return self.outcome

    def _unit_done(self, label: str) -> None:
        self.bar.done, self.bar.current, self.bar.label = self.bar.done + 1, 0.0, label
        self.display.show(self.bar, self.clock(), force=True)

    async def _archive_days(self, series: Series) -> tuple[date, int | None]:
        """Import archived days; returns (first day for REST, last id to continue from)."""
        last_id: int | None = None
        for day in plan.archive_days(self.req.first, self.req.last, self.req.today):
            key = plan.day_key(series.symbol, series.stream, day)
            if key in self.done:
                record = self.done[key]
                series.take(record["first_id"], record["last_id"], record["rows"])
                series.skipped_days, last_id = series.skipped_days + 1, record["last_id"]
                series.earlier_rows += record["rows"]
                self._unit_done(f"{key} done earlier")
                continue
            try:
                data = await self.fetcher.archive_file(series.stream, series.symbol, day)
            except ArchiveError as exc:
                self.outcome.failures.append(f"{exc.file}: {exc.reason}")
                log.error("archive file %s: %s; nothing from it was written", exc.file, exc.reason)  # noqa: TRY400
                last_id = None  # Rule 3
                self._unit_done(f"{key} FAILED")
                continue
            if data is None:
                return day, last_id
            last_id = self._publish_file(series, day, data) or last_id
            self._unit_done(key)
        return max(self.req.first, self.req.today), last_id

    def _publish_file(self, series: Series, day: date, data: bytes) -> int | None:
        name = file_name(series.stream, series.symbol, day)
        size, lines = csv_lines(data, name)
        received, read, count = time.time_ns() // 1000, 0, 0
        first: int | None = None
        last: int | None = None
        for number, raw in enumerate(lines, 1):
            read += len(raw)
            try:
                text = raw.decode()
                if number == 1 and is_header(text):
                    continue
                msg = parse_row(series.stream, series.symbol, text, received)
            except (RowError, UnicodeDecodeError) as exc:
                self.producer.dead_letter(raw.rstrip(b"\r\n"), f"{name}:{number}: {exc}", received)
                series.dead_letters += 1
                continue
            self.producer.row(msg)
            first, last, count = first if first is not None else msg["id"], msg["id"], count + 1
            if count % SHOW_EVERY_ROWS == 0:
                self._show(series, read / max(size, 1), SHOW_EVERY_ROWS)
        self.bar.rows += count % SHOW_EVERY_ROWS
        if first is None or last is None:
            return None
        record = {"v": 1, "symbol": series.symbol, "stream": series.stream, "day": day.isoformat(),
                  "source": "archive", "rows": count, "first_id": first, "last_id": last,
                  "done_at": time.time_ns() // 1000}
        self.producer.checkpoint(plan.day_key(series.symbol, series.stream, day), record)
        series.take(first, last, count)
        series.days += 1
        return last

    def _show(self, series: Series, fraction: float, rows: int) -> None:
        self.bar.current, self.bar.label = min(fraction, 1.0), f"{series.symbol} {series.stream}"
        self.bar.rows += rows
        self.display.show(self.bar, self.clock())

    async def _rest_tail(self, series: Series, start: tuple[date, int | None]) -> None:
        first_day, last_id = start
        cursor = self.done.get(plan.rest_key(series.symbol, series.stream))
        task = plan.rest_task(series.symbol, series.stream, first_day, self.req.last, self.req.now_us,
                              last_id, cursor)  # fmt: skip
        if task is not None:
            try:
                await self._rest_pages(series, task)
            except (BackfillError, ParseError) as exc:
                self.outcome.failures.append(f"REST {series.symbol} {series.stream}: {exc}")
                log.error("REST %s %s failed: %s", series.symbol, series.stream, exc)  # noqa: TRY400
        self._unit_done(f"{series.symbol} {series.stream} REST")

    async def _rest_pages(self, series: Series, task: plan.RestTask) -> None:
        from_id = task.from_id
        if from_id is None:
            from_id = await self.fetcher.first_id_at(task.symbol, task.stream, task.start_us)
        if from_id is None:
            return
        cursor = {"v": 1, "source": "rest", "from_id": from_id, "last_id": from_id - 1}
        for page in range(1, 10**9):
            rows = await self.fetcher.rest_page(task.symbol, task.stream, from_id)
            wanted = [r for r in rows if r["id"] >= from_id and r["trade_time"] < task.end_us]
            self._publish_rest(series, wanted, cursor)
            span = max(task.end_us - task.start_us, 1)
            last_time = wanted[-1]["trade_time"] if wanted else task.end_us
            self._show(series, (last_time - task.start_us) / span, len(wanted))
            if len(wanted) < len(rows) or len(rows) < PAGE_LIMIT:
                break
            from_id = rows[-1]["id"] + 1
            if page % REST_CHECKPOINT_PAGES == 0:
                self.producer.checkpoint(plan.rest_key(task.symbol, task.stream), cursor)
        self.producer.checkpoint(plan.rest_key(task.symbol, task.stream), cursor)

    def _publish_rest(self, series: Series, rows: list[TradeMessage], cursor: dict[str, Any]) -> None:
        for row in rows:
            self.producer.row(row)
        if rows:
            series.take(rows[0]["id"], rows[-1]["id"], len(rows))
            series.rest_rows += len(rows)
            cursor["last_id"] = rows[-1]["id"]
