"""The health and metrics HTTP server every long-running stage exposes (aiohttp).

  GET /healthz  200 while the process's loop runs (liveness).
  GET /readyz   200 {"ready": true} when every readiness check passes, else
                503 {"ready": false, "reasons": [...]} naming what is wrong.
  GET /metrics  Prometheus text format from the stage's own CollectorRegistry, plus
                ``stage_ready`` (1 when /readyz would say 200, else 0, computed at the scrape) and
                the process metrics (``process_start_time_seconds`` etc.), which the alert
                rules of deploy/prometheus/alerts.yml read.

Rule: the server only reads state; it never drives the pipeline. Readiness checks are plain
callables returning None when fine or a reason string when not, so they are testable alone.
Requests the HTTP parser refuses (oversized lines or headers) get JSON 400s
(binance_pipeline.common.jsonhttp).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from binance_pipeline.common.jsonhttp import JsonErrorAppRunner

ReadinessCheck = Callable[[], str | None]


def failing(checks: Sequence[ReadinessCheck]) -> list[str]:
    """The reasons of the checks that fail now (empty: ready)."""
    return [r for r in (check() for check in checks) if r is not None]


class ReadinessGauge(Collector):
    """``stage_ready``: the readiness checks, run at each scrape (1 ready, 0 not)."""

    def __init__(self, checks: Sequence[ReadinessCheck]) -> None:
        self._checks = checks

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("stage_ready", "1 when every readiness check passes (/readyz 200), else 0")
        gauge.add_metric([], 0.0 if failing(self._checks) else 1.0)
        yield gauge


def make_app(registry: CollectorRegistry, checks: Sequence[ReadinessCheck]) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readyz(_: web.Request) -> web.Response:
        reasons = failing(checks)
        if reasons:
            return web.json_response({"ready": False, "reasons": reasons}, status=503)
        return web.json_response({"ready": True})

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


class HealthServer:
    """Runs ``make_app`` on host:port inside the caller's event loop (port 0 picks one)."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, checks: Sequence[ReadinessCheck]
    ) -> None:
        self._host, self._port = host, port
        registry.register(ReadinessGauge(checks))
        ProcessCollector(registry=registry)
        self._runner = JsonErrorAppRunner(make_app(registry, checks), access_log=None)
        self.port: int | None = None

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port

    async def stop(self) -> None:
        await self._runner.cleanup()
