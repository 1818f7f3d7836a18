"""The OpenAPI 3 document of the query API, generated from the query specs (no I/O).

Rules:
  1. Every route is in the document: one operation per spec (its parameters from the spec's model,
     its 200 body from the spec's document type, the dataclasses in it as components), and the open
     pages of OPS_PATHS. Nothing is written by hand per query, so the document cannot drift.
  2. Security is per operation: a spec that ``requires_key`` has ``security: [{"apiKey": []}]`` and a
     401 response when the server requires a key (``key_required``); every other route has
     ``security: []`` (open). The server serves the document of its own configuration.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from db.service.params import Doc
from db.service.spec import QuerySpec
from db.service.specs import SPECS

_DEC = {"type": "string", "format": "decimal", "description": "exact decimal, digits as stored"}
_TIME = {"type": "string", "format": "date-time"}
_SIMPLE: dict[Any, dict[str, Any]] = {Decimal: _DEC, datetime: _TIME, int: {"type": "integer"},
                                      bool: {"type": "boolean"}, str: {"type": "string"}}
OPS_PATHS = {  # the open pages (db.service.http, db.service.ops): path -> summary
    "/healthz": "Liveness", "/readyz": "Readiness: the database answers and holds the pipeline's tables",
    "/metrics": "Prometheus metrics of the API", "/openapi.json": "This document",
    "/docs": "Swagger UI on this document",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def schema_of(hint: Any, components: dict[str, Any]) -> dict[str, Any]:
    """JSON schema of one type hint; the dataclasses met are added to ``components``."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        inner = schema_of(next(a for a in args if a is not type(None)), components)
        return {"allOf": [inner], "nullable": True} if "$ref" in inner else {**inner, "nullable": True}
    if typing.get_origin(hint) in (list, tuple):
        return {"type": "array", "items": schema_of(args[0], components)}
    if typing.get_origin(hint) is dict:
        return {"type": "object", "additionalProperties": schema_of(args[1], components)}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if hint.__name__ not in components:
            components[hint.__name__] = {}  # placeholder: a recursive type stops here
            components[hint.__name__] = component(hint, components)
        return _ref(hint.__name__)
    return dict(_SIMPLE[hint])


def component(cls: type, components: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props = {f.name: schema_of(hints[f.name], components) for f in dataclasses.fields(cls)}
    return {"type": "object", "properties": props, "required": list(props)}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def parameters(spec: QuerySpec[Any]) -> list[dict[str, Any]]:
    """The spec's parameters, in order, from its model: name, description, schema, required."""
    out = []
    for wire, _, field in spec.params.fields():
        doc = next((m for m in field.metadata if isinstance(m, Doc)), Doc({"type": "string"}))
        out.append({"name": wire, "in": "query", "required": wire in spec.params.required,
                    "description": field.description, "schema": doc.schema})
    return out


def _body(spec: QuerySpec[Any], components: dict[str, Any]) -> dict[str, Any]:
    if spec.download is not None:
        return {"description": "the file", "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in spec.download.media_types}}
    props = {k: schema_of(v, components) for k, v in spec.response().items()}
    return {"description": "the answer",
            "content": {"application/json": {"schema": {"type": "object", "properties": props}}}}


def operation(spec: QuerySpec[Any], components: dict[str, Any], key_required: bool) -> dict[str, Any]:
    """Rule 1-2: the GET operation of one spec."""
    keyed = spec.requires_key and key_required
    responses = {"200": _body(spec, components), "400": _error("a bad parameter (named in 'parameter')")}
    if keyed:
        responses["401"] = _error("X-API-Key missing or wrong")
    if spec.download is None:
        responses["404"] = _error("the symbol has no data for this question")
    responses["503"] = _error("database unreachable or schema missing")
    responses["504"] = _error("the query ran past the statement timeout")
    return {"get": {
        "summary": spec.summary, "description": spec.description, "operationId": spec.name.replace("-", "_"),
        "parameters": parameters(spec), "security": [{"apiKey": []}] if keyed else [],
        "responses": responses,
    }}


def build_openapi(specs: Iterable[QuerySpec[Any]] | None = None, key_required: bool = True) -> dict[str, Any]:
    """The document of ``specs`` (default: every spec of db.service.specs) and the open pages."""
    components: dict[str, Any] = {}
    chosen = SPECS.values() if specs is None else specs
    paths: dict[str, Any] = {f"/v1/{s.name}": operation(s, components, key_required) for s in chosen}
    for path, summary in OPS_PATHS.items():
        paths[path] = {"get": {"summary": summary, "security": [],
                               "responses": {"200": {"description": "ok"}}}}
    components["Error"] = {"type": "object", "properties": {
        "error": {"type": "string"}, "message": {"type": "string"}, "parameter": {"type": "string"}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "binance-pipeline query API", "version": "1.0.0",
                 "description": "Exact answers from the captured Binance tape. Prices and quantities are "
                 "decimal strings with the exchange's digits; times are UTC."
                 + ("" if key_required else " This server requires no API key.")},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
    }
