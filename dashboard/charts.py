"""Plotly figures of the dashboard, from dashboard.data values (pure: values in, figures out).

Rule 1: this is the plotting edge, the one place where Decimal prices become floats, and only
        for drawing; the exact values are what the page prints as text (hover shows them).
Rule 2: a figure never raises on empty input; it comes out empty with a title saying why.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard import display
from db.service import results as r

UP, DOWN, SMA, WHALE = "#26a69a", "#ef5350", "#f5a623", "#7e57c2"
STATUS_COLOURS = {"open": "#ef5350", "repaired": "#26a69a", "unrepairable": "#9e9e9e"}


def _f(values: Iterable[Decimal | None]) -> list[float | None]:
    """Rule 1: Decimal -> float for drawing only."""
    return [None if v is None else float(v) for v in values]


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 50, "r": 20, "t": 40, "b": 30},
                      legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
                      hovermode="x unified", template="plotly_white")
    return fig


def price_chart(candles: list[r.Candle], sma: list[r.SmaPoint], whales: list[r.Whale], sma_window: int,
                title: str) -> go.Figure:
    """Candlesticks with the SMA overlay and whale markers, volume bars below (shared time axis)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.03)
    times = [c.bucket for c in candles]
    fig.add_trace(go.Candlestick(
        x=times, open=_f(c.open for c in candles), high=_f(c.high for c in candles),
        low=_f(c.low for c in candles), close=_f(c.close for c in candles), name="price",
        increasing_line_color=UP, decreasing_line_color=DOWN), row=1, col=1)
    fig.add_trace(go.Scatter(x=[p.bucket for p in sma], y=_f(p.sma for p in sma), mode="lines",
                             name=f"SMA {sma_window}", line={"color": SMA, "width": 2}), row=1, col=1)
    if whales:
        fig.add_trace(go.Scatter(
            x=[w.time for w in whales], y=_f(w.price for w in whales), mode="markers", name="whale trades",
            marker={"symbol": "star", "size": 14, "color": WHALE, "line": {"width": 1, "color": "#333"}},
            text=[f"{w.qty} @ {w.price} = {display.notional_text(w.notional, w.price)}" for w in whales],
            hovertemplate="%{text}<extra>whale</extra>"), row=1, col=1)
    colours = [UP if (c.close or 0) >= (c.open or 0) else DOWN for c in candles]
    fig.add_trace(go.Bar(x=times, y=_f(c.volume for c in candles), name="volume", marker_color=colours,
                         showlegend=False), row=2, col=1)
    fig.update_layout(xaxis_rangeslider_visible=False)
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    return _layout(fig, title if candles else f"{title}: no trades in the window", 560)


def spread_chart(quotes: list[r.QuoteBucket], title: str) -> go.Figure:
    """Best bid and ask (last of each interval) and the widest spread of each interval."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.6, 0.4], vertical_spacing=0.05)
    times = [q.bucket for q in quotes]
    for name, values, line in (("best bid", _f(q.bid_price for q in quotes), {"color": UP}),
                               ("best ask", _f(q.ask_price for q in quotes), {"color": DOWN, "dash": "dot"})):
        fig.add_trace(go.Scatter(x=times, y=values, name=name, mode="lines+markers", line=line,
                                 marker={"size": 3}), row=1, col=1)
    fig.add_trace(go.Bar(x=times, y=_f(q.max_spread for q in quotes), name="widest spread",
                         marker_color="#90a4ae"), row=2, col=1)
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="spread", row=2, col=1)
    return _layout(fig, title if quotes else f"{title}: no bookTicker in the window", 380)


def gaps_chart(gaps: list[r.Gap], start: datetime, end: datetime) -> go.Figure:
    """The window's gaps on a timeline, one row per stream, coloured by status."""
    fig = go.Figure()
    for gap in gaps:
        begin = max(gap.start_time or gap.detected_at, start)
        finish = min(gap.end_time or begin, end)
        colour = STATUS_COLOURS.get(gap.status, "#000")
        fig.add_trace(go.Scatter(
            x=[begin, finish], y=[gap.stream, gap.stream], mode="lines+markers",
            line={"color": colour, "width": 10}, marker={"color": colour, "size": 10},
            name=gap.status, legendgroup=gap.status, showlegend=False,
            hovertext=f"{gap.gap_id}: {gap.kind} gap, {gap.reason}, {gap.status}", hoverinfo="text"))
    for status, colour in STATUS_COLOURS.items():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=status,
                                 marker={"color": colour, "size": 10}))
    fig.update_xaxes(range=[start, end], type="date")
    fig.update_yaxes(visible=bool(gaps))
    title = f"gaps in the window: {len(gaps)}" if gaps else "gaps in the window: none recorded"
    _layout(fig, title, 220)
    fig.update_layout(hovermode="closest")
    return fig
