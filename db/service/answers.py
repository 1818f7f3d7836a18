"""The ten query commands, shared by the CLI and the HTTP API: Request in, Answer out.

Rules:
  1. A command runs db.service.queries functions and shapes their results; it parses nothing (that is
     db.service.params) and prints nothing (that is db.service.render and the front ends).
  2. No data: when the symbol has no row at all for the question (no trades of that type; no
     bookTicker for spread; nothing anywhere for stats/gaps), the Answer carries ``no_data``
     (CLI exit 1, HTTP 404). An empty interval of a symbol that has data is an ordinary answer
     (trade_count 0, an empty list).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from db.service import audit as au
from db.service import queries
from db.service.params import Request
from db.service.queries import Connection
from db.service.render import Answer, Section, iso, jsonable, record

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


@dataclass(frozen=True)
class Limits:
    """Limits a front end sets for the commands that need their own (the audit's long scans)."""

    audit_timeout_ms: int = 300_000


def run(conn: Connection, req: Request, limits: Limits = Limits()) -> Answer:
    if req.command == "audit":
        return _audit(conn, req, limits)
    return HANDLERS[req.command](conn, req)


def _head(req: Request, *names: str) -> dict[str, Any]:
    values = {"symbol": req.symbol, "type": req.type, "at": req.at, "from": req.start, "to": req.end}
    return {name: jsonable(values[name]) for name in names}


def _interval(req: Request) -> tuple[datetime, datetime]:
    if req.start is None or req.end is None:
        raise ValueError(f"{req.command}: db.service.params did not set the range")
    return req.start, req.end


def _at(req: Request) -> datetime:
    if req.at is None:
        raise ValueError(f"{req.command}: db.service.params did not set at")
    return req.at


def _no_trades(conn: Connection, req: Request) -> str | None:
    if queries.latest(conn, req.symbol, req.type) is None:
        return f"no {req.type} data for {req.symbol}"
    return None


def _latest(conn: Connection, req: Request) -> Answer:
    trade = queries.latest(conn, req.symbol, req.type)
    doc = {**_head(req, "symbol", "type"), "trade": jsonable(trade)}
    if trade is None:
        return Answer(doc, no_data=f"no {req.type} data for {req.symbol}")
    return Answer(doc, [Section(("symbol", "type", *TRADE_COLUMNS),
                                [(req.symbol, req.type, *record(trade, TRADE_COLUMNS))], vertical=True)])


def _price_at(conn: Connection, req: Request) -> Answer:
    res = queries.price_at(conn, req.symbol, _at(req), req.type)
    doc = {**_head(req, "symbol", "type", "at"), "price": jsonable(res.price),
           **{k: jsonable(getattr(res, k)) for k in ("before", "after", "nearest")}}
    if res.before is None and res.after is None:
        return Answer(doc, no_data=f"no {req.type} data for {req.symbol}")
    rows = [(side, *record(t, TRADE_COLUMNS)) for side, t in
            (("at_or_before", res.before), ("after", res.after), ("nearest", res.nearest))]
    note = f"price as of {iso(_at(req))}: {doc['price'] or '- (no trade at or before it)'}"
    return Answer(doc, [Section(("side", *TRADE_COLUMNS), rows)], [note])


def _range(conn: Connection, req: Request) -> Answer:
    res = queries.range_summary(conn, req.symbol, *_interval(req), req.type)
    summary = {k: v for k, v in jsonable(res).items() if k not in ("start", "end")}
    doc = {**_head(req, "symbol", "type", "from", "to"), **summary}
    no_data = _no_trades(conn, req) if res.trade_count == 0 else None
    return Answer(doc, [Section(RANGE_COLUMNS, [tuple(doc[c] for c in RANGE_COLUMNS)], vertical=True)],
                  no_data=no_data)


def _candles(conn: Connection, req: Request) -> Answer:
    rows = queries.candles(conn, req.symbol, *_interval(req), req.bucket, req.type, req.fill)
    doc = {**_head(req, "symbol", "type", "from", "to"),
           "bucket_seconds": int(req.bucket.total_seconds()), "fill": req.fill, "candles": jsonable(rows)}
    no_data = _no_trades(conn, req) if not any(c.trade_count for c in rows) else None
    notes = [] if rows else ["no trades in the range"]
    return Answer(doc, [Section(CANDLE_COLUMNS, [record(c, CANDLE_COLUMNS) for c in rows])], notes,
                  no_data)


def _stats(conn: Connection, req: Request) -> Answer:
    res = queries.stats(conn, req.symbol)
    doc = {"symbol": req.symbol, "tables": jsonable(res.tables), "gaps": res.gaps}
    gaps = ", ".join(f"{k} {v}" for k, v in res.gaps.items())
    return Answer(doc, [Section(STATS_COLUMNS, [record(t, STATS_COLUMNS) for t in res.tables])],
                  [f"gaps: {gaps}"], f"no data for {req.symbol}" if res.empty else None)


def _spread(conn: Connection, req: Request) -> Answer:
    quote = queries.spread(conn, req.symbol, _at(req))
    doc = {**_head(req, "symbol", "at"), "quote": jsonable(quote)}
    if quote is not None:
        return Answer(doc, [Section(QUOTE_COLUMNS, [record(quote, QUOTE_COLUMNS)], vertical=True)])
    if queries.has_quotes(conn, req.symbol):
        return Answer(doc, notes=[f"no bookTicker quote for {req.symbol} at or before {iso(_at(req))}"])
    return Answer(doc, no_data=f"no bookTicker data for {req.symbol}")


def _sma(conn: Connection, req: Request) -> Answer:
    points = queries.sma(conn, req.symbol, *_interval(req), req.bucket, req.window, req.type)
    doc = {**_head(req, "symbol", "type", "from", "to"), "bucket_seconds": int(req.bucket.total_seconds()),
           "window": req.window, "points": jsonable(points)}
    no_data = _no_trades(conn, req) if all(p.close is None for p in points) else None
    cols = ("bucket", "close", "sma")
    return Answer(doc, [Section(cols, [record(p, cols) for p in points])], no_data=no_data)


def _whales(conn: Connection, req: Request) -> Answer:
    res = queries.whales(conn, req.symbol, *_interval(req), req.threshold, req.type, req.limit)
    doc = {**_head(req, "symbol", "type", "from", "to"), "threshold": jsonable(req.threshold),
           "limit": req.limit, "truncated": res.truncated, "trades": jsonable(res.trades)}
    notes = [f"more than {req.limit} trades: showing the first {req.limit}"] if res.truncated else []
    if not res.trades:
        notes.append(f"no trade with notional >= {doc['threshold']} in the range")
    return Answer(doc, [Section(WHALE_COLUMNS, [record(w, WHALE_COLUMNS) for w in res.trades])], notes,
                  _no_trades(conn, req) if not res.trades else None)


def _gaps(conn: Connection, req: Request) -> Answer:
    res = queries.completeness(conn, req.symbol, *_interval(req))
    doc = {**_head(req, "symbol", "from", "to"), "gaps": jsonable(res.gaps), "days": jsonable(res.days)}
    sections = [Section(GAP_COLUMNS, [record(g, GAP_COLUMNS) for g in res.gaps], "gaps"),
                Section(DAY_COLUMNS, [record(d, DAY_COLUMNS) for d in res.days], "rows per UTC day")]
    empty = not res.gaps and not any(d.trades or d.agg_trades for d in res.days)
    no_data = f"no data for {req.symbol}" if empty and not queries.has_any(conn, req.symbol) else None
    return Answer(doc, sections, [] if res.gaps else ["no gap recorded in the range"], no_data)


def audit_answer(req: Request, res: au.Audit) -> Answer:
    """The answer of an audit: verdict, per-stream summary, every hole, every disagreement."""
    doc = {**_head(req, "symbol", "from", "to"), "streams": list(req.streams), **{
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


def _audit(conn: Connection, req: Request, limits: Limits) -> Answer:
    res = queries.audit(conn, req.symbol, *_interval(req), req.streams, req.limit, limits.audit_timeout_ms)
    answer = audit_answer(req, res)
    if not any(s.rows for s in res.streams) and not res.holes and not queries.has_any(conn, req.symbol):
        return Answer(answer.document, no_data=f"no data for {req.symbol}")
    return answer


HANDLERS: dict[str, Callable[[Connection, Request], Answer]] = {
    "latest": _latest, "price-at": _price_at, "range": _range, "candles": _candles,
    "stats": _stats, "spread": _spread, "sma": _sma, "whales": _whales, "gaps": _gaps,
}
