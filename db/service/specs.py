"""The queries of the tape, one spec each: parameters, SQL, result type, summary, description, answer.

The CLI (``python -m db.query <name>``), the HTTP API (``GET /v1/<name>``) and the OpenAPI document are
generated from ``SPECS`` (db.service.spec says what a spec holds and how to add one).

Rule (no data): when the symbol has no row at all for the question (no trades of that type; no
bookTicker for spread; nothing anywhere for stats/gaps/audit), the answer carries ``no_data`` (CLI
exit 1, HTTP 404). An empty interval of a symbol that has data is an ordinary answer (trade_count 0,
an empty list).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Self, get_type_hints

from pydantic import PrivateAttr, ValidationInfo, model_validator

from db.service import answers as a
from db.service import export, queries
from db.service import results as r
from db.service import sqltext as q
from db.service.export_cli import DOWNLOAD
from db.service.params import (
    DEFAULT_WHALE_THRESHOLD,
    TRADE_TYPES,
    At,
    Bucket,
    Fill,
    Limit,
    Params,
    RangeParams,
    Streams,
    Threshold,
    TradeType,
    Window,
    WindowParams,
)
from db.service.render import Answer, Section, iso, jsonable, record
from db.service.spec import Connection, Limits, QuerySpec, registry
from db.store import audit as au
from db.store import audit_scan as scan

SPAN: dict[str, Any] = {"symbol": str, "type": str, "from": datetime, "to": datetime}


# --- latest -----------------------------------------------------------------------------------
class LatestParams(Params):
    type: TradeType = "trade"


def latest(conn: Connection, req: LatestParams, _: Limits) -> Answer:
    trade = queries.latest(conn, req.symbol, req.type)
    doc = {**a.head(req, "symbol", "type"), "trade": jsonable(trade)}
    if trade is None:
        return Answer(doc, no_data=f"no {req.type} data for {req.symbol}")
    return Answer(doc, [Section(("symbol", "type", *a.TRADE_COLUMNS),
                                [(req.symbol, req.type, *record(trade, a.TRADE_COLUMNS))], vertical=True)])


# --- price-at ---------------------------------------------------------------------------------
class PriceAtParams(Params):
    required: ClassVar[tuple[str, ...]] = ("symbol", "at")
    positional: ClassVar[tuple[str, ...]] = ("symbol", "at")
    at: At = None
    type: TradeType = "trade"


def price_at(conn: Connection, req: PriceAtParams, _: Limits) -> Answer:
    at = a.must(req.at, "at")
    res = queries.price_at(conn, req.symbol, at, req.type)
    doc = {**a.head(req, "symbol", "type", "at"), "price": jsonable(res.price),
           **{k: jsonable(getattr(res, k)) for k in ("before", "after", "nearest")}}
    if res.before is None and res.after is None:
        return Answer(doc, no_data=f"no {req.type} data for {req.symbol}")
    rows = [(side, *record(t, a.TRADE_COLUMNS)) for side, t in
            (("at_or_before", res.before), ("after", res.after), ("nearest", res.nearest))]
    note = f"price as of {iso(at)}: {doc['price'] or '- (no trade at or before it)'}"
    return Answer(doc, [Section(("side", *a.TRADE_COLUMNS), rows)], [note])


# --- range ------------------------------------------------------------------------------------
class TradeRangeParams(RangeParams):
    type: TradeType = "trade"


def range_(conn: Connection, req: TradeRangeParams, _: Limits) -> Answer:
    res = queries.range_summary(conn, req.symbol, req.start, req.end, req.type)
    summary = {k: v for k, v in jsonable(res).items() if k not in ("start", "end")}
    doc = {**a.head(req, "symbol", "type", "from", "to"), **summary}
    no_data = a.no_trades(conn, req) if res.trade_count == 0 else None
    return Answer(doc, [Section(a.RANGE_COLUMNS, [tuple(doc[c] for c in a.RANGE_COLUMNS)], vertical=True)],
                  no_data=no_data)


# --- candles ----------------------------------------------------------------------------------
class CandlesParams(RangeParams):
    rows_per: ClassVar[str] = "bucket"
    type: TradeType = "trade"
    bucket: Bucket = timedelta(minutes=1)
    fill: Fill = False


def candles(conn: Connection, req: CandlesParams, _: Limits) -> Answer:
    rows = queries.candles(conn, req.symbol, req.start, req.end, req.bucket, req.type, req.fill)
    doc = {**a.head(req, "symbol", "type", "from", "to"),
           "bucket_seconds": int(req.bucket.total_seconds()), "fill": req.fill, "candles": jsonable(rows)}
    no_data = a.no_trades(conn, req) if not any(c.trade_count for c in rows) else None
    notes = [] if rows else ["no trades in the range"]
    return Answer(doc, [Section(a.CANDLE_COLUMNS, [record(c, a.CANDLE_COLUMNS) for c in rows])], notes,
                  no_data)


# --- stats ------------------------------------------------------------------------------------
def stats(conn: Connection, req: Params, _: Limits) -> Answer:
    res = queries.stats(conn, req.symbol)
    doc = {"symbol": req.symbol, "tables": jsonable(res.tables), "gaps": res.gaps}
    gaps = ", ".join(f"{k} {v}" for k, v in res.gaps.items())
    return Answer(doc, [Section(a.STATS_COLUMNS, [record(t, a.STATS_COLUMNS) for t in res.tables])],
                  [f"gaps: {gaps}"], f"no data for {req.symbol}" if res.empty else None)


# --- spread -----------------------------------------------------------------------------------
class SpreadParams(Params):
    at: At = None

    @model_validator(mode="after")
    def _at_now(self, info: ValidationInfo) -> Self:
        if self.at is None:
            self.at = info.context["now"] if info.context else datetime.now(UTC)  # default: the clock
        return self


def spread(conn: Connection, req: SpreadParams, _: Limits) -> Answer:
    at = a.must(req.at, "at")
    quote = queries.spread(conn, req.symbol, at)
    doc = {**a.head(req, "symbol", "at"), "quote": jsonable(quote)}
    if quote is not None:
        return Answer(doc, [Section(a.QUOTE_COLUMNS, [record(quote, a.QUOTE_COLUMNS)], vertical=True)])
    if queries.has_quotes(conn, req.symbol):
        return Answer(doc, notes=[f"no bookTicker quote for {req.symbol} at or before {iso(at)}"])
    return Answer(doc, no_data=f"no bookTicker data for {req.symbol}")


# --- sma --------------------------------------------------------------------------------------
class SmaParams(RangeParams):
    rows_per: ClassVar[str] = "bucket"
    type: TradeType = "trade"
    bucket: Bucket = timedelta(minutes=1)
    window: Window = 20


def sma(conn: Connection, req: SmaParams, _: Limits) -> Answer:
    points = queries.sma(conn, req.symbol, req.start, req.end, req.bucket, req.window, req.type)
    doc = {**a.head(req, "symbol", "type", "from", "to"), "bucket_seconds": int(req.bucket.total_seconds()),
           "window": req.window, "points": jsonable(points)}
    no_data = a.no_trades(conn, req) if all(p.close is None for p in points) else None
    cols = ("bucket", "close", "sma")
    return Answer(doc, [Section(cols, [record(p, cols) for p in points])], no_data=no_data)


# --- whales -----------------------------------------------------------------------------------
class WhalesParams(RangeParams):
    type: TradeType = "trade"
    threshold: Threshold = DEFAULT_WHALE_THRESHOLD
    limit: Limit = 100


def whales(conn: Connection, req: WhalesParams, _: Limits) -> Answer:
    res = queries.whales(conn, req.symbol, req.start, req.end, req.threshold, req.type, req.limit)
    doc = {**a.head(req, "symbol", "type", "from", "to"), "threshold": jsonable(req.threshold),
           "limit": req.limit, "truncated": res.truncated, "trades": jsonable(res.trades)}
    notes = [f"more than {req.limit} trades: showing the first {req.limit}"] if res.truncated else []
    if not res.trades:
        notes.append(f"no trade with notional >= {doc['threshold']} in the range")
    return Answer(doc, [Section(a.WHALE_COLUMNS, [record(w, a.WHALE_COLUMNS) for w in res.trades])], notes,
                  a.no_trades(conn, req) if not res.trades else None)


# --- gaps -------------------------------------------------------------------------------------
class GapsParams(RangeParams):
    default_last: ClassVar[timedelta] = timedelta(days=1)
    rows_per: ClassVar[str] = "day"


def gaps(conn: Connection, req: GapsParams, _: Limits) -> Answer:
    res = queries.completeness(conn, req.symbol, req.start, req.end)
    doc = {**a.head(req, "symbol", "from", "to"), "gaps": jsonable(res.gaps), "days": jsonable(res.days)}
    sections = [Section(a.GAP_COLUMNS, [record(g, a.GAP_COLUMNS) for g in res.gaps], "gaps"),
                Section(a.DAY_COLUMNS, [record(d, a.DAY_COLUMNS) for d in res.days], "rows per UTC day")]
    empty = not res.gaps and not any(d.trades or d.agg_trades for d in res.days)
    no_data = f"no data for {req.symbol}" if empty and not queries.has_any(conn, req.symbol) else None
    return Answer(doc, sections, [] if res.gaps else ["no gap recorded in the range"], no_data)


# --- audit ------------------------------------------------------------------------------------
class AuditParams(RangeParams):
    streams: Streams = TRADE_TYPES
    _max_rows: int = PrivateAttr(10_000)

    @model_validator(mode="after")
    def _keep_max_rows(self, info: ValidationInfo) -> Self:
        self._max_rows = int(info.context["max_rows"]) if info.context else self._max_rows
        return self

    @property
    def limit(self) -> int:
        """The most holes/disagreements listed per kind: QUERY_MAX_ROWS."""
        return self._max_rows


def audit(conn: Connection, req: AuditParams, limits: Limits) -> Answer:
    res = queries.audit(conn, req.symbol, req.start, req.end, req.streams, req.limit, limits.audit_timeout_ms)
    answer = a.audit_answer(req, res)
    if not any(s.rows for s in res.streams) and not res.holes and not queries.has_any(conn, req.symbol):
        return Answer(answer.document, no_data=f"no data for {req.symbol}")
    return answer


# --- markets ----------------------------------------------------------------------------------
MARKET_COLUMNS = ("symbol", "trades", "completeness", "open_gaps", "repaired_gaps", "unrepairable_gaps",
                  "last_price", "last_time")


class MarketsParams(WindowParams):
    """The whole market: no symbol; ``from``/``to``/``last`` is the window its trades are counted in."""


def markets(conn: Connection, req: MarketsParams, _: Limits) -> Answer:
    rows = queries.markets(conn, req.start, req.end)
    doc = {"from": jsonable(req.start), "to": jsonable(req.end), "markets": jsonable(rows)}
    notes = [] if rows else ["no symbol in the database yet"]
    return Answer(doc, [Section(MARKET_COLUMNS, [record(m, MARKET_COLUMNS) for m in rows])], notes)


# --- the specs --------------------------------------------------------------------------------
_RANGE_DOC = {k: v for k, v in get_type_hints(r.RangeSummary).items() if k not in ("start", "end")}

SPECS = registry([
    QuerySpec(
        name="latest", params=LatestParams, answer=latest, sql=(q.LATEST_SQL,),
        document={"symbol": str, "type": str, "trade": r.Trade | None},
        summary="the last trade price and its time",
        description="Latest trade price and its time"),
    QuerySpec(
        name="price-at", params=PriceAtParams, answer=price_at, sql=(q.PRICE_AT_SQL,),
        document={"symbol": str, "type": str, "at": datetime, "price": Decimal | None,
                  "before": r.Trade | None, "after": r.Trade | None, "nearest": r.Trade | None},
        summary="the price as of a time (last trade at or before it) and the nearest trades",
        description="Price as of a time: last trade at or before it, first trade after it, the nearest"),
    QuerySpec(
        name="range", params=TradeRangeParams, answer=range_, sql=(q.ROLLUP_RANGE_SQL,),
        document={**SPAN, **_RANGE_DOC},
        summary="open/high/low/close, volume, quote volume, VWAP and count over an interval",
        description="OHLC, volume, quote volume, VWAP and trade count over [from, to)"),
    QuerySpec(
        name="candles", params=CandlesParams, answer=candles,
        sql=(q.ROLLUP_CANDLES_SQL, q.ROLLUP_CANDLES_FILLED_SQL, q.CANDLES_SQL, q.CANDLES_FILLED_SQL),
        document={**SPAN, "bucket_seconds": int, "fill": bool, "candles": list[r.Candle]},
        summary="OHLCV candles of a bucket width from 1s to 1d",
        description="OHLCV candles per time bucket"),
    QuerySpec(
        name="stats", params=Params, answer=stats,
        sql=(*(sql for _, _, sql in q.STATS_SQL), q.GAP_STATUS_SQL),
        document={"symbol": str, "tables": list[r.TableStats], "gaps": dict[str, int]},
        summary="row counts, first/last time and min/max price per table",
        description="Row counts, first/last time and min/max price per table; gap counts by status"),
    QuerySpec(
        name="spread", params=SpreadParams, answer=spread, sql=(q.SPREAD_SQL, q.HAS_QUOTES_SQL),
        document={"symbol": str, "at": datetime, "quote": r.Quote | None},
        summary="best bid, best ask and spread in force at a time (bookTicker)",
        description="Best bid, best ask and spread in force at a time (bookTicker); at defaults to now"),
    QuerySpec(
        name="sma", params=SmaParams, answer=sma, sql=(q.ROLLUP_CANDLES_FILLED_SQL, q.CANDLES_FILLED_SQL),
        document={**SPAN, "bucket_seconds": int, "window": int, "points": list[r.SmaPoint]},
        summary="simple moving average of bucket closes",
        description="Simple moving average of bucket closes"),
    QuerySpec(
        name="whales", params=WhalesParams, answer=whales, sql=(q.WHALES_SQL,),
        document={**SPAN, "threshold": Decimal, "limit": int, "truncated": bool, "trades": list[r.Whale]},
        summary="trades whose notional price*qty is at or above a threshold",
        description="Trades with notional price*qty at or above a threshold"),
    QuerySpec(
        name="gaps", params=GapsParams, answer=gaps, sql=(q.GAPS_SQL, q.DAY_COUNTS_SQL),
        document={"symbol": str, "from": datetime, "to": datetime, "gaps": list[r.Gap],
                  "days": list[r.DayCount]},
        summary="recorded gaps whose data overlaps the range, with their repair status, and rows per UTC day",
        description="Recorded gaps whose data (the missing events' times) overlaps [from, to), with repair "
        "status, and rows per UTC day (default range: the last day)"),
    QuerySpec(
        name="audit", params=AuditParams, answer=audit,
        sql=(scan.AUDIT_BOUNDS_SQL, scan.AUDIT_ANOMALIES_SQL, scan.AUDIT_GAPS_SQL, scan.AUDIT_TIMES_SQL,
             scan.AUDIT_AGGS_SQL, scan.AUDIT_UNCOVERED_SQL),
        document={"symbol": str, "from": datetime, "to": datetime, "streams": list[str], "complete": bool,
                  "consistency_checked": bool, "summary": list[au.StreamAudit], "holes": list[au.Hole],
                  "duplicates": list[au.Duplicate], "mismatches": list[au.AggMismatch]},
        summary="check that the range is complete: id continuity per stream and trade/aggTrade "
        "consistency (exit 0 complete, 1 not)",
        description="Is [from, to) complete? Id continuity per stream and trade/aggTrade consistency, "
        "checked in the database; every hole with its id range, time span and the gap record explaining "
        "it (or none). 200 either way: see 'complete'"),
    QuerySpec(
        name="markets", params=MarketsParams, answer=markets, sql=(q.MARKETS_SQL,),
        document={"from": datetime, "to": datetime, "markets": list[r.Market]},
        summary="every symbol in the database: its trades in the range, gap records by status, last price",
        description="The market overview: every symbol in the database (trades, bookTicker or gap records), "
        "most trades in [from, to) first (default: the last hour), with its gap records by status "
        "(open / repaired / unrepairable, all of them) and its last trade. One statement whatever the "
        "number of symbols"),
    QuerySpec(
        name="export", params=export.ExportParams, download=DOWNLOAD,
        sql=(export.CSV_SQL["trade"], export.CSV_SQL["aggTrade"]),
        summary="the rows of a range in Binance's daily-archive CSV format, or Parquet",
        description="The rows of [from, to) as Binance's daily-archive CSV, or Parquet (streamed download)"),
])


def parse_request(name: str, raw: Mapping[str, str], now: datetime, max_rows: int) -> Any:
    """The validated parameters of query ``name`` (``InvalidArgument`` names the first bad one)."""
    return SPECS[name].parse(raw, now, max_rows)
