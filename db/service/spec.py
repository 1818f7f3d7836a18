"""What a query is: a ``QuerySpec``, declared once, from which the CLI subcommand, the HTTP route and
the OpenAPI operation are generated (db.service.cli, db.service.http, db.service.openapi). No I/O.

A spec holds:
  - ``params``: its parameters, a pydantic model built from db.service.params' annotated types (the
    checks and their messages, the descriptions, the OpenAPI schemas);
  - ``sql``: the SQL text(s) it runs (db.service.sqltext);
  - ``document``: its result type, the JSON document it answers, as name -> type hint (dataclasses
    of db.service.results become OpenAPI components);
  - ``summary`` (one line: CLI help, OpenAPI summary) and ``description``;
  - ``answer``: the function that runs it (``None``: the rows of ``sql[0]``, one ``row`` each);
  - ``requires_key``: whether its route needs X-API-Key when the server has QUERY_API_KEY;
  - ``download``: for a query that answers a file instead of a document (export), the hooks of
    its two front ends.

Rules:
  1. Adding a query is one spec, one SQL text and its tests: a spec with ``answer=None`` answers
     ``{<its parameters>, "rows": [<row>, ...]}`` and needs nothing else.
  2. Names are unique: the spec's name is its CLI subcommand and its route ``/v1/<name>``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from aiohttp import web

from binance_pipeline.common.settings import QuerySettings
from db.service import queries
from db.service.params import Params
from db.service.render import Answer, Section, jsonable, record

P = TypeVar("P", bound=Params)
Connection = queries.Connection
HttpHandler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Limits:
    """Limits a front end sets for the queries that need their own (the audit's long scans)."""

    audit_timeout_ms: int = 300_000


@dataclass(frozen=True)
class Download:
    """A query answered with a file (export): its extra CLI arguments, how the CLI writes it, how the
    HTTP route streams it (given the pool's connect parameters), and the media types it answers."""

    cli_arguments: Callable[[argparse.ArgumentParser], None]
    cli_run: Callable[[argparse.Namespace, QuerySettings, Any, argparse.ArgumentParser], int]
    http_handler: Callable[[dict[str, Any]], HttpHandler]
    media_types: tuple[str, ...]


@dataclass(frozen=True)
class QuerySpec(Generic[P]):
    """One query, declared once (see the module docstring)."""

    name: str
    params: type[P]
    summary: str
    description: str
    sql: tuple[str, ...]
    document: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    answer: Callable[[Connection, P, Limits], Answer] | None = None
    row: type | None = None
    requires_key: bool = True
    download: Download | None = None

    def parse(self, raw: Mapping[str, str], now: datetime, max_rows: int) -> P:
        """The validated parameters, or ``InvalidArgument`` naming the first bad one."""
        return self.params.parse(self.name, raw, now, max_rows)

    def run(self, conn: Connection, params: P, limits: Limits = Limits()) -> Answer:
        if self.answer is not None:
            return self.answer(conn, params, limits)
        return rows_answer(self, conn, params)

    def response(self) -> Mapping[str, Any]:
        """The document's type: declared, or for ``answer=None`` the parameters and ``rows``."""
        if self.document or self.row is None:
            return self.document
        fields = self.params.model_fields
        rows: Any = list[self.row]  # type: ignore[name-defined]  # a type built at run time
        return {**{f.alias or n: f.annotation for n, f in fields.items()}, "rows": rows}


@dataclass(frozen=True)
class Request:
    """A validated request: the spec it is for, and its parameters."""

    spec: QuerySpec[Any]
    params: Any


def rows_answer(spec: QuerySpec[Any], conn: Connection, params: Params) -> Answer:
    """Rule 1: the rows of ``spec.sql[0]`` run with the parameters, one ``spec.row`` each."""
    if spec.row is None:
        raise ValueError(f"{spec.name}: a spec without answer needs a row type")
    values = params.model_dump()
    rows = [spec.row(*r) for r in queries.rows_of(conn, spec.sql[0], values)]
    columns = tuple(f.name for f in dataclasses.fields(spec.row))
    head = {type(params).model_fields[n].alias or n: jsonable(v) for n, v in values.items()}
    return Answer({**head, "rows": jsonable(rows)}, [Section(columns, [record(r, columns) for r in rows])])


def registry(specs: Iterable[QuerySpec[Any]]) -> dict[str, QuerySpec[Any]]:
    """Rule 2: name -> spec; a name declared twice is an error."""
    out: dict[str, QuerySpec[Any]] = {}
    for spec in specs:
        if spec.name in out:
            raise ValueError(f"two query specs are named {spec.name!r}")
        out[spec.name] = spec
    return out
