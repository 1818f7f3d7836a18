"""The OpenAPI 3 document of the query API, built from db.service.params and db.service.results (no I/O).

Rule: the document is derived from the same tables the server uses (the commands and their
parameters in db.service.params, the result dataclasses in db.service.results), so it cannot drift from them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from decimal import Decimal
from typing import Any

from db.service import audit, results
from db.service.export_http import export_operation
from db.service.params import COMMANDS, REQUIRED

_DESCRIPTIONS = {
    "symbol": ("Symbol, e.g. BTCUSDT (A-Z, 0-9; lower case is upper-cased)", {"type": "string"}),
    "type": ("Trade stream: trade (default) or aggTrade", {"type": "string", "enum": ["trade", "aggTrade"]}),
    "stream": ("Audit only this stream: trade or aggTrade (default both, and their consistency)",
               {"type": "string", "enum": ["trade", "aggTrade"]}),
    "at": ("ISO 8601 time (UTC when no offset), epoch milliseconds or now; spread: default now",
           {"type": "string"}),
    "from": ("Interval start (inclusive), ISO 8601, epoch ms or now", {"type": "string"}),
    "to": ("Interval end (exclusive), ISO 8601, epoch ms or now; default now", {"type": "string"}),
    "last": ("Interval [now - D, now), e.g. 5m, 1h, 2d; instead of from/to; default 1h (gaps 1d)",
             {"type": "string", "pattern": "^[0-9]+[smhd]$"}),
    "bucket": ("Bucket width from 1s to 1d, e.g. 1m (default), 15m, 1h",
               {"type": "string", "pattern": "^[0-9]+[smhd]$"}),
    "fill": ("Return empty buckets too (OHLC = previous close, volume 0)", {"type": "boolean"}),
    "window": ("Closes per moving average, 1-1000 (default 20)", {"type": "integer"}),
    "threshold": ("Notional price*qty threshold in the quote currency (default 100000)",
                  {"type": "string", "format": "decimal"}),
    "limit": ("Most trades to return (default 100; maximum QUERY_MAX_ROWS)", {"type": "integer"}),
}
_SUMMARIES = {
    "latest": "Latest trade price and its time",
    "price-at": "Price as of a time: last trade at or before it, first trade after it, the nearest",
    "range": "OHLC, volume, quote volume, VWAP and trade count over [from, to)",
    "candles": "OHLCV candles per time bucket",
    "stats": "Row counts, first/last time and min/max price per table; gap counts by status",
    "spread": "Best bid, best ask and spread in force at a time (bookTicker)",
    "sma": "Simple moving average of bucket closes",
    "whales": "Trades with notional price*qty at or above a threshold",
    "gaps": "Recorded gaps whose data (the missing events' times) overlaps [from, to), with repair "
            "status, and rows per UTC day",
    "audit": "Is [from, to) complete? Id continuity per stream and trade/aggTrade consistency, checked "
             "in the database; every hole with its id range, time span and the gap record explaining "
             "it (or none). 200 either way: see 'complete'",
}
_DEC = {"type": "string", "format": "decimal", "description": "exact decimal, digits as stored"}
_TIME = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _schema_of(hint: Any) -> dict[str, Any]:
    """JSON schema of one dataclass field's type hint."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        inner = _schema_of(next(a for a in args if a is not type(None)))
        return {"allOf": [inner], "nullable": True} if "$ref" in inner else {**inner, "nullable": True}
    if typing.get_origin(hint) is list:
        return {"type": "array", "items": _schema_of(args[0])}
    if typing.get_origin(hint) is dict:
        return {"type": "object", "additionalProperties": _schema_of(args[1])}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _ref(hint.__name__)
    simple = {Decimal: _DEC, datetime: _TIME, int: {"type": "integer"}, bool: {"type": "boolean"},
              str: {"type": "string"}}
    return dict(simple[hint])


def component(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props = {f.name: _schema_of(hints[f.name]) for f in dataclasses.fields(cls)}
    return {"type": "object", "properties": props, "required": list(props)}


_COMPONENTS = (results.Trade, results.Candle, results.SmaPoint,
               results.TableStats, results.Quote, results.Whale, results.Gap, results.DayCount,
               audit.StreamAudit, audit.Hole, audit.Duplicate, audit.AggMismatch)


def _maybe(name: str) -> dict[str, Any]:
    return {"allOf": [_ref(name)], "nullable": True}


def _obj(**props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def _arr(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


def _bodies() -> dict[str, dict[str, Any]]:
    s, t = {"type": "string"}, _TIME
    nul = {"nullable": True}
    base = {"symbol": s, "type": s}
    span = {**base, "from": t, "to": t}
    return {
        "latest": _obj(**base, trade=_ref("Trade")),
        "price-at": _obj(**base, at=t, price={**_DEC, **nul}, before=_maybe("Trade"),
                         after=_maybe("Trade"), nearest=_maybe("Trade")),
        "range": _obj(**span, **{k: v for k, v in component(results.RangeSummary)["properties"].items()
                                 if k not in ("start", "end")}),
        "candles": _obj(**span, bucket_seconds={"type": "integer"}, fill={"type": "boolean"},
                        candles=_arr("Candle")),
        "stats": _obj(symbol=s, tables=_arr("TableStats"),
                      gaps={"type": "object", "additionalProperties": {"type": "integer"}}),
        "spread": _obj(symbol=s, at=t, quote=_maybe("Quote")),
        "sma": _obj(**span, bucket_seconds={"type": "integer"}, window={"type": "integer"},
                    points=_arr("SmaPoint")),
        "whales": _obj(**span, threshold=_DEC, limit={"type": "integer"},
                       truncated={"type": "boolean"}, trades=_arr("Whale")),
        "gaps": _obj(symbol=s, **{"from": t, "to": t}, gaps=_arr("Gap"), days=_arr("DayCount")),
        "audit": _obj(symbol=s, **{"from": t, "to": t}, streams={"type": "array", "items": s},
                      complete={"type": "boolean"}, consistency_checked={"type": "boolean"},
                      summary=_arr("StreamAudit"), holes=_arr("Hole"), duplicates=_arr("Duplicate"),
                      mismatches=_arr("AggMismatch")),
    }


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _operation(command: str, body: dict[str, Any]) -> dict[str, Any]:
    required = REQUIRED.get(command, ("symbol",))
    params = [
        {"name": name, "in": "query", "required": name in required,
         "description": _DESCRIPTIONS[name][0], "schema": _DESCRIPTIONS[name][1]}
        for name in COMMANDS[command]
    ]
    return {"get": {
        "summary": _SUMMARIES[command], "operationId": command.replace("-", "_"),
        "parameters": params, "security": [{}, {"apiKey": []}],
        "responses": {
            "200": {"description": "the answer", "content": {"application/json": {"schema": body}}},
            "400": _error_response("a bad parameter (named in 'parameter')"),
            "401": _error_response("X-API-Key missing or wrong (when the server requires one)"),
            "404": _error_response("the symbol has no data for this question"),
            "503": _error_response("database unreachable or schema missing"),
            "504": _error_response("the query ran past the statement timeout"),
        },
    }}


def build_openapi() -> dict[str, Any]:
    bodies = _bodies()
    schemas = {cls.__name__: component(cls) for cls in _COMPONENTS}
    schemas["Error"] = _obj(error={"type": "string"}, message={"type": "string"},
                            parameter={"type": "string"})
    paths = {f"/v1/{c}": _operation(c, bodies[c]) for c in COMMANDS}
    paths["/v1/export"] = export_operation()
    paths["/healthz"] = {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "binance-pipeline query API", "version": "1.0.0",
                 "description": "Exact answers from the captured Binance tape. Prices and "
                 "quantities are decimal strings with the exchange's digits; times are UTC."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
    }
