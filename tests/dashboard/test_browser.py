"""The dashboard and the API docs page as a person sees them: a real headless Chromium.

The whole pipeline runs (simulator -> ingestion -> broker -> worker -> TimescaleDB) with the
dashboard and the query API as real processes; Playwright drives Debian's chromium
(``executable_path``: no browser download). Screenshots go to ARTIFACTS_DIR (default
.local/artifacts); with DOCS_SCREENSHOT (the symbol's charts) and DOCS_OVERVIEW_SCREENSHOT (the
market overview) set, palette-reduced copies are written there too (``make screenshot``
regenerates README's pictures that way).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from binance_pipeline.testing.helpers import ROOT, free_port, wait_for
from binance_pipeline.testing.stages import Pipeline
from db.service import queries
from db.service.errors import SchemaMissing
from exchange_sim.testing import SimProcess

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", ROOT / ".local" / "artifacts"))
DOCS_SCREENSHOT = os.environ.get("DOCS_SCREENSHOT")
DOCS_OVERVIEW_SCREENSHOT = os.environ.get("DOCS_OVERVIEW_SCREENSHOT")
SYMBOLS = ("BTCUSDT", "ETHUSDT")
# A quick run by default; for README's picture a longer one, so the chart has a history.
RATE, RUN_S, INTERVAL = ("200", 240.0, "5s") if DOCS_SCREENSHOT else ("600", 10.0, "1s")
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dashboard,browser]'")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no browser at {CHROMIUM}: run `make browser` (apt-get install chromium)",
                allow_module_level=True)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium page, 1280 x 2700 px (Streamlit scrolls inside the page: make it all fit)."""
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium.new_page(viewport={"width": 1280, "height": 2700})
        chromium.close()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


def cli_latest(db_url: str) -> dict[str, Any]:
    """`python -m db.query latest BTCUSDT --json`, as a user would ask it."""
    out = subprocess.run([sys.executable, "-m", "db.query", "latest", "BTCUSDT", "--json"], cwd=ROOT,
                         env={**os.environ, "DATABASE_URL": db_url}, capture_output=True, text=True,
                         timeout=30, check=True)
    return dict(json.loads(out.stdout)["trade"])


def whale_in_db(db_url: str) -> bool:
    conn = queries.connect(db_url)
    try:
        now = datetime.now(UTC)
        return bool(queries.whales(conn, "BTCUSDT", now - timedelta(hours=1), now, Decimal(100_000)).trades)
    except SchemaMissing:  # the worker has not applied the migrations yet
        return False
    finally:
        conn.close()


def settle(sim: SimProcess, db_url: str) -> dict[str, Any]:
    """Pause the market, then wait until the database's latest trade stops changing."""
    sim.control("pause")
    seen: list[dict[str, Any]] = [cli_latest(db_url)]

    def stable() -> bool:
        seen.append(cli_latest(db_url))
        return seen[-1] == seen[-2]

    wait_for(stable, 30, "the latest trade to settle", interval=1.5)
    return seen[-1]


# On each refresh Streamlit mounts a new chart hidden (visibility: hidden) next to the old one,
# then swaps them: a user always sees a drawn chart. The test reads the visible ones, and takes
# its screenshot when no half-drawn chart is on the page.
LAID_OUT = ("[...document.querySelectorAll('.js-plotly-plot')]"
            ".filter(g => g.getBoundingClientRect().height > 0)")
VISIBLE = LAID_OUT + ".filter(g => getComputedStyle(g).visibility === 'visible' && (g.data || []).length > 0)"
CHARTS_SHOWN = "() => " + VISIBLE + ".length >= 3"
# Exactly the page's three charts, all drawn (no old/new pair mid-swap): then their traces.
DRAWN_TRACES = (
    "() => { const all = " + LAID_OUT + ", shown = " + VISIBLE + ";"
    " if (all.length !== 3 || shown.length !== 3) return null;"
    " return shown.map(g => g.data.map(t => ({name: t.name || '', points: (t.x || []).length,"
    " values: (t.y || t.close || []).filter(v => v !== null).length}))); }")


def title_shown(text: str) -> str:
    return ("() => " + VISIBLE + ".some(g => ((g.layout || {}).title || {}).text"
            f" && g.layout.title.text.includes({json.dumps(text)}))")


EVENTS_FLOWING = """() => ['Events in /s', 'Rows written /s'].every(label =>
    [...document.querySelectorAll('[data-testid=stMetric]')].some(
        m => m.innerText.startsWith(label) && !m.innerText.trim().endsWith('\\n0')))"""


def plotly_traces(page: Any) -> list[list[dict[str, Any]]]:
    """Per chart on the page: its traces' names and point counts, read from plotly.js itself."""
    return list(page.wait_for_function(DRAWN_TRACES, timeout=60_000, polling=100).json_value())


def save(page: Any, name: str, height: int | None = None) -> Path:
    """A screenshot of the whole page, or of its top ``height`` pixels."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    if height is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": 1280, "height": height})
    return path


def docs_copy(shot: Path, target: str | None = DOCS_SCREENSHOT) -> None:
    """README's picture: the test's screenshot with a 128-colour palette (a small PNG)."""
    if not target:
        return
    from PIL import Image  # streamlit depends on Pillow

    with Image.open(shot) as img:
        img.convert("RGB").quantize(128).save(Path(ROOT, target), optimize=True)


# The overview's table as Streamlit renders it (its accessible DOM table): header, then rows.
OVERVIEW_ROWS = """() => [...document.querySelectorAll('[data-testid=stDataFrame] table tr')]
    .map(r => [...r.querySelectorAll('th, td')].map(c => c.innerText.trim()))"""


def overview_table(page: Any) -> dict[str, dict[str, str]]:
    """Symbol -> its row (column -> text) of the market overview shown."""
    header, *rows = page.evaluate(OVERVIEW_ROWS)
    header = [h for h in header if h]  # the row-number column has no title
    return {r[-len(header):][0]: dict(zip(header, r[-len(header):], strict=True)) for r in rows}


def overview_lists(page: Any, symbols: tuple[str, ...]) -> bool:
    try:
        return set(symbols) <= set(overview_table(page))
    except ValueError:  # mid-refresh: no table yet
        return False


def pick_symbol(page: Any, typed: str, symbol: str) -> None:
    """Type ``typed`` into the sidebar's symbol picker (it filters), then pick ``symbol``."""
    page.locator("[data-testid=stSelectbox]").filter(has_text="Symbol").click()
    page.keyboard.type(typed)
    page.get_by_role("option", name=symbol, exact=True).click()


def choose(page: Any, label: str, option: str) -> None:
    """Pick ``option`` in the sidebar selectbox labelled ``label``, as a user would."""
    page.locator("[data-testid=stSelectbox]").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_dashboard_and_api_docs_in_chromium(sim: Any, pipeline: Any, browser: Any) -> None:
    """The page shows candles, SMA, a whale, volume, spread, gaps and health; its price equals db.query."""
    market: SimProcess = sim("--rate", RATE, "--symbols", ",".join(SYMBOLS))
    pipe: Pipeline = pipeline(market)
    pipe.env["SYMBOLS"] = ",".join(SYMBOLS)
    dash_port, api_port = free_port(), free_port()
    pipe.start_worker()
    pipe.start_ingestion()
    pipe.spawn("dashboard", "dashboard",
               extra_env={"DASHBOARD_PORT": str(dash_port), "DASHBOARD_REFRESH_S": "3"})
    pipe.spawn("query-api", "db.api", extra_env={"QUERY_API_PORT": str(api_port)})
    wait_for(lambda: whale_in_db(pipe.db_url), 120, "a whale trade in the database")
    market.control("drop", {"symbol": "BTCUSDT", "count": 30})  # a gap for the completeness timeline
    wait_for(lambda: pipe.count("gaps") > 0, 60, "a recorded gap")
    time.sleep(RUN_S)
    latest = settle(market, pipe.db_url)
    wait_for(lambda: answers(f"http://127.0.0.1:{dash_port}/_stcore/health"), 60, "the dashboard")

    page = browser
    page.goto(f"http://127.0.0.1:{dash_port}/")
    # the landing page: the market overview lists the captured symbols with their completeness
    wait_for(lambda: overview_lists(page, SYMBOLS), 60, "the overview listing the symbols", interval=0.5)
    table = overview_table(page)
    btc = table["BTCUSDT"]
    assert btc["last price"] == latest["price"], (btc, latest)
    assert btc["completeness"] in ("open gaps", "repaired"), btc  # the dropped trades' gap
    assert int(btc["open gaps"]) + int(btc["repaired gaps"]) >= 1, btc
    assert int(table["ETHUSDT"]["trades"]) > 0 and table["ETHUSDT"]["completeness"], table["ETHUSDT"]
    assert "database statements in this refresh: 1" in page.inner_text("body")
    docs_copy(save(page, "dashboard-overview.png", height=760), DOCS_OVERVIEW_SCREENSHOT)
    pick_symbol(page, "btc", "BTCUSDT")  # the searchable picker; picking shows the symbol's charts
    page.get_by_text("BTCUSDT live").wait_for(timeout=30_000)
    page.wait_for_selector(".js-plotly-plot", state="attached", timeout=60_000)
    choose(page, "Window", "5 min")
    choose(page, "Candle interval", INTERVAL)
    page.wait_for_function(title_shown(f"BTCUSDT · {INTERVAL} candles"), timeout=60_000)
    page.wait_for_function(CHARTS_SHOWN, timeout=60_000)
    page.get_by_text("ready").first.wait_for(timeout=30_000)
    metric = page.locator("[data-testid=stMetricValue]").first
    # the page refreshes every DASHBOARD_REFRESH_S (3 s): a render from before the market settled
    # may still be up; the price shown must become the database's latest within a few refreshes
    with contextlib.suppress(AssertionError):
        wait_for(lambda: metric.inner_text() == latest["price"], 30, "the latest price on the page")
    shown = metric.inner_text()
    assert shown == latest["price"], (shown, latest)

    charts = plotly_traces(page)
    price = {t["name"]: t["points"] for t in charts[0]}
    values = {t["name"]: t["values"] for t in charts[0]}
    assert price["price"] >= 10 and values["SMA 20"] > 0 and values["volume"] >= 10, charts[0]
    assert values.get("whale trades", 0) >= 1, charts[0]
    assert {t["name"] for t in charts[1]} >= {"best bid", "best ask", "widest spread"}
    assert any(t["points"] == 2 for t in charts[2]), charts[2]  # a gap drawn as a segment
    body = page.inner_text("body")
    assert "Pipeline health" in body and "Events in /s" in body
    market.control("resume")  # the picture shows a live market: rates above zero
    page.get_by_text("BTCUSDT live").click()  # no widget keeps the focus
    page.wait_for_function(EVENTS_FLOWING, timeout=30_000)
    plotly_traces(page)  # all three drawn, none mid-swap
    docs_copy(save(page, "dashboard.png"))

    page.goto(f"http://127.0.0.1:{api_port}/docs")
    page.wait_for_selector(".swagger-ui .information-container .title", timeout=30_000)
    assert "binance-pipeline query API" in page.inner_text(".swagger-ui .information-container .title")
    assert page.locator(".opblock").count() >= 9
    save(page, "api-docs.png")
    shutil.copy(pipe.procs[-2].log, ARTIFACTS / "dashboard.log")
