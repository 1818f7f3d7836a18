"""What the answers of the query specs (db.service.specs) share: their table columns, the head of
their documents, and the audit's answer and verdict (also printed by db.repair).

Rules:
  1. An answer runs db.service.queries functions and shapes their results; it parses nothing (that is
     db.service.params) and prints nothing (that is db.service.render and the front ends).
  2. No data: when the symbol has no row at all for the question, the Answer carries ``no_data``
     (CLI exit 1, HTTP 404); see db.service.specs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from db.service import queries
from db.service.queries import Connection
from db.service.render import Answer, Section, iso, jsonable, record
from db.store import audit as au

TRADE_COLUMNS = ("time", "id", "price", "qty", "buyer_maker")
RANGE_COLUMNS = ("from", "to", "trade_count", "open", "high", "low", "close", "volume",
                 "quote_volume", "vwap", "first_time", "last_time")
CANDLE_COLUMNS = ("bucket", "open", "high", "low", "close", "volume", "quote_volume", "trade_count")
STATS_COLUMNS = ("table", "type", "rows", "first_time", "last_time", "min_price", "max_price")
QUOTE_COLUMNS = ("at", "time", "update_id", "bid_price", "bid_qty", "ask_price", "ask_qty", "spread")
WHALE_COLUMNS = (*TRADE_COLUMNS, "notional")
GAP_COLUMNS = ("gap_id", "stream", "kind", "first_id", "last_id", "data_start", "data_end",
               "missing", "reason", "status", "detected_at", "repaired_at")
DAY_COLUMNS = ("day", "trades", "agg_trades")
STREAM_COLUMNS = ("stream", "rows", "first_id", "last_id", "holes", "missing", "duplicates")
HOLE_COLUMNS = ("stream", "first_id", "last_id", "missing", "after_time", "before_time", "explanation",
                "gap_id")
MISMATCH_COLUMNS = ("time", "problem", "agg_id", "first_id", "last_id", "agg_qty", "trades_qty",
                    "trades_found", "trades_expected")


def head(req: Any, *names: str) -> dict[str, Any]:
    """The parameters an answer's document starts with, JSON-converted (``from``/``to``: the range)."""
    values = {"symbol": req.symbol, "type": getattr(req, "type", None), "at": getattr(req, "at", None),
              "from": req.start, "to": req.end}
    return {name: jsonable(values[name]) for name in names}


def must(value: datetime | None, name: str) -> datetime:
    """A time the parameters always set (db.service.params), typed as such."""
    if value is None:
        raise ValueError(f"db.service.params did not set {name}")
    return value


def no_trades(conn: Connection, req: Any) -> str | None:
    """Rule 2's message when the symbol has no trade of the requested type at all."""
    if queries.latest(conn, req.symbol, req.type) is None:
        return f"no {req.type} data for {req.symbol}"
    return None


def audit_answer(req: Any, res: au.Audit) -> Answer:
    """The answer of an audit: verdict, per-stream summary, every hole, every disagreement."""
    doc = {**head(req, "symbol", "from", "to"), "streams": list(req.streams), **{
        k: jsonable(getattr(res, k)) for k in ("complete", "consistency_checked")},
        "summary": jsonable(res.streams), "holes": jsonable(res.holes),
        "duplicates": jsonable(res.duplicates), "mismatches": jsonable(res.mismatches)}
    sections = [Section(STREAM_COLUMNS, [record(s, STREAM_COLUMNS) for s in res.streams], "streams")]
    if res.holes:
        sections.append(Section(HOLE_COLUMNS, [record(h, HOLE_COLUMNS) for h in res.holes], "holes"))
    if res.duplicates:
        sections.append(Section(("stream", "id", "time"), [record(d, ("stream", "id", "time"))
                                                          for d in res.duplicates], "duplicates"))
    if res.mismatches:
        sections.append(Section(MISMATCH_COLUMNS, [record(m, MISMATCH_COLUMNS) for m in res.mismatches],
                                "trade/aggTrade disagreements"))
    return Answer(doc, sections, [verdict(res)], exit_status=0 if res.complete else 1)


def verdict(res: au.Audit) -> str:
    """One line: COMPLETE or INCOMPLETE, with what is wrong."""
    check = "ids, and trades against aggTrades" if res.consistency_checked else "ids"
    if res.complete:
        rows = sum(s.rows for s in res.streams)
        return f"COMPLETE: {res.symbol} {iso(res.start)} .. {iso(res.end)}: {rows} rows, {check} checked"
    unexplained = sum(h.missing for h in res.holes if h.explanation == au.UNEXPLAINED)
    parts = [f"{sum(s.holes for s in res.streams)} holes ({sum(s.missing for s in res.streams)} ids "
             f"missing, {unexplained} explained by no gap record)"]
    if res.duplicates:
        parts.append(f"{len(res.duplicates)} duplicate ids")
    if res.mismatches:
        parts.append(f"{len(res.mismatches)} trade/aggTrade disagreements")
    if any(s.truncated for s in res.streams):
        parts.append("listing truncated at QUERY_MAX_ROWS")
    return f"INCOMPLETE: {res.symbol} {iso(res.start)} .. {iso(res.end)}: " + ", ".join(parts)
