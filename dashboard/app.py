"""The dashboard page: a Streamlit script (``python -m dashboard`` serves it).

Sidebar: the view (market overview or one symbol's charts), the symbol (a searchable picker of
the symbols in the database: type to filter), candle interval, window, SMA window, whale
threshold. Main area, refreshed every DASHBOARD_REFRESH_S seconds, either
  - the market overview: every symbol in the database, most trades in the window first, with its
    completeness (open / repaired / unrepairable gap records) and its last price; or
  - the symbol's charts: last trade, candlesticks with SMA and whale markers over volume bars,
    whale table, best bid/ask and spread, the window's gaps;
then pipeline health, and the number of database statements the refresh sent.

Rules:
  1. Every figure comes from dashboard.data (the query layer) or dashboard.health (the stages'
     own endpoints), written as text by dashboard.display; this script only lays them out.
  2. The refresh re-runs only the live fragment: widget values live in ``st.session_state``
     under fixed keys, so a refresh never resets a selection.
  3. A problem (database unreachable, no tables, no data) is a sentence on the page; the
     health panel still shows.
  4. Picking a symbol in the picker shows its charts (the view switches to it).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import streamlit as st

from binance_launcher.selfaudit import summary
from binance_launcher.status import Snapshot
from binance_pipeline.common.settings import DashboardSettings
from dashboard import charts, display, health
from dashboard.data import (
    AUDIT_MAX_SPAN,
    INTERVALS,
    WINDOWS,
    PageData,
    Selection,
    load,
    load_overview,
    symbol_choices,
)
from db.service import results as r

SNAPSHOTS_KEPT = 3  # health rates over the last ~2 refreshes: the worker flushes in bursts
OVERVIEW, CHARTS = "Market overview", "Symbol charts"


def settings() -> DashboardSettings:
    """Read on every run (cheap): `python -m dashboard` already rejected bad values at start."""
    return DashboardSettings()


def show_charts() -> None:
    """Rule 4: the picker's callback (runs before the rerun, so the view widget takes the value)."""
    if st.session_state.get("symbol") is not None:
        st.session_state["view"] = CHARTS


def show_overview() -> None:
    """Back on the overview the picker is empty again, so picking any symbol, even the last one, is a
    change that shows its charts (Rule 4)."""
    if st.session_state.get("view") == OVERVIEW:
        st.session_state["symbol"] = None


def symbol_options(cfg: DashboardSettings) -> list[str]:
    """The symbols in the database; the configured SYMBOLS while it holds none (or does not answer)."""
    found = symbol_choices(cfg.database_url.get_secret_value(), cfg.query_statement_timeout_ms)
    options = found or list(cfg.symbols)
    if st.session_state.get("symbol") not in (None, *options):
        st.session_state["symbol"] = None  # a symbol no longer listed: none picked
    return options


def sidebar(cfg: DashboardSettings) -> tuple[str, Selection]:
    """The user's view and selection; every widget has a key, so its value survives refreshes (Rule 2)."""
    bar = st.sidebar
    bar.header("binance-pipeline")
    view = bar.radio("View", [OVERVIEW, CHARTS], key="view", on_change=show_overview)
    options = symbol_options(cfg)
    picked = bar.selectbox(f"Symbol ({len(options):,})", options, index=None, key="symbol",
                           placeholder="type to search", on_change=show_charts)
    symbol = options[0] if picked is None else picked  # the charts of the first until one is picked
    interval = bar.selectbox("Candle interval", list(INTERVALS), index=2, key="interval")
    window = bar.selectbox("Window", list(WINDOWS), index=1, key="window")
    sma_window = bar.slider("SMA window (candles)", 2, 100, 20, key="sma_window")
    threshold = bar.number_input("Whale threshold (notional, quote currency)", min_value=0,
                                 value=100_000, step=10_000, key="threshold")
    bar.caption(f"Refreshes every {cfg.dashboard_refresh_s:g} s. Data: db.service.queries on DATABASE_URL.")
    chosen = Selection(str(symbol), str(interval), str(window), int(sma_window), Decimal(int(threshold)))
    return str(view), chosen


def headline(page: PageData, latest: r.Trade) -> None:
    sel = page.selection
    cols = st.columns([3, 2, 2])
    cols[0].metric(f"{sel.symbol} last trade", str(latest.price))
    first = page.candles[0].open if page.candles else None
    change = latest.price - first if first is not None else None
    cols[1].metric(f"Change over {sel.window}", "-" if change is None else f"{change.normalize():+f}")
    cols[2].metric(f"Whale trades ≥ {sel.threshold:,}", f"{len(page.whales.trades)}"
                   + ("+" if page.whales.truncated else ""))
    st.caption(f"last trade: id {latest.id} at {latest.time.isoformat()} · window {page.start.isoformat()} → "
               f"{page.end.isoformat()} (UTC)")


def market(page: PageData) -> None:
    sel = page.selection
    latest = page.latest
    if latest is None:
        st.info(f"No trades for {sel.symbol} in the database yet: is the pipeline running?")
        return
    headline(page, latest)
    st.plotly_chart(charts.price_chart(page.candles, page.sma, page.whales.trades, sel.sma_window,
                                       f"{sel.symbol} · {sel.interval} candles · SMA {sel.sma_window}"),
                    key="price_chart")
    st.subheader("Whale trades")
    if page.whales.trades:
        st.dataframe([{"time": w.time.isoformat(), "id": w.id, "price": str(w.price), "qty": str(w.qty),
                       "notional": display.notional_text(w.notional, w.price),
                       "side": "sell" if w.buyer_maker else "buy"}
                      for w in reversed(page.whales.trades)], hide_index=True, key="whales_table")
    else:
        st.write(f"No trade with notional ≥ {sel.threshold:,} in the window.")
    st.subheader("Best bid / ask and spread")
    st.plotly_chart(charts.spread_chart(page.quotes, f"{sel.symbol} bookTicker"), key="spread_chart")


def completeness(page: PageData) -> None:
    st.subheader("Completeness")
    gaps = page.completeness.gaps
    st.plotly_chart(charts.gaps_chart(gaps, page.start, page.end), key="gaps_chart")
    if gaps:
        st.dataframe([{"gap": g.gap_id, "stream": g.stream, "kind": g.kind, "missing": g.missing,
                       "reason": g.reason, "status": g.status} for g in gaps], hide_index=True)
    st.caption(audit_line(page))


def audit_line(page: PageData) -> str:
    if page.audit is None:
        return (f"Audit: windows up to {AUDIT_MAX_SPAN} are audited here; for {page.selection.window} "
                f"run python -m db.query audit {page.selection.symbol} --last ...")
    until = page.audit.end.strftime("%H:%M:%S")
    return f"Audit verdict (trade and aggTrade ids, until {until} UTC): {summary(page.audit)}"


def pipeline_health(cfg: DashboardSettings) -> None:
    st.subheader("Pipeline health")
    snap, states = health.scrape(health.stages(cfg), time.monotonic())
    kept: list[Snapshot] = st.session_state.setdefault("health_snapshots", [])
    figures = health.summarize(kept[0] if kept else None, snap, states)
    kept.append(snap)
    del kept[:-SNAPSHOTS_KEPT]
    cols = st.columns(5)
    cols[0].metric("Events in /s", f"{figures.events_in_per_s:,.0f}")
    cols[1].metric("Rows written /s", f"{figures.rows_written_per_s:,.0f}")
    cols[2].metric("Consumer lag", f"{figures.consumer_lag:,.0f}")
    cols[3].metric("Dead letters", f"{figures.dead_letters:,.0f}")
    cols[4].metric("Events rejected", f"{figures.rejected_events:,.0f}")
    st.table([{"stage": s.name, "readiness": s.readiness, "endpoint": s.url} for s in figures.stages])


def overview(cfg: DashboardSettings, sel: Selection) -> int:
    """The market overview (one statement for every symbol); returns the statements sent."""
    view = load_overview(cfg.database_url.get_secret_value(), sel.span, datetime.now(UTC),
                         cfg.query_statement_timeout_ms)
    if view.problem:
        st.error(f"No data shown: {view.problem}.")
        return view.statements
    if not view.markets:
        st.info("No symbol in the database yet: is the pipeline running?")
        return view.statements
    cols = st.columns(4)
    cols[0].metric("Symbols", f"{len(view.markets):,}")
    cols[1].metric(f"Trades in the last {sel.window}", f"{sum(m.trades for m in view.markets):,}")
    cols[2].metric("Symbols with open gaps", f"{sum(1 for m in view.markets if m.open_gaps):,}")
    lost = sum(1 for m in view.markets if m.unrepairable_gaps)
    cols[3].metric("Symbols with unrepairable gaps", f"{lost:,}")
    st.dataframe(display.overview_rows(view.markets), hide_index=True, key="markets_table",
                 width="stretch", height=min(38 + 35 * len(view.markets), 600))
    st.caption(f"Most trades in the last {sel.window} first. Completeness counts every gap record of the "
               "symbol: open (data missing, repair pending), repaired, unrepairable (lost for good). "
               "Pick a symbol in the sidebar for its charts.")
    return view.statements


def charts_of(cfg: DashboardSettings, sel: Selection) -> int:
    """One symbol's charts; returns the statements sent."""
    refused = sel.too_fine()
    if refused:
        st.warning(refused)
        return 0
    page = load(cfg.database_url.get_secret_value(), sel, datetime.now(UTC), cfg.query_statement_timeout_ms)
    if page.problem:
        st.error(f"No data shown: {page.problem}.")
    else:
        market(page)
        if page.latest is not None:
            completeness(page)
    return page.statements


def live(cfg: DashboardSettings, view: str, sel: Selection) -> None:
    """One refresh of everything below the sidebar (Rule 3 on problems)."""
    statements = overview(cfg, sel) if view == OVERVIEW else charts_of(cfg, sel)
    pipeline_health(cfg)
    updated = datetime.now(UTC).strftime("%H:%M:%S")
    st.caption(f"updated {updated} UTC · {display.statements_text(statements)}")


def main() -> None:
    st.set_page_config(page_title="binance-pipeline", layout="wide")
    cfg = settings()
    view, sel = sidebar(cfg)
    st.title("Market overview" if view == OVERVIEW else f"{sel.symbol} live")
    st.fragment(run_every=cfg.dashboard_refresh_s)(live)(cfg, view, sel)


main()
