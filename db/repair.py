"""``python -m db.query audit --repair``: fetch the holes an audit found, through the normal path.

Steps (one function each):
  1. Audit the range (db.service.queries.audit) and pick the holes to fetch (db.store.audit.repair_targets:
     every hole, whatever gap record explains it).
  2. For each, publish an open gap record with reason ``audit`` to the gaps topic, then let
     ingestion's own ``Backfiller`` page the ids from REST (historicalTrades or aggTrades by
     fromId, within the REST weight budget) and publish the rows and the resolving record
     (``repaired``, or ``unrepairable`` with why) through ingestion's ``Publisher``.
  3. Wait (AUDIT_REPAIR_WAIT_S at most) until the worker has written each record's final status
     and the rows it says were recovered.
  4. Audit again; the exit status is that audit's.

Rules:
  1. Nothing is written to the database from here: rows and records go to Kafka, and the
     worker writes them, so a repair is as idempotent and ordered as any other delivery.
  2. An audit gap's key is ``<symbol>/<stream>/ids/<first>-<last>/audit-<unix s>``: it never
     collides with the record (of another reason) that may already describe the same ids.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg2

from binance_pipeline.common.clock import now_us
from binance_pipeline.common.events import GapMessage
from binance_pipeline.common.logs import configure
from binance_pipeline.common.settings import Settings
from db.service import answers, queries
from db.service.errors import DatabaseError
from db.service.spec import Request
from db.store import audit as au
from ingestion.backfill import Backfiller, Resolved
from ingestion.delivery import Lost as Dropped
from ingestion.metrics import IngestionMetrics
from ingestion.publisher import Publisher
from ingestion.records import id_gap

log = logging.getLogger(__name__)
REASON = "audit"
POLL_S = 0.5
Execute = Callable[[Request, Settings, str], tuple[int, str, str]]


@dataclass
class Lost:
    """Events the producer refused or failed to deliver during the repair."""

    count: int = 0


def audit_records(symbol: str, targets: list[au.Hole], now: int) -> list[GapMessage]:
    """One open gap record with reason ``audit`` per hole to fetch (Rule 2)."""
    records = []
    for h in targets:
        record = id_gap(symbol, h.stream, h.first_id, h.last_id, REASON, now)
        record["gap_id"] = f"{record['gap_id']}/audit-{now // 1_000_000}"
        records.append(record)
    return records


async def fetch(settings: Settings, records: list[GapMessage]) -> Lost:
    """Step 2: publish each record, backfill it, deliver everything (raises on a fatal producer)."""
    lost = Lost()
    metrics = IngestionMetrics()
    publisher = Publisher(settings, metrics)
    await asyncio.to_thread(publisher.ensure_topics)
    publisher.start()
    backfiller = Backfiller(settings, metrics)
    async with asyncio.TaskGroup() as tasks:
        serving = tasks.create_task(publisher.run())
        filling = tasks.create_task(backfiller.run())
        feeding = tasks.create_task(publisher.feed(backfiller.rows, backfiller.reserve))
        for record in records:
            publisher.publish_gap(record)
            backfiller.submit(record)
        while backfiller.pending() or not backfiller.answers.empty():
            _settle(publisher, backfiller, lost)
            await asyncio.sleep(0.1)
        for task in (filling, feeding, serving):
            task.cancel()
    left = await asyncio.to_thread(publisher.flush, settings.producer_flush_timeout_s)
    _settle(publisher, backfiller, lost)
    lost.count += left
    return lost


def _settle(publisher: Publisher, backfiller: Backfiller, lost: Lost) -> None:
    """Publish the repairs' resolved records; count what Kafka did not take."""
    for answer in backfiller.take_answers():
        if isinstance(answer, Resolved):
            publisher.publish_gap(answer.record)
    for report in publisher.take_reports():
        if isinstance(report, Dropped):
            lost.count += 1
            log.error("repair: %s %s id %s not delivered (%s)", report.symbol, report.kind, report.ident,
                      report.reason)  # fmt: skip


WAIT_SQL = """
SELECT g.status, g.missing,
       (SELECT count(DISTINCT id) FROM trades t WHERE t.symbol = g.symbol AND t.type = g.stream
          AND t.id BETWEEN g.first_id AND g.last_id)
FROM gaps g WHERE g.gap_id = %s"""


def landed(conn: queries.Connection, record: GapMessage) -> bool:
    """Step 3 for one record: its final status is stored, with every row it recovered."""
    rows = queries.rows_of(conn, WAIT_SQL, (record["gap_id"],))
    if not rows or rows[0][0] == "open":
        return False
    status, missing, present = rows[0]
    size = int(record["missing"] or 0)
    return bool(present >= size - (int(missing or 0) if status == "unrepairable" else 0))


def wait_landed(conn: queries.Connection, records: list[GapMessage], timeout_s: float) -> list[GapMessage]:
    """Step 3: wait for every record; returns those still not landed when time is up."""
    deadline, todo = time.monotonic() + timeout_s, list(records)
    while todo and time.monotonic() < deadline:
        todo = [r for r in todo if not landed(conn, r)]
        if todo:
            time.sleep(POLL_S)
    return todo


def repair_and_audit(request: Request, settings: Settings, fmt: str, execute: Execute) -> int:
    """Steps 1-4; progress on stderr, the final audit on stdout."""
    configure(settings.log_level)
    dsn = settings.database_url.get_secret_value()
    try:
        conn = queries.connect(dsn, settings.query_statement_timeout_ms)
        try:
            targets = _targets(conn, request, settings)
            records = audit_records(request.params.symbol, targets, now_us())
            _say(f"repair: {len(records)} holes to fetch "
                 f"({sum(h.missing for h in targets)} ids) from {settings.binance_rest_url}")
            if records:
                lost = asyncio.run(fetch(settings, records))
                late = wait_landed(conn, records, settings.audit_repair_wait_s)
                _report(records, lost, late, settings.audit_repair_wait_s)
        finally:
            conn.close()
    except (DatabaseError, psycopg2.Error) as exc:
        _say(f"python -m db.query: the database could not answer: {exc}")
        return 1
    status, out, err = execute(request, settings, fmt)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return status


def _targets(conn: queries.Connection, request: Request, settings: Settings) -> list[au.Hole]:
    p = request.params  # the audit spec's AuditParams
    res = queries.audit(conn, p.symbol, p.start, p.end, p.streams, p.limit,
                        settings.audit_statement_timeout_ms)
    _say(answers.verdict(res))
    return au.repair_targets(res.holes)


def _report(records: list[GapMessage], lost: Lost, late: list[GapMessage], waited: float) -> None:
    for r in records:
        _say(f"repair: {r['gap_id']} ({r['missing']} ids) published with reason {REASON}")
    if lost.count:
        _say(f"repair: {lost.count} events could not be delivered to Kafka")
    for r in late:
        _say(f"repair: {r['gap_id']} not landed after {waited:.0f} s (is the worker running?)")


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
