"""Query specs drive the front ends: a spec added here reaches the CLI, the HTTP API and OpenAPI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from db.service import cli
from db.service.http import QueryService, make_app
from db.service.params import Params
from db.service.spec import QuerySpec, registry
from db.service.specs import SPECS
from tests.db.service.tape_data import tape_schema


@dataclass(frozen=True)
class TradeCount:
    type: str
    trades: int


THROWAWAY = QuerySpec(
    name="trade-count", params=Params, row=TradeCount,
    sql=("SELECT type, count(*) FROM trades WHERE symbol = %(symbol)s GROUP BY type ORDER BY type",),
    summary="how many trades of each type the tape holds",
    description="Trades per type for one symbol (a spec declared by a test)",
)
WITH_THROWAWAY = [*SPECS.values(), THROWAWAY]


@pytest.fixture(scope="module")
def tape(database_url: str) -> Iterator[str]:
    with tape_schema(database_url) as url:
        yield url


def over_http(url: str, key: str | None, *paths: str, **headers: str) -> list[tuple[int, Any]]:
    """GET each path from an in-process API serving WITH_THROWAWAY on ``url``."""

    async def run() -> list[tuple[int, Any]]:
        app = make_app(QueryService(url, 1, 15_000, 10_000), key, WITH_THROWAWAY)
        async with TestClient(TestServer(app)) as client:
            out = []
            for path in paths:
                resp = await client.get(path, headers=headers)
                out.append((resp.status, json.loads(await resp.read())))
            return out

    return asyncio.run(run())


def test_a_spec_name_is_declared_once() -> None:
    """Two specs with one name are refused (the name is the subcommand and the route)."""
    with pytest.raises(ValueError, match="two query specs are named 'latest'"):
        registry([*SPECS.values(), SPECS["latest"]])


def test_a_new_spec_is_a_cli_subcommand(tape: str, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The throwaway spec is in --help, and its subcommand answers from the tape."""
    parser, _ = cli.build_parser(WITH_THROWAWAY)
    assert "trade-count" in parser.format_help() and THROWAWAY.summary in parser.format_help()
    monkeypatch.setenv("DATABASE_URL", tape)
    assert cli.main(["trade-count", "btcusdt", "--json"], specs=WITH_THROWAWAY) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["symbol"] == "BTCUSDT" and {r["type"] for r in doc["rows"]} == {"aggTrade", "trade"}
    assert cli.main(["trade-count", "BTCUSDT"], specs=WITH_THROWAWAY) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["type", "trades"]


def test_a_new_spec_is_a_route_and_an_openapi_operation(tape: str) -> None:
    """GET /v1/trade-count answers; /openapi.json describes it, keyed, with its parameter and rows."""
    (status, doc), (_, api) = over_http(tape, "k", "/v1/trade-count?symbol=BTCUSDT", "/openapi.json",
                                        **{"X-API-Key": "k"})
    assert status == 200 and [r["type"] for r in doc["rows"]] == ["aggTrade", "trade"]
    op = api["paths"]["/v1/trade-count"]["get"]
    assert op["summary"] == THROWAWAY.summary and op["security"] == [{"apiKey": []}]
    assert [p["name"] for p in op["parameters"]] == ["symbol"]
    assert api["components"]["schemas"]["TradeCount"]["required"] == ["type", "trades"]
    bad = over_http(tape, None, "/v1/trade-count?symbol=x")[0]
    assert bad == (400, {"error": "bad_request", "parameter": "symbol",
                         "message": "'x' is not a symbol: expected 2-20 of A-Z 0-9, e.g. BTCUSDT"})


def test_every_document_type_matches_its_answer(tape: str) -> None:
    """Each spec's declared document has exactly the keys its answer's JSON has (on the tape)."""
    queries = {"latest": "", "price-at": "&at=2024-03-01T00:01:00Z", "range": "&from=2024-03-01",
               "candles": "&from=2024-03-01&to=2024-03-01T00:05:00Z", "stats": "", "spread": "&at=2024-03-02",
               "sma": "&from=2024-03-01&to=2024-03-01T00:05:00Z", "whales": "&from=2024-03-01",
               "gaps": "&from=2024-03-01&to=2024-03-03", "audit": "&from=2024-03-01&to=2024-03-03"}
    answers = over_http(tape, None, *(f"/v1/{n}?symbol=BTCUSDT{q}" for n, q in queries.items()))
    for (name, _), (status, doc) in zip(queries.items(), answers, strict=True):
        assert status == 200, (name, doc)
        assert set(doc) == set(SPECS[name].response()), name
