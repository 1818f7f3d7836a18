"""Health server: liveness, readiness with reasons, Prometheus metrics, on a real HTTP port."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from binance_pipeline.common.health import HealthServer


def test_health_endpoints_report_readiness_and_metrics() -> None:
    """/healthz 200; /readyz 503 naming each failing check, then 200; /metrics serves the registry."""

    async def scenario() -> None:
        registry = CollectorRegistry()
        Counter("demo_events", "events", registry=registry).inc(3)
        state = {"broker": "broker unreachable"}
        server = HealthServer("127.0.0.1", 0, registry, [lambda: state["broker"], lambda: None])
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/healthz") as r:
                    assert r.status == 200
                async with http.get(f"{base}/readyz") as r:
                    assert r.status == 503
                    assert await r.json() == {"ready": False, "reasons": ["broker unreachable"]}
                state["broker"] = None  # type: ignore[assignment]
                async with http.get(f"{base}/readyz") as r:
                    assert r.status == 200
                async with http.get(f"{base}/metrics") as r:
                    assert "demo_events_total 3.0" in await r.text()
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_oversized_request_line_is_a_json_400() -> None:
    """A 10 KB URL on the health port gets a JSON 400 (not aiohttp's plain text), and the server goes on."""

    async def scenario() -> None:
        server = HealthServer("127.0.0.1", 0, CollectorRegistry(), [])
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /readyz?" + b"x" * 10_000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
            answer = await reader.read()
            writer.close()
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split(b"\r\n")[0].split()[1] == b"400" and b"application/json" in head, head
            assert json.loads(body)["error"] == "bad_request"
            url = f"http://127.0.0.1:{server.port}/healthz"
            async with aiohttp.ClientSession() as http, http.get(url) as ok:
                assert ok.status == 200
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_stage_ready_gauge_follows_the_checks_and_process_metrics_are_served() -> None:
    """The health server adds ``stage_ready`` (0 while a check fails, 1 after) and process_* to /metrics."""
    registry = CollectorRegistry()
    state: dict[str, str | None] = {"db": "database unreachable"}
    HealthServer("127.0.0.1", 0, registry, [lambda: state["db"]])
    assert registry.get_sample_value("stage_ready") == 0.0
    state["db"] = None
    assert registry.get_sample_value("stage_ready") == 1.0
    assert registry.get_sample_value("process_start_time_seconds")
