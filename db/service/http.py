"""The query HTTP API (aiohttp): ``python -m db.api`` serves the query specs (db.service.specs) as JSON.

  GET /v1/<spec name>?symbol=...   one route per spec, generated (audit answers 200 with
      "complete": false when the range has holes; export streams a download, db.service.export_http)
  GET /openapi.json   the OpenAPI 3 document, generated from the same specs (db.service.openapi)
  GET /healthz        liveness (no database)
  GET /docs, /readyz, /metrics   Swagger UI, readiness, metrics (db.service.ops)

Rules:
  1. Parameters are validated by db.service.params before any database work: a bad one is 400
     ``{"error": "bad_request", "parameter": name, "message": ...}``, never a 500.
  2. A symbol with no data for the question is 404 ``{"error": "no_data"}``; database
     unreachable or tables missing 503, statement timeout 504; anything else 500 with a JSON
     body and no traceback (the traceback goes to the log).
  3. When QUERY_API_KEY is set, /v1/* requires it in X-API-Key (every spec with ``requires_key``,
     and any other /v1/ path): any other value, whatever its bytes, is 401; /healthz, /openapi.json
     and the ops pages stay open; the OpenAPI document marks exactly those routes. An empty
     QUERY_API_KEY is refused at start (binance_pipeline.common.settings); unset, the API is open
     and says so once at start.
  4. psycopg2 runs off the event loop: one worker thread per pooled connection
     (QUERY_POOL_SIZE), so a blocking query never stalls other requests. A connection that
     broke is closed instead of returned to the pool.
  5. Constructors make no network calls; the pool connects lazily.
  6. Requests aiohttp cannot parse (request line or header over 8190 bytes) get JSON 400s too
     (binance_pipeline.common.jsonhttp).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg2
from aiohttp import web
from psycopg2.pool import ThreadedConnectionPool

from binance_pipeline.common.jsonhttp import serve
from binance_pipeline.common.logs import configure
from binance_pipeline.common.settings import QueryApiSettings, load_stage, settings_epilog
from db.service import queries
from db.service.errors import DatabaseError, DatabaseUnavailable, InvalidArgument, QueryTimeout, SchemaMissing
from db.service.openapi import OPS_PATHS, build_openapi
from db.service.ops import add_ops_routes
from db.service.render import Answer
from db.service.spec import Limits, QuerySpec, Request
from db.service.specs import SPECS

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(document: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type="application/json")


def error(status: int, kind: str, message: str, **extra: str) -> web.Response:
    return json_response({"error": kind, "message": message, **extra}, status)


class QueryService:
    """Runs requests on pooled read-only connections in worker threads (rule 4)."""

    def __init__(self, dsn: str, pool_size: int, statement_timeout_ms: int, max_rows: int,
                 limits: Limits | None = None) -> None:
        self._params = queries.connect_params(dsn, statement_timeout_ms)
        self._limits = limits or Limits()
        self._size, self.max_rows = pool_size, max_rows
        self._pool: ThreadedConnectionPool | None = None
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="query-db")

    def _run(self, request: Request) -> Answer:
        if self._pool is None:
            raise DatabaseUnavailable("the service is not started")
        try:
            conn = self._pool.getconn()
        except psycopg2.Error as exc:
            raise DatabaseUnavailable(str(exc).strip().splitlines()[0]) from exc
        broken = False
        try:
            conn.autocommit = True
            return request.spec.run(conn, request.params, self._limits)
        except DatabaseUnavailable:
            broken = True
            raise
        finally:
            self._pool.putconn(conn, close=broken or bool(conn.closed))

    def _ready(self) -> str | None:
        """Why this service cannot answer now (database down, tables missing), or None."""
        if self._pool is None:
            return "the service is not started"
        try:
            conn = self._pool.getconn()
        except psycopg2.Error as exc:
            return f"database unreachable: {str(exc).strip().splitlines()[0]}"
        try:
            conn.autocommit = True
            missing = queries.missing_tables(conn)
        except DatabaseError as exc:
            return f"database: {exc}"
        finally:
            self._pool.putconn(conn, close=bool(conn.closed))
        return f"tables missing (migrations not applied): {', '.join(missing)}" if missing else None

    async def ping(self) -> str | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._ready)

    async def answer(self, request: Request) -> Answer:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, request)

    def start(self) -> None:
        self._pool = ThreadedConnectionPool(0, self._size, **self._params)

    @property
    def connect_params(self) -> dict[str, Any]:
        """libpq parameters of the pool's sessions (the export opens its own connection)."""
        return dict(self._params)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._pool is not None:
            self._pool.closeall()


SERVICE_KEY: web.AppKey[QueryService] = web.AppKey("service")


def query_arguments(request: web.Request) -> dict[str, str]:
    """The query string as name -> value; a parameter given twice is a bad request."""
    raw: dict[str, str] = {}
    for name, value in request.query.items():
        if name in raw:
            raise InvalidArgument(name, "is given more than once")
        raw[name] = value
    return raw


def make_handler(spec: QuerySpec[Any], service: QueryService) -> Handler:
    """The route of one spec: parameters checked first (Rule 1), then the answer or the download."""
    download = spec.download.http_handler(service.connect_params) if spec.download else None

    async def handle(request: web.Request) -> web.StreamResponse:
        params = spec.parse(query_arguments(request), datetime.now(UTC), service.max_rows)
        if download is not None:
            return await download(request, params)
        answer = await service.answer(Request(spec, params))
        if answer.no_data:
            return error(404, "no_data", answer.no_data)
        return json_response(answer.document)

    return handle


_DB_STATUS: tuple[tuple[type[DatabaseError], int, str], ...] = (
    (QueryTimeout, 504, "timeout"),
    (DatabaseUnavailable, 503, "database_unavailable"),
    (SchemaMissing, 503, "schema_missing"),
    (DatabaseError, 500, "database_error"),
)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Rule 1-2: every failure becomes a JSON error with the right status."""
    try:
        return await handler(request)
    except InvalidArgument as exc:
        return error(400, "bad_request", exc.message, parameter=exc.param)
    except DatabaseError as exc:
        status, kind = next((s, k) for cls, s, k in _DB_STATUS if isinstance(exc, cls))
        log.warning("%s %s: %s: %s", request.method, request.path_qs, kind, exc)
        return error(status, kind, str(exc))
    except web.HTTPException as exc:
        return error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:  # the HTTP boundary: logged, answered 500 without a traceback
        log.exception("%s %s failed", request.method, request.path_qs)
        return error(500, "internal", "internal error (logged by the server)")


def api_key_middleware(key: str | None, open_paths: frozenset[str] = frozenset()) -> Any:
    """Rule 3: X-API-Key on /v1/* (but ``open_paths``) when a key is configured."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if key is not None and request.path.startswith("/v1/") and request.path not in open_paths:
            # aiohttp decodes header bytes as UTF-8 with surrogateescape: encode back the same
            # way, so any bytes compare (and differ) instead of raising UnicodeEncodeError.
            given = request.headers.get("X-API-Key", "").encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(given, key.encode()):
                return error(401, "unauthorized", "a valid X-API-Key header is required")
        return await handler(request)

    return check


def make_app(service: QueryService, api_key: str | None = None,
             specs: Iterable[QuerySpec[Any]] = SPECS.values()) -> web.Application:
    """One route per spec (Rule 3's key where a spec requires it), and the pages of OPS_PATHS."""
    specs = list(specs)
    open_paths = frozenset(f"/v1/{s.name}" for s in specs if not s.requires_key)
    app = web.Application(middlewares=[errors_middleware, api_key_middleware(api_key, open_paths)])
    app[SERVICE_KEY] = service
    for spec in specs:
        app.router.add_get(f"/v1/{spec.name}", make_handler(spec, service))
    document = orjson.dumps(build_openapi(specs, key_required=api_key is not None))

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    async def healthz(_: web.Request) -> web.Response:
        return json_response({"alive": True})

    assert "/healthz" in OPS_PATHS and "/openapi.json" in OPS_PATHS  # noqa: S101 - documented as open
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    add_ops_routes(app, service.ping)

    async def lifecycle(_: web.Application) -> Any:
        service.start()
        yield
        service.close()

    app.cleanup_ctx.append(lifecycle)
    return app


def build(settings: QueryApiSettings) -> web.Application:
    service = QueryService(
        settings.database_url.get_secret_value(), settings.query_pool_size,
        settings.query_statement_timeout_ms, settings.query_max_rows,
        Limits(settings.audit_statement_timeout_ms),
    )
    key = settings.query_api_key.get_secret_value() if settings.query_api_key else None
    return make_app(service, key)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m db.api",
        description="Serve the tape queries as JSON over HTTP (OpenAPI document at /openapi.json).",
        epilog=settings_epilog(stage=QueryApiSettings), formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)
    settings = load_stage("db.api", QueryApiSettings)
    configure(settings.log_level)
    log.info("query API on %s:%d (%s)", settings.query_api_host, settings.query_api_port,
             "X-API-Key required" if settings.query_api_key
             else "QUERY_API_KEY unset: /v1/* is open to every client that can reach this address")
    try:
        asyncio.run(serve(build(settings), settings.query_api_host, settings.query_api_port))
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    return 0

