"""The query API's pages for people and operators: /docs, /readyz, /metrics.

  GET /docs      Swagger UI on /openapi.json; its files come from the swagger-ui-bundle
                 package (served under /docs/static/), never from a CDN
  GET /readyz    200 {"ready": true} when the database answers and holds the pipeline's
                 tables, else 503 {"ready": false, "reasons": [...]} (like the other stages)
  GET /metrics   Prometheus text: requests by route and status, and their durations

Rules:
  1. None of these needs the API key (like /healthz and /openapi.json): they carry no data.
  2. The metrics middleware is the outermost one, so it counts the status the client got,
     errors included; routes are labelled by their pattern, unknown paths as "other", so the
     label set stays bounded.
  3. The readiness probe runs on the query service's own pool (``QueryService.ping``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from swagger_ui_bundle import swagger_ui_path

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Probe = Callable[[], Awaitable[str | None]]

DOCS_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>binance-pipeline query API</title>
  <link rel="stylesheet" href="docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/static/swagger-ui-bundle.js"></script>
  <script src="docs/static/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"""


class ApiMetrics:
    """The query API's own registry (Rule 2)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("query_api_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.seconds = Histogram("query_api_request_seconds", "Time to answer a request, by route",
                                 ["route"], registry=self.registry)

    def middleware(self) -> Any:  # aiohttp's Middleware protocol; the decorator marks it
        @web.middleware
        async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                status = exc.status
                raise
            else:
                status = response.status
                return response
            finally:
                route = _route(request)
                self.requests.labels(route, str(status)).inc()
                self.seconds.labels(route).observe(time.perf_counter() - started)

        return measure


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "other"


def add_ops_routes(app: web.Application, probe: Probe) -> None:
    """Mount /docs, /readyz and /metrics on ``app`` and put the metrics middleware outermost."""
    metrics = ApiMetrics()
    app.middlewares.insert(0, metrics.middleware())
    html = DOCS_HTML.encode()

    async def docs(_: web.Request) -> web.Response:
        return web.Response(body=html, content_type="text/html")

    async def readyz(_: web.Request) -> web.Response:
        reason = await probe()
        if reason is not None:
            return web.json_response({"ready": False, "reasons": [reason]}, status=503)
        return web.json_response({"ready": True})

    async def metrics_page(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/docs", docs)
    app.router.add_static("/docs/static", Path(swagger_ui_path), append_version=False)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
