"""What the dashboard shows, read through the project's query layer (db.service.queries).

Owns the user's selection and the page's data for one refresh. Never writes SQL (every
figure comes from a db.service.queries function) and never draws (that is dashboard.charts).

Rules:
  1. Prices, quantities and notionals stay ``Decimal`` here, exactly as db.service.queries returns
     them; only dashboard.charts converts to float, at the plotting edge.
  2. A database that cannot be reached, or holds no pipeline tables yet, is an outcome
     (``PageData.problem``), never an exception out of ``load``.
  3. The window ends at ``now`` (passed in); it is half-open ``[now - window, now)`` like
     every range of the query layer, and ``now`` is rounded up to the next interval so the
     newest trade is in the last candle.
  4. The audit verdict (db.service.queries.audit, as the launcher's self-audit runs it) covers the
     window up to SETTLE before ``now`` (rows still in flight are not holes), and only windows
     up to AUDIT_MAX_SPAN: a longer one is left to ``python -m db.query audit``.
  5. Each load reports the database statements it sent (``statements``, counted by the query
     layer's session, db.service.queries Rule 7): the market overview is one statement for every
     symbol, the page of one symbol a fixed handful, never one per symbol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from binance_launcher.selfaudit import SETTLE, STREAMS
from db.service import queries
from db.service import results as r
from db.service.errors import DatabaseError, DatabaseUnavailable, SchemaMissing
from db.service.params import BUCKET_ORIGIN
from db.store import audit as au

INTERVALS = {"1s": 1, "5s": 5, "15s": 15, "1m": 60, "5m": 300, "15m": 900, "1h": 3600}
WINDOWS = {"5 min": 300, "15 min": 900, "1 h": 3600, "6 h": 6 * 3600, "24 h": 86400, "7 d": 7 * 86400}
MAX_BUCKETS = 2000  # candles per chart; a finer interval over a longer window is refused
AUDIT_MAX_SPAN = timedelta(hours=1)  # Rule 4


@dataclass(frozen=True)
class Selection:
    """What the user asked for in the sidebar."""

    symbol: str
    interval: str = "15s"
    window: str = "15 min"
    sma_window: int = 20
    threshold: Decimal = Decimal(100_000)

    @property
    def width(self) -> timedelta:
        return timedelta(seconds=INTERVALS[self.interval])

    @property
    def span(self) -> timedelta:
        return timedelta(seconds=WINDOWS[self.window])

    def too_fine(self) -> str | None:
        """Why this interval/window pair is refused, or None."""
        buckets = self.span // self.width
        if buckets > MAX_BUCKETS:
            return (f"{self.window} at {self.interval} is {buckets:,} candles (at most {MAX_BUCKETS:,}): "
                    "choose a coarser interval or a shorter window")
        return None


@dataclass
class PageData:
    """Everything one refresh of the page shows; ``problem`` set means nothing else is."""

    selection: Selection
    start: datetime
    end: datetime
    problem: str | None = None
    latest: r.Trade | None = None
    candles: list[r.Candle] = field(default_factory=list)
    sma: list[r.SmaPoint] = field(default_factory=list)
    whales: r.Whales = field(default_factory=lambda: r.Whales([], False))
    quotes: list[r.QuoteBucket] = field(default_factory=list)
    completeness: r.Completeness = field(default_factory=lambda: r.Completeness([], []))
    audit: au.Audit | None = None
    statements: int = 0

    @property
    def empty(self) -> bool:
        return self.problem is None and self.latest is None


def window_of(sel: Selection, now: datetime) -> tuple[datetime, datetime]:
    """Rule 3: ``[end - span, end)`` with ``end`` the start of the interval after ``now``."""
    end = r.bucket_start(now, sel.width, BUCKET_ORIGIN) + sel.width
    return end - sel.span, end


def load(dsn: str, sel: Selection, now: datetime, timeout_ms: int = 10_000) -> PageData:
    """One refresh: every figure of the page from one read-only session (Rule 2 on failure)."""
    start, end = window_of(sel, now)
    page = PageData(sel, start, end)
    page.problem, page.statements = _session(dsn, timeout_ms, lambda conn: _fill(conn, page, now))
    return page


@dataclass
class Overview:
    """The market overview of one refresh: every symbol (most trades in the window first)."""

    start: datetime
    end: datetime
    problem: str | None = None
    markets: list[r.Market] = field(default_factory=list)
    statements: int = 0


def load_overview(dsn: str, span: timedelta, now: datetime, timeout_ms: int = 10_000) -> Overview:
    """One refresh of the overview: one statement for every symbol (Rules 2, 5), over [now - span, now)."""
    view = Overview(now - span, now)

    def fill(conn: queries.CountingConnection) -> None:
        view.markets = queries.markets(conn, view.start, view.end)

    view.problem, view.statements = _session(dsn, timeout_ms, fill)
    return view


def symbol_choices(dsn: str, timeout_ms: int = 10_000) -> list[str]:
    """The symbols in the database for the picker; empty when there are none or no answer."""
    found: list[str] = []
    _session(dsn, timeout_ms, lambda conn: found.extend(queries.symbols(conn)))
    return found


def _session(dsn: str, timeout_ms: int, work: Callable[[queries.CountingConnection], None]
             ) -> tuple[str | None, int]:
    """Run ``work`` on one read-only session: (the problem as a sentence or None, statements sent)."""
    try:
        conn = queries.connect(dsn, timeout_ms)
    except DatabaseError as exc:
        return f"the database cannot be reached: {_first_line(exc)}", 0
    try:
        work(conn)
    except SchemaMissing as exc:
        missing = f"the database has no pipeline tables yet ({_first_line(exc)}); start the worker"
        return missing, conn.statements
    except DatabaseUnavailable as exc:
        return f"the database cannot be reached: {_first_line(exc)}", conn.statements
    except DatabaseError as exc:
        return f"the database refused a query: {_first_line(exc)}", conn.statements
    finally:
        conn.close()
    return None, conn.statements


def _fill(conn: queries.Connection, page: PageData, now: datetime) -> None:
    sel, start, end = page.selection, page.start, page.end
    page.latest = queries.latest(conn, sel.symbol)
    if page.latest is None:
        return
    page.candles = queries.candles(conn, sel.symbol, start, end, sel.width)
    page.sma = queries.sma(conn, sel.symbol, start, end, sel.width, sel.sma_window)
    page.whales = queries.whales(conn, sel.symbol, start, end, sel.threshold, limit=200)
    page.quotes = queries.quote_buckets(conn, sel.symbol, start, end, sel.width)
    page.completeness = queries.completeness(conn, sel.symbol, start, end)
    if sel.span <= AUDIT_MAX_SPAN:
        page.audit = queries.audit(conn, sel.symbol, start, min(end, now - SETTLE), STREAMS, limit=1000)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
