"""The dashboard page's logic through Streamlit's AppTest, on a real TimescaleDB schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from binance_pipeline.testing.helpers import free_port
from db.store.migrate import apply
from tests.dashboard.conftest import LAST_PRICE, MARKET_SIZE, WHALE, insert_market

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def page(monkeypatch: pytest.MonkeyPatch, db_url: str, view: str = "Symbol charts") -> AppTest:
    """The page in ``view``, run once against ``db_url``; stages' health ports point at nothing."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("INGESTION_HEALTH_PORT", str(free_port()))
    monkeypatch.setenv("WORKER_HEALTH_PORT", str(free_port()))
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["view"] = view
    at.run()
    assert not at.exception, at.exception
    return at


def only_own_schema(url: str) -> str:
    """The test schema's URL without public in its search_path (public may hold others' tables)."""
    assert "%2Cpublic" in url
    return url.replace("%2Cpublic", "")


def figures(at: AppTest) -> list[dict[str, Any]]:
    """The Plotly figures on the page, in page order."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_page_shows_the_latest_price_charts_whales_and_gaps(
    monkeypatch: pytest.MonkeyPatch, recent_tape: str
) -> None:
    """Last trade price exact, candles + SMA + whale marker + volume, spread, gaps, health."""
    at = page(monkeypatch, recent_tape)
    assert at.metric[0].label == "BTCUSDT last trade" and at.metric[0].value == LAST_PRICE
    charts = figures(at)
    assert len(charts) == 3
    price = {t.get("name"): t for t in charts[0]["data"]}
    assert {"price", "SMA 20", "whale trades", "volume"} <= set(price)
    assert price["whale trades"]["y"] == [float(WHALE[0])]
    spread = {t.get("name") for t in charts[1]["data"]}
    assert {"best bid", "best ask", "widest spread"} <= spread
    assert "gaps in the window: 1" in json.dumps(charts[2]["layout"])
    verdict = " ".join(c.value for c in at.caption if "Audit verdict" in c.value)
    assert "complete (" in verdict and "INCOMPLETE" not in verdict, verdict
    whales = at.dataframe[0].value
    assert list(whales["price"]) == [WHALE[0]]
    exact = Decimal(WHALE[0]) * Decimal(WHALE[1])
    assert [Decimal(n.replace(",", "")) for n in whales["notional"]] == [exact]
    assert list(whales["notional"]) == ["167,512.75000000"]  # at the quote's precision (the price's 8 places)
    health = at.table[-1].value
    assert set(health["readiness"]) == {"not answering"}


def test_selections_survive_a_refresh(monkeypatch: pytest.MonkeyPatch, recent_tape: str) -> None:
    """A chosen interval, SMA window and threshold stay chosen when the page runs again."""
    at = page(monkeypatch, recent_tape)
    at.selectbox(key="interval").set_value("1m")
    at.slider(key="sma_window").set_value(3)
    at.number_input(key="threshold").set_value(200_000)
    at.run()
    at.run()  # a refresh
    assert (at.session_state["interval"], at.session_state["sma_window"], at.session_state["threshold"]) == (
        "1m", 3, 200_000)
    title = json.dumps(figures(at)[0]["layout"])
    assert "1m candles" in title and "SMA 3" in title
    assert "No trade with notional" in " ".join(m.value for m in at.markdown)


def test_unreachable_database_is_said_on_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """No server at DATABASE_URL: a sentence on the page, no exception, health still shown."""
    at = page(monkeypatch, f"postgresql://postgres@127.0.0.1:{free_port()}/pipeline")
    assert "the database cannot be reached" in at.error[0].value
    assert at.metric[0].label == "Events in /s"


def test_no_tables_and_no_data_are_said_on_the_page(
    monkeypatch: pytest.MonkeyPatch, schema_factory: Callable[[], str]
) -> None:
    """A schema without the pipeline's tables, then with empty tables: each gets its sentence."""
    url = schema_factory()
    at = page(monkeypatch, only_own_schema(url))
    assert "no pipeline tables yet" in at.error[0].value
    apply(url)
    monkeypatch.setenv("DATABASE_URL", url)
    at.run()
    assert not at.error and "No trades for BTCUSDT" in at.info[0].value


def test_too_fine_an_interval_is_refused_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, recent_tape: str
) -> None:
    """1-second candles over 24 hours would be 86,400 candles: the page says so instead."""
    at = page(monkeypatch, recent_tape)
    at.selectbox(key="interval").set_value("1s")
    at.selectbox(key="window").set_value("24 h")
    at.run()
    assert "86,400 candles" in at.warning[0].value and not at.get("plotly_chart")


def statements(at: AppTest) -> int:
    """The refresh's database statements, as the page reports them in its last caption."""
    lines = [c.value for c in at.caption if "database statements in this refresh: " in c.value]
    assert len(lines) == 1, [c.value for c in at.caption]
    return int(lines[0].rsplit(": ", 1)[1])


def test_the_overview_of_500_symbols_is_one_statement_and_the_picker_shows_charts(
    monkeypatch: pytest.MonkeyPatch, schema_factory: Callable[[], str], recent_tape: str
) -> None:
    """500 symbols: the overview lists them all, busiest first, with completeness, in 1 statement
    (as for 1 symbol); the picker offers them all; picking one shows its charts."""
    at = page(monkeypatch, recent_tape, view="Market overview")
    assert statements(at) == 1 and list(at.dataframe[0].value["symbol"]) == ["BTCUSDT"]
    url = schema_factory()
    insert_market(url, datetime.now(UTC) - timedelta(seconds=1))
    at = page(monkeypatch, url, view="Market overview")
    assert statements(at) == 1
    table = at.dataframe[0].value
    assert len(table) == MARKET_SIZE and at.metric[0].value == "500"
    busiest = sorted((-(i % 7 + 1), f"S{i:03d}USDT") for i in range(MARKET_SIZE))
    assert list(table["symbol"]) == [s for _, s in busiest]
    rows = {row["symbol"]: row for row in table.to_dict("records")}
    assert rows["S006USDT"]["trades"] == 7 and rows["S006USDT"]["last price"] == "100.00600000"
    assert [rows[s]["completeness"] for s in ("S000USDT", "S025USDT", "S050USDT", "S001USDT")] == [
        "open gaps", "unrepairable gaps", "open gaps", "complete"]
    assert (rows["S050USDT"]["open gaps"], rows["S050USDT"]["unrepairable gaps"],
            rows["S050USDT"]["repaired gaps"]) == (1, 1, 1)
    picker = at.selectbox(key="symbol")
    assert len(picker.options) == MARKET_SIZE
    picker.set_value("S123USDT").run()
    assert at.session_state["view"] == "Symbol charts" and at.title[0].value == "S123USDT live"
    assert at.metric[0].value == "100.12300000" and len(figures(at)) == 3
    assert 1 < statements(at) <= 16  # one symbol's page: a fixed handful, whatever the market's size
