"""The query HTTP API: a real ``python -m db.api`` process on 127.0.0.1, called over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from binance_pipeline.testing.helpers import free_port
from db.service.specs import SPECS
from tests.db.service.tape_data import G1, G2, G5, tape_schema

ROOT = Path(__file__).resolve().parents[3]
API_KEY = "k3y-for-tests"


class Api:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **headers: str) -> tuple[int, Any]:
        req = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def get_status(self, path: str, **headers: str) -> int:
        """The status only (any body: JSON, HTML, Prometheus text, a download)."""
        req = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                resp.read()
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code


@pytest.fixture(scope="module")
def tape(database_url: str) -> Iterator[str]:
    with tape_schema(database_url) as url:
        yield url


def start_api(url: str, **env: str) -> Iterator[Api]:
    port = free_port()
    full_env = {**os.environ, "DATABASE_URL": url, "QUERY_API_HOST": "127.0.0.1",
                "QUERY_API_PORT": str(port), "QUERY_POOL_SIZE": "2", **env}
    if "QUERY_API_KEY" not in env:
        full_env.pop("QUERY_API_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "db.api"], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = Api(port)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if api.get("/healthz")[0] == 200:
                    break
            except OSError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read() if proc.stdout else ""
                    raise RuntimeError(f"db.api did not start: {output}") from exc
                time.sleep(0.1)
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def api(tape: str) -> Iterator[Api]:
    yield from start_api(tape)


@pytest.fixture(scope="module")
def keyed_api(tape: str) -> Iterator[Api]:
    yield from start_api(tape, QUERY_API_KEY=API_KEY)


def test_healthz(api: Api) -> None:
    """/healthz answers 200 without touching the database."""
    assert api.get("/healthz") == (200, {"alive": True})


def test_latest_and_aggtrade(api: Api) -> None:
    """/v1/latest returns the last trade with price strings; type=aggTrade reads aggTrades only."""
    status, doc = api.get("/v1/latest?symbol=BTCUSDT&type=trade")
    assert status == 200
    assert doc["trade"] == {"time": "2024-03-02T12:00:00.000000Z", "id": 8, "price": "105.00000000",
                            "qty": "1.00000000", "buyer_maker": False}
    assert api.get("/v1/latest?symbol=BTCUSDT&type=aggTrade")[1]["trade"]["price"] == "220.00000000"


def test_price_at(api: Api) -> None:
    """/v1/price-at: exact-time trade counts as at-or-before; before the first trade, price null."""
    status, doc = api.get("/v1/price-at?symbol=BTCUSDT&at=2024-03-01T00:00:00Z")
    assert status == 200 and doc["price"] == "101.50000000" and doc["before"]["id"] == 2
    assert doc["after"]["id"] == 3 and doc["nearest"]["id"] == 2
    status, early = api.get("/v1/price-at?symbol=BTCUSDT&at=1709251199999")
    assert status == 200 and early["price"] is None and early["after"]["id"] == 1


def test_range(api: Api) -> None:
    """/v1/range returns the exact summary; an empty range is 200 with count 0."""
    status, doc = api.get("/v1/range?symbol=BTCUSDT&from=2024-03-01T00:00:00Z&to=2024-03-01T00:04:00")
    assert status == 200 and (doc["from"], doc["to"]) == ("2024-03-01T00:00:00.000000Z",
                                                          "2024-03-01T00:04:00.000000Z")
    assert (doc["trade_count"], doc["open"], doc["close"], doc["quote_volume"], doc["vwap"]) == (
        7, "100.00000000", "98.50000000", "103688.1250000000000000", "102.987807906238")
    status, empty = api.get("/v1/range?symbol=BTCUSDT&from=2024-03-01T01:00:00Z&to=2024-03-01T02:00:00Z")
    assert status == 200 and empty["trade_count"] == 0 and empty["high"] is None


def test_candles(api: Api) -> None:
    """/v1/candles with fill returns every bucket, the empty one carrying the previous close."""
    status, doc = api.get("/v1/candles?symbol=BTCUSDT&from=2024-03-01T00:01:00Z&to=2024-03-01T00:03:00Z"
                          "&bucket=1m&fill=true")
    assert status == 200 and doc["bucket_seconds"] == 60
    assert [(c["bucket"], c["close"], c["trade_count"]) for c in doc["candles"]] == [
        ("2024-03-01T00:01:00.000000Z", "102.00000000", 1),
        ("2024-03-01T00:02:00.000000Z", "102.00000000", 0),
    ]


def test_stats(api: Api) -> None:
    """/v1/stats counts rows per table and gaps per status."""
    status, doc = api.get("/v1/stats?symbol=BTCUSDT")
    assert status == 200 and [t["rows"] for t in doc["tables"]] == [8, 3, 3]
    assert doc["gaps"] == {"open": 1, "repaired": 1, "unrepairable": 2}


def test_spread(api: Api) -> None:
    """/v1/spread gives the quote in force, exact spread digits."""
    status, doc = api.get("/v1/spread?symbol=BTCUSDT&at=2024-03-01T00:00:30Z")
    assert status == 200
    assert (doc["quote"]["bid_price"], doc["quote"]["ask_price"], doc["quote"]["spread"]) == (
        "99.90000000", "100.10000000", "0.20000000")


def test_sma(api: Api) -> None:
    """/v1/sma returns the moving average of filled closes."""
    status, doc = api.get("/v1/sma?symbol=BTCUSDT&from=2024-03-01T00:01:00Z&to=2024-03-01T00:05:00Z"
                          "&bucket=1m&window=3")
    assert status == 200
    assert [p["sma"] for p in doc["points"]] == [None, "101.083333333333", "100.833333333333",
                                                 "99.666666666667"]


def test_whales(api: Api) -> None:
    """/v1/whales: default threshold 100000; a limit marks truncation."""
    status, doc = api.get("/v1/whales?symbol=BTCUSDT&from=2024-03-01&to=2024-03-03")
    assert status == 200 and [w["id"] for w in doc["trades"]] == [5] and doc["threshold"] == "100000"
    status, few = api.get("/v1/whales?symbol=BTCUSDT&from=2024-03-01&to=2024-03-03&threshold=100&limit=2")
    assert status == 200 and [w["id"] for w in few["trades"]] == [1, 2] and few["truncated"] is True


def test_gaps(api: Api) -> None:
    """/v1/gaps lists the gaps of the range with status and the per-day counts."""
    status, doc = api.get("/v1/gaps?symbol=BTCUSDT&from=2024-03-01&to=2024-03-03")
    assert status == 200
    assert [(g["gap_id"], g["status"]) for g in doc["gaps"]] == [
        (G1, "repaired"), (G2, "open"), (G5, "unrepairable")]
    assert [(d["trades"], d["agg_trades"]) for d in doc["days"]] == [(7, 3), (1, 0)]


def test_markets(api: Api) -> None:
    """/v1/markets takes no symbol: every symbol with its trades, gaps by status and last trade."""
    status, doc = api.get("/v1/markets?from=2024-03-01&to=2024-03-03")
    assert status == 200 and doc["from"] == "2024-03-01T00:00:00.000000Z"
    assert [(m["symbol"], m["trades"], m["open_gaps"], m["repaired_gaps"], m["unrepairable_gaps"],
             m["last_price"]) for m in doc["markets"]] == [
        ("BTCUSDT", 8, 1, 1, 2, "105.00000000"), ("ETHUSDT", 1, 1, 0, 0, "3000.10000000")]
    assert api.get("/v1/markets?symbol=BTCUSDT")[0] == 400  # no symbol parameter


def test_symbol_without_data_is_404(api: Api) -> None:
    """A well-formed symbol with no data is 404 no_data with a message naming it."""
    for path in ("latest", "price-at", "range", "stats", "spread", "gaps"):
        extra = "&at=2024-03-01T00:00:00Z" if path == "price-at" else ""
        status, doc = api.get(f"/v1/{path}?symbol=XRPUSDT{extra}")
        assert status == 404 and doc["error"] == "no_data" and "XRPUSDT" in doc["message"], path


@pytest.mark.parametrize(("query", "param"), [
    ("/v1/latest?symbol=BTC-USDT", "symbol"),
    ("/v1/latest?symbol=B", "symbol"),
    ("/v1/latest", "symbol"),
    ("/v1/latest?symbol=BTCUSDT&type=bookTicker", "type"),
    ("/v1/price-at?symbol=BTCUSDT&at=noon", "at"),
    ("/v1/price-at?symbol=BTCUSDT", "at"),
    ("/v1/range?symbol=BTCUSDT&from=2024-13-01", "from"),
    ("/v1/range?symbol=BTCUSDT&from=2024-03-02&to=2024-03-01", "to"),
    ("/v1/range?symbol=BTCUSDT&last=forever", "last"),
    ("/v1/candles?symbol=BTCUSDT&bucket=2d", "bucket"),
    ("/v1/candles?symbol=BTCUSDT&bucket=0s", "bucket"),
    ("/v1/candles?symbol=BTCUSDT&bucket=1s&from=2024-01-01&to=2024-03-01", "bucket"),
    ("/v1/candles?symbol=BTCUSDT&fill=maybe", "fill"),
    ("/v1/whales?symbol=BTCUSDT&limit=1000000", "limit"),
    ("/v1/whales?symbol=BTCUSDT&threshold=-5", "threshold"),
    ("/v1/sma?symbol=BTCUSDT&window=5000", "window"),
    ("/v1/latest?symbol=BTCUSDT&symbl=ETHUSDT", "symbl"),
    ("/v1/latest?symbol=BTCUSDT&symbol=ETHUSDT", "symbol"),
])
def test_bad_input_is_400_naming_the_parameter(api: Api, query: str, param: str) -> None:
    """Each kind of bad input is 400 with a JSON message naming the parameter, never 500."""
    status, doc = api.get(query)
    assert status == 400 and doc["error"] == "bad_request" and doc["parameter"] == param
    assert doc["message"]


def test_unknown_path_is_json_404(api: Api) -> None:
    """An unknown path is a JSON 404, not an HTML page."""
    status, doc = api.get("/v1/nothing")
    assert status == 404 and doc["error"] == "not_found"


def test_openapi_document_lists_every_endpoint(api: Api) -> None:
    """/openapi.json is OpenAPI 3 with every endpoint and its parameters, and resolvable refs."""
    status, doc = api.get("/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    for name, spec in SPECS.items():
        op = doc["paths"][f"/v1/{name}"]["get"]
        assert [p["name"] for p in op["parameters"]] == list(spec.params.names())
        assert {"200", "400"} <= set(op["responses"])
        assert ("404" in op["responses"]) == (spec.download is None)
    refs = {m for m in json.dumps(doc).split('"') if m.startswith("#/components/schemas/")}
    assert refs and all(r.rsplit("/", 1)[1] in doc["components"]["schemas"] for r in refs)


def test_api_key_is_required_when_configured(keyed_api: Api) -> None:
    """With QUERY_API_KEY set, /v1/* needs X-API-Key (401 without or wrong); healthz stays open."""
    assert keyed_api.get("/v1/latest?symbol=BTCUSDT")[0] == 401
    status, doc = keyed_api.get("/v1/latest?symbol=BTCUSDT", **{"X-API-Key": "wrong"})
    assert status == 401 and doc["error"] == "unauthorized"
    status, doc = keyed_api.get("/v1/latest?symbol=BTCUSDT", **{"X-API-Key": API_KEY})
    assert status == 200 and doc["trade"]["id"] == 8
    assert keyed_api.get("/healthz")[0] == 200


def test_every_route_is_documented_with_its_security(keyed_api: Api) -> None:
    """Each route of the API is in /openapi.json; where the document asks for X-API-Key the running
    API answers 401 without it, and every route it leaves open answers without the key."""
    from db.service.http import QueryService, make_app  # the routes as the server registers them

    status, doc = keyed_api.get("/openapi.json")
    assert status == 200 and doc["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
    app = make_app(QueryService("postgresql://unused@127.0.0.1:1/x", 1, 1000, 10), "k")
    routes = {r.canonical for r in app.router.resources() if not r.canonical.startswith("/docs/static")}
    assert routes == set(doc["paths"])
    keyed = {path for path, item in doc["paths"].items() if item["get"]["security"] == [{"apiKey": []}]}
    assert keyed == {f"/v1/{name}" for name in SPECS} and "/v1/export" in keyed
    for path in doc["paths"]:
        status = keyed_api.get_status(path + "?symbol=BTCUSDT")
        assert (status == 401) == (path in keyed), (path, status)
        assert "401" in doc["paths"][path]["get"]["responses"] or path not in keyed


def raw_request(api: Api, head: bytes) -> tuple[int, str, Any]:
    """Send raw request bytes; return the status, the content type and the JSON body."""
    host, port = api.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_part, _, body = data.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    ctype = next(v for k, _, v in (h.partition(": ") for h in lines[1:]) if k.lower() == "content-type")
    return int(lines[0].split()[1]), ctype, json.loads(body)


@pytest.mark.parametrize(
    "key", [b"caf\xc3\xa9", b"\xff\xfe\x80x", "k3y-for-tests\u00e9".encode(), b"x" * 4000]
)
def test_any_wrong_key_bytes_are_401(keyed_api: Api, key: bytes) -> None:
    """An X-API-Key that is not the key is 401 JSON whatever its bytes (non-ASCII, invalid UTF-8, long)."""
    request = b"GET /v1/latest?symbol=BTCUSDT HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key
    status, ctype, doc = raw_request(keyed_api, request + b"\r\nConnection: close\r\n\r\n")
    assert (status, doc["error"]) == (401, "unauthorized") and ctype.startswith("application/json")


@pytest.mark.parametrize(
    "request_bytes",
    [b"GET /v1/latest?symbol=" + b"A" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     b"GET /v1/latest?symbol=BTCUSDT HTTP/1.1\r\nHost: x\r\nX-Big: " + b"B" * 10_000 + b"\r\n\r\n",
     b"GET /v1/latest?symbol=BTCUSDT HTTP/1.1\r\nHost: x\r\nX-" + b"C" * 10_000 + b": 1\r\n\r\n",
     b"NOT HTTP AT ALL\r\n\r\n",
     b"GET /v1/latest?symbol=BTCUSDT HTTP/1.1\r\nHost: x\r\nX-API-Key: a\x00b\r\n\r\n"],
    ids=["10KB-url", "10KB-header-value", "10KB-header-name", "garbage", "NUL-in-header"],
)
def test_unparseable_requests_get_json_400(api: Api, request_bytes: bytes) -> None:
    """Oversized request lines and headers, and non-HTTP bytes, are JSON 400s that echo nothing back."""
    status, ctype, doc = raw_request(api, request_bytes)
    assert status == 400 and ctype.startswith("application/json"), doc
    assert doc["error"] == "bad_request" and "AAAA" not in doc["message"] and "BBBB" not in doc["message"]
    assert api.get("/healthz")[0] == 200


def test_database_down_is_503(database_url: str) -> None:
    """An unreachable database is 503 database_unavailable, and the server keeps serving."""
    for api in start_api("postgresql://postgres@127.0.0.1:1/pipeline"):
        status, doc = api.get("/v1/latest?symbol=BTCUSDT")
        assert status == 503 and doc["error"] == "database_unavailable"
        assert api.get("/healthz")[0] == 200


def test_concurrent_requests_share_the_pool(api: Api) -> None:
    """Many concurrent requests on a pool of 2 all get exact answers."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: api.get("/v1/latest?symbol=BTCUSDT"), range(40)))
    assert all(s == 200 and d["trade"]["price"] == "105.00000000" for s, d in results)


def test_audit_endpoint(api: Api) -> None:
    """GET /v1/audit answers 200 with the verdict either way; a bad stream is a 400 naming it."""
    status, doc = api.get("/v1/audit?symbol=BTCUSDT&stream=trade&from=2024-03-01&to=2024-03-03")
    assert status == 200
    assert doc["complete"] is True and doc["streams"] == ["trade"]
    assert doc["summary"][0]["rows"] == 8 and doc["holes"] == []
    status, doc = api.get("/v1/audit?symbol=BTCUSDT&from=2024-03-01&to=2024-03-03")
    assert status == 200 and doc["consistency_checked"] is True
    # the tape's aggTrades name no trade ids (first_id/last_id null): none covers its trades
    assert doc["complete"] is False
    assert {m["problem"] for m in doc["mismatches"]} == {"no_trade_ids", "not_covered"}
    status, doc = api.get("/v1/audit?symbol=BTCUSDT&stream=book")
    assert status == 400 and doc["parameter"] == "stream"
