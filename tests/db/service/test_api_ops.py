"""The query API's /docs, /readyz and /metrics on a real ``python -m db.api`` process."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from tests.db.service.tape_data import tape_schema
from tests.db.service.test_api import API_KEY, Api, free_port, start_api


def raw(api: Api, path: str) -> tuple[int, str, str]:
    """(status, content type, body text) of a GET."""
    try:
        with urllib.request.urlopen(api.base + path, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


@pytest.fixture(scope="module")
def api(database_url: str) -> Iterator[Api]:
    with tape_schema(database_url) as url:
        yield from start_api(url, QUERY_API_KEY=API_KEY)


def test_docs_page_serves_swagger_ui_from_the_package(api: Api) -> None:
    """/docs is an HTML page loading Swagger UI from /docs/static (no CDN), without the API key."""
    status, ctype, html = raw(api, "/docs")
    assert status == 200 and ctype.startswith("text/html")
    assert 'src="docs/static/swagger-ui-bundle.js"' in html and "://" not in html
    status, ctype, js = raw(api, "/docs/static/swagger-ui-bundle.js")
    assert status == 200 and "javascript" in ctype and "SwaggerUIBundle" in js


def test_readyz_when_the_database_answers(api: Api) -> None:
    """/readyz is 200 when the database answers and has the pipeline tables."""
    assert api.get("/readyz") == (200, {"ready": True})


def test_metrics_count_requests_by_route_and_status(api: Api) -> None:
    """/metrics counts each answered request by its route pattern and final status, 4xx included."""
    api.get("/v1/latest?symbol=BTCUSDT", **{"X-API-Key": API_KEY})
    api.get("/v1/latest?symbol=bad!", **{"X-API-Key": API_KEY})
    api.get("/v1/latest?symbol=BTCUSDT")
    api.get("/no/such/path")
    status, ctype, text = raw(api, "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    seen = (("/v1/latest", "200"), ("/v1/latest", "400"), ("/v1/latest", "401"), ("other", "404"))
    for route, code in seen:
        assert f'query_api_requests_total{{route="{route}",status="{code}"}} 1.0' in text, text
    assert 'query_api_request_seconds_count{route="/v1/latest"} 3.0' in text


def test_readyz_names_missing_tables_and_an_unreachable_database(
    schema_factory: Callable[[], str],
) -> None:
    """An unmigrated schema and a database that does not answer each give 503 with a reason."""
    own_schema_only = schema_factory().replace("%2Cpublic", "")  # public may hold others' tables
    for url, reason in ((own_schema_only, "tables missing"),
                        (f"postgresql://postgres@127.0.0.1:{free_port()}/pipeline", "database unreachable")):
        for api in start_api(url):
            status, body = api.get("/readyz")
            assert status == 503 and body["ready"] is False, body
            assert reason in json.dumps(body["reasons"])
