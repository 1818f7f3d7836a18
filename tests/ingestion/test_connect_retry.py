"""Reconnect policy against real HTTP servers: fatal upgrade answers stop, 5xx answers back off."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from binance_pipeline.testing.helpers import wait_for
from binance_pipeline.testing.stages import Ingestion
from exchange_sim.testing import SimProcess
from ingestion.connection import is_retryable
from ingestion.errors import BackfillError, ConnectError, RateLimited
from ingestion.rest import is_retryable as backfill_retryable


class Refuser(BaseHTTPRequestHandler):
    """Answers every request, WebSocket upgrades included, with HTTP 400 and counts them."""

    hits = 0
    protocol_version = "HTTP/1.1"  # websockets rejects an HTTP/1.0 status line as no answer

    def do_GET(self) -> None:
        type(self).hits += 1
        body = b'{"code":2,"msg":"Invalid request"}'
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def bind_in_range() -> ThreadingHTTPServer:
    """A server on the first free port of this project's private range (20000-20099)."""
    for port in range(20000, 20100):
        try:
            return ThreadingHTTPServer(("127.0.0.1", port), Refuser)
        except OSError:
            continue
    raise OSError("no free port in 20000-20099")


@pytest.fixture
def refusing_server() -> Iterator[ThreadingHTTPServer]:
    server = bind_in_range()
    Refuser.hits = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_retry_policy_reads_the_status() -> None:
    """No answer, 5xx, 429 and 418 retry; 400, 401, 403 and 404 do not; the message text is ignored."""
    assert is_retryable(ConnectError("cannot connect: refused"))
    for status in (500, 502, 503, 429, 418):
        assert is_retryable(ConnectError("HTTP 400 on upgrade", status))
    for status in (400, 401, 403, 404):
        assert not is_retryable(ConnectError("HTTP 503 on upgrade", status))


def test_upgrade_answered_400_stops_retrying_and_says_so(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], refusing_server: ThreadingHTTPServer
) -> None:
    """An HTTP 400 on the upgrade is not retried: one attempt, a fatal metric, a readiness reason."""
    s = sim("--max-trades", "10")  # REST for the backfiller; the WebSocket URL points at the refuser
    port = refusing_server.server_address[1]
    ing = ingestion(s, BINANCE_WS_URL=f"ws://127.0.0.1:{port}", BACKOFF_INITIAL_S="0.05")
    wait_for(lambda: ing.metric("ingestion_connects", outcome="fatal") == 1, 20, "the fatal answer")
    _, body = wait_for(lambda: (r := ing.get("/readyz"))[0] == 503 and r, 10, "readiness off")
    assert any("HTTP 400" in reason and "not retried" in reason for reason in body["reasons"])
    hits = Refuser.hits
    time.sleep(2)  # 40 backoff periods: a retrying supervisor would have come back many times
    assert Refuser.hits == hits == 1
    assert ing.metric("ingestion_connects", outcome="failed") == 0
    assert ing.stop() == 0


def test_upgrade_answered_503_retries_with_backoff(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion]
) -> None:
    """HTTP 503 on the upgrade (simulator refuse fault) is retried with growing delays, then streams."""
    s = sim("--max-trades", "300", "--rate", "300", "--start-delay", "1")
    s.control("refuse", {"seconds": 120})
    ing = ingestion(s, BACKOFF_INITIAL_S="0.1", BACKOFF_MAX_S="1")
    wait_for(lambda: ing.metric("ingestion_connects", outcome="failed") >= 5, 30, "delays at their cap")
    before = ing.metric("ingestion_connects", outcome="failed")
    time.sleep(3)
    during = ing.metric("ingestion_connects", outcome="failed") - before
    # delays double from 0.1 s to the 1 s cap (jittered to 0.5-1 s): 3-6 attempts in 3 s; a loop
    # without backoff would make hundreds, one that gave up none.
    assert 2 <= during <= 8, during
    s.control("refuse", {"seconds": 0})
    wait_for(lambda: ing.metric("ingestion_events_received") > 0, 30, "events after the refusal")
    assert ing.metric("ingestion_connects", outcome="fatal") == 0
    assert ing.metric("ingestion_connects", outcome="ok") == 1
    assert ing.stop() == 0


def test_backfill_retry_policy_reads_status_not_text() -> None:
    """Backfill: 5xx and rate limits retry, 4xx and bodiless errors do not, whatever the message says."""
    assert backfill_retryable(BackfillError("HTTP 400: bad", 503))
    assert backfill_retryable(RateLimited(429, 1.0)) and backfill_retryable(RateLimited(418, 60.0))
    assert not backfill_retryable(BackfillError("HTTP 5xx lookalike text", 400))
    assert not backfill_retryable(BackfillError("HTTP 500: no status attribute"))
    assert RateLimited(429, 2.5).retry_after == 2.5 and RateLimited(429, 2.5).status == 429
