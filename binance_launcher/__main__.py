"""`python -m binance_launcher run|demo`: the whole pipeline in one command.

Steps: apply migrations; (demo) start the exchange simulator; start ingestion, the worker and
(when the ``dashboard`` extra is installed) the dashboard; then once a second show the live
status, with the dashboard's URL and the verdict of a periodic self-audit of the recent window
(binance_launcher.selfaudit; SELF_AUDIT_INTERVAL_S, SELF_AUDIT_WINDOW_S). Rules:
  1. A component that dies is named, the end of its log shown, everything else stopped, and the
     launcher exits 1.
  2. Ctrl-C (SIGINT) or SIGTERM stops every child by PID and exits 0: no process is left behind.
  3. An unreachable exchange is said plainly (with a pointer to `make demo`); ingestion keeps
     retrying with backoff meanwhile. Demo mode shows notices too.
  4. The simulator's address comes from this run's ready line only: each component's log starts
     afresh at every start (binance_launcher.procs), so a previous run's dead port is never used.
  5. A component not ready for a few seconds is shown with the last error line of its log.
  6. `demo --replay` writes to its own schema (setting REPLAY_SCHEMA), never into the tables of a
     synthetic or live session, and the status view says so.
  7. SYMBOLS with patterns (`*USDT`, `ALL`): `demo` starts a simulated whole exchange
     (`--market N` symbols, the exact names of SYMBOLS added to it), and the status view and the
     self-audit follow the symbols ingestion actually captures (its `ingestion_symbol_captured`
     series, refreshed with listings), not the list as given (binance_launcher.status Rule 4).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from types import FrameType
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg2
from pydantic import SecretStr

from binance_launcher.procs import Component
from binance_launcher.selfaudit import SelfAudit
from binance_launcher.status import (
    GAPS_OPEN_SYMBOLS,
    STUCK_AFTER_S,
    ComponentState,
    Latest,
    Listings,
    Snapshot,
    busiest,
    captured,
    last_error_line,
    market_lines,
    parse,
    render,
    stuck_notice,
    symbol_rates,
    total,
)
from binance_pipeline.common.settings import Settings, dsn_endpoint, load_or_exit, settings_epilog
from db.store.errors import MigrationError
from db.store.migrate import apply
from ingestion.universe import is_pattern, needs_exchange_info

ROOT = Path.cwd()  # the checkout: make and the console script run from it, like .local/services.env
LOG_DIR = ROOT / ".local" / "logs"
SHARED_DATA = ROOT.parent / "shared" / "data"
EXCHANGE_HINT_AFTER_S = 10.0
RATE_WINDOW_S = 5


class Stop(Exception):
    """SIGINT/SIGTERM asked the launcher to stop."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Stop


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m binance_launcher",
        description="Run the whole pipeline with a live status view.",
        epilog=settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("run", help="against BINANCE_WS_URL / BINANCE_REST_URL (real Binance by default)")
    demo = sub.add_parser("demo", help="against the local exchange simulator (no internet needed)")
    demo.add_argument("--rate", type=float, default=50.0,
                      help="synthetic events/s per symbol; with SYMBOLS patterns, of the busiest "
                      "(default 50)")
    demo.add_argument("--market", type=int, default=400,
                      help="with SYMBOLS patterns: USDT pairs of the simulated exchange, a few busy and "
                      "most quiet, plus some other quotes (default 400)")
    demo.add_argument("--replay", action="store_true", help="replay the recordings in --replay-dir")
    demo.add_argument("--replay-dir", type=Path, default=SHARED_DATA, help=f"default {SHARED_DATA}")
    parser.add_argument("--log-dir", type=Path, default=LOG_DIR, help=f"component logs (default {LOG_DIR})")
    parser.add_argument("--once", type=float, default=0.0, help=argparse.SUPPRESS)  # tests: run N s
    parser.add_argument("--print-every", type=float, default=10.0, help=argparse.SUPPRESS)  # tests: no tty
    return parser.parse_args(argv)


def start_simulator(settings: Settings, args: argparse.Namespace) -> tuple[Component, str, str]:
    """Start the simulator; return it with its WS and REST URLs (from its ready line)."""
    sim_args = ["--ws-port", "0", "--rest-port", "0", *market_args(settings.symbols, args.market)]
    if args.replay:
        files = sorted(p for p in args.replay_dir.glob("*") if p.name != "README.md")
        if not files:
            raise SystemExit(f"launcher: --replay needs recordings in {args.replay_dir}; none found")
        sim_args = ["--ws-port", "0", "--rest-port", "0", "--source", "replay", "--speed", "1"]
        for f in files:
            sim_args += ["--replay-file", str(f)]
    else:
        sim_args += ["--rate", str(args.rate)]
    sim = Component("exchange-sim", "exchange_sim", sim_args)
    sim.start(args.log_dir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in sim.log_tail(200).splitlines():
            if line.startswith("{") and '"ready"' in line:
                ready = json.loads(line)
                return sim, ready["ws_url"], ready["rest_url"]
        if sim.exit_code() is not None:
            break
        time.sleep(0.2)
    sim.stop()
    raise SystemExit(f"launcher: the exchange simulator did not start; its log:\n{sim.log_tail()}")


def market_args(symbols: tuple[str, ...], market: int) -> list[str]:
    """Rule 7: the simulator's symbols: a whole market when SYMBOLS holds patterns."""
    exact = [s for s in symbols if not is_pattern(s)]
    if len(exact) == len(symbols):
        return ["--symbols", ",".join(symbols)]
    return ["--market", str(market)] + (["--symbols", ",".join(exact)] if exact else [])


def fetch(url: str, timeout: float = 0.8) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own loopback URL
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


def component_state(comp: Component) -> ComponentState:
    if comp.health_url is None:
        return ComponentState(comp.name, "running")
    status, body = fetch(f"{comp.health_url}/readyz")
    if status == 200:
        return ComponentState(comp.name, "ready")
    if status == 0:
        return ComponentState(comp.name, "starting")
    try:
        reasons = "; ".join(json.loads(body).get("reasons", []))
    except ValueError:
        reasons = body[:80]
    return ComponentState(comp.name, f"not ready ({reasons})")


# The latest trade or aggTrade (an aggTrade-only replay must move too), each branch on the
# (symbol, type, time DESC) index.
_LATEST_SQL = (
    "SELECT price::text, time, type FROM ("
    " (SELECT price, time, type FROM trades WHERE symbol = %(s)s AND type = 'trade'"
    "  ORDER BY time DESC LIMIT 1)"
    " UNION ALL"
    " (SELECT price, time, type FROM trades WHERE symbol = %(s)s AND type = 'aggTrade'"
    "  ORDER BY time DESC LIMIT 1)"
    ") AS latest ORDER BY time DESC LIMIT 1"
)


def latest_prices(dsn: str, symbols: tuple[str, ...]) -> dict[str, Latest | None]:
    out: dict[str, Latest | None] = dict.fromkeys(symbols)
    try:
        with psycopg2.connect(dsn, connect_timeout=2) as conn, conn.cursor() as cur:
            for symbol in symbols:
                cur.execute(_LATEST_SQL, {"s": symbol})
                row = cur.fetchone()
                out[symbol] = (row[0], row[1], row[2]) if row else None
        conn.close()
    except psycopg2.Error:
        pass
    return out


# Recordings keep their own trade times, months before the receipt time: let them through.
REPLAY_TIME_WINDOW_S = "10000000000"


def build_components(
    settings: Settings, ws_url: str, rest_url: str, replay: bool = False
) -> list[Component]:
    endpoints = {"BINANCE_WS_URL": ws_url, "BINANCE_REST_URL": rest_url,
                 "DATABASE_URL": settings.database_url.get_secret_value()}
    ing = f"http://{settings.ingestion_health_host}:{settings.ingestion_health_port}"
    wrk = f"http://{settings.worker_health_host}:{settings.worker_health_port}"
    ing_env = {**endpoints, "INGESTION_TIME_WINDOW_S": REPLAY_TIME_WINDOW_S} if replay else endpoints
    comps = [
        Component("worker", "consumer.worker", env=endpoints, health_url=wrk),
        Component("ingestion", "ingestion.ws_consumer", env=ing_env, health_url=ing),
    ]
    if dashboard_installed():
        comps.append(Component("dashboard", "dashboard", env=endpoints))
    return comps


def dashboard_installed() -> bool:
    return importlib.util.find_spec("streamlit") is not None


def dashboard_line(settings: Settings) -> str:
    if not dashboard_installed():
        return "dashboard: not installed (pip install -e '.[dashboard]', or use make demo / make run)"
    return f"dashboard: http://{settings.dashboard_host}:{settings.dashboard_port}  (open it in a browser)"


def with_search_path(url: str, schema: str) -> str:
    """``url`` (postgresql://...) with ``schema``, then public, first in its search_path."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = " ".join([v for k, v in query if k == "options"] + [f"-csearch_path={schema},public"])
    rest = [(k, v) for k, v in query if k != "options"]
    return urlunsplit(parts._replace(query=urlencode([*rest, ("options", options)], quote_via=quote)))


def replay_settings(settings: Settings) -> Settings:
    """Rule 4: the same database with REPLAY_SCHEMA (created if missing) first in search_path."""
    schema = settings.replay_schema  # validated as a plain identifier
    dsn = settings.database_url.get_secret_value()
    with psycopg2.connect(dsn, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    conn.close()
    return settings.model_copy(update={"database_url": SecretStr(with_search_path(dsn, schema))})


class Screen:
    """Redraws in place on a terminal; elsewhere prints a block every 10 s (``--print-every``)."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.tty = sys.stdout.isatty()
        self._last, self._every_s = 0.0, every_s

    def show(self, lines: list[str]) -> None:
        if self.tty:
            sys.stdout.write("\x1b[H\x1b[2J" + "\n".join(lines) + "\n")
        elif time.monotonic() - self._last >= self._every_s:
            sys.stdout.write("\n".join(lines) + "\n\n")
            self._last = time.monotonic()
        sys.stdout.flush()


def notices(ws_url: str, ingestion: ComponentState, since_start: float, demo: bool) -> list[str]:
    if ingestion.state == "ready" or since_start < EXCHANGE_HINT_AFTER_S:
        return []
    if "exchange" not in ingestion.state and "stream" not in ingestion.state:
        return []
    if demo:
        return [f"the simulated exchange at {ws_url} does not stream to ingestion; it keeps retrying "
                "with backoff (see the simulator's log)."]
    return [
        f"the exchange at {ws_url} cannot be reached; ingestion keeps retrying "
        "with backoff. No internet here? Try `make demo` (a local simulated exchange)."
    ]


class StuckWatch:
    """Rule 5: remembers since when each component is not ready; notices past STUCK_AFTER_S."""

    def __init__(self) -> None:
        self.since: dict[str, float] = {}

    def notices(self, comps: list[Component], states: list[ComponentState], now: float) -> list[str]:
        out = []
        for comp, state in zip(comps, states, strict=True):
            if state.state in ("ready", "running"):
                self.since.pop(comp.name, None)
                continue
            for_s = now - self.since.setdefault(comp.name, now)
            if for_s >= STUCK_AFTER_S:
                error = last_error_line(comp.log_tail(200))
                out.append(stuck_notice(comp.name, for_s, str(comp.log_path), error))
        return out


def supervise(
    settings: Settings, comps: list[Component], ws_url: str, title: str, demo: bool, args: argparse.Namespace
) -> int:
    once, screen, started, stuck = args.once, Screen(args.print_every), time.monotonic(), StuckWatch()
    history: deque[Snapshot] = deque(maxlen=RATE_WINDOW_S + 1)  # rates over ~5 s: flushes are bursty
    dsn = settings.database_url.get_secret_value()
    audit = SelfAudit(dsn, settings.symbols, settings.self_audit_interval_s, settings.self_audit_window_s)
    market = Market(settings, dsn) if needs_exchange_info(settings.symbols) else None
    if market is not None:
        audit.follow([])  # until ingestion says what the patterns resolved to
    while True:
        for comp in comps:
            code = comp.exit_code()
            if code is not None:
                sys.stderr.write(
                    f"\nlauncher: {comp.name} exited with status {code}; the end of its log "
                    f"({comp.log_path}):\n{comp.log_tail()}\n"
                )
                return 1
        cur = Snapshot(time.monotonic())
        for comp in comps:
            if comp.health_url is not None:
                status, body = fetch(f"{comp.health_url}/metrics")
                if status == 200:
                    setattr(cur, comp.name if comp.name == "worker" else "ingestion", parse(body))
        states = [component_state(c) for c in comps]
        ingestion = next(s for s in states if s.name == "ingestion")
        prev = history[0] if history else None
        symbol_lines = market.lines(prev, cur, audit) if market is not None else None
        audit.poll(time.monotonic())
        shown = notices(ws_url, ingestion, time.monotonic() - started, demo)
        shown += stuck.notices(comps, states, time.monotonic())
        latest = latest_prices(dsn, settings.symbols) if market is None else {}
        lines = render(title, prev, cur, states, latest, shown, audit.lines(), symbol_lines)
        screen.show([*lines, dashboard_line(settings)])
        history.append(cur)
        if once and time.monotonic() - started >= once:
            return 0
        time.sleep(1.0)


class Market:
    """Rule 7: the symbols section of the view when SYMBOLS holds patterns, from what ingestion captures."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self._entries, self._dsn, self._listings = settings.symbols, dsn, Listings()
        self.symbols: list[str] = []

    def lines(self, prev: Snapshot | None, cur: Snapshot, audit: SelfAudit) -> list[str]:
        """The section's lines; the self-audit follows the captured symbols from here."""
        if cur.ingestion:  # keep the last list while a scrape fails
            self.symbols = captured(cur.ingestion)
            audit.follow(self.symbols)
        rates = symbol_rates(prev, cur)
        top = busiest(rates, self.symbols)
        latest = latest_prices(self._dsn, tuple(s for s, _ in top))
        return market_lines(self._entries, self.symbols, total(cur.ingestion, GAPS_OPEN_SYMBOLS),
                            self._listings.since_start(self.symbols), top,
                            sum(rates.get(s, 0.0) for s in self.symbols), latest)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_or_exit("binance_launcher")
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    comps: list[Component] = []
    try:
        dsn = settings.database_url.get_secret_value()
        try:
            if args.mode == "demo" and args.replay:
                settings = replay_settings(settings)
                dsn = settings.database_url.get_secret_value()
            apply(dsn)
        except MigrationError as exc:
            sys.stderr.write(f"launcher: {exc}\n")
            return 1
        except psycopg2.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = dsn_endpoint(dsn)
            sys.stderr.write(f"launcher: the database at DATABASE_URL ({where}) cannot be reached: {first}\n")
            return 1
        ws_url, rest_url = settings.binance_ws_url, settings.binance_rest_url
        if args.mode == "demo":
            sim, ws_url, rest_url = start_simulator(settings, args)
            comps.append(sim)
        comps += build_components(settings, ws_url, rest_url, args.mode == "demo" and args.replay)
        for comp in comps:
            if comp.proc is None:
                comp.start(args.log_dir)
        title = f"{args.mode} · exchange {ws_url} · logs in {args.log_dir}"
        if args.mode == "demo" and args.replay:
            title += f" · replayed rows go to schema {settings.replay_schema!r}, apart from other sessions"
        return supervise(settings, comps, ws_url, title, args.mode == "demo", args)
    except Stop:
        sys.stdout.write("\nlauncher: stopping...\n")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for comp in reversed(comps):
            comp.stop()


if __name__ == "__main__":
    raise SystemExit(main())
