"""Simulator settings: one frozen value built once by the CLI and passed to constructors.

Rule 1: every interval and limit is a setting, so tests can run a 24-hour cut in seconds.
Rule 2: defaults are Binance's documented values (or, for what Binance does not document,
        the value named in docs/simulator-control-api.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


@dataclass(frozen=True)
class ScheduledFault:
    """A control action to run ``at`` seconds after generation starts."""

    at: float
    action: str
    body: dict[str, Any]


@dataclass(frozen=True)
class SimConfig:
    """Every setting of one simulator run."""

    ws_port: int = 0
    rest_port: int = 0
    symbols: tuple[str, ...] | None = None
    market: int = 0  # synthetic: a whole market of N USDT pairs and some other quotes (whole_market.py)
    source: str = "synthetic"
    replay_files: tuple[Path, ...] = ()
    speed: float = 1.0
    rate: float = 100.0
    seed: int = 0
    burst_every: float = 0.0
    burst_duration: float = 1.0
    burst_factor: float = 10.0
    max_trades: int | None = None
    start_delay: float | None = None
    max_lifetime: float = 86400.0
    shutdown_notice: float = 10.0
    ping_interval: float = 20.0
    pong_timeout: float = 60.0
    max_streams: int = 1024
    max_incoming_per_sec: int = 5
    max_conn_attempts: int = 300
    conn_window: float = 300.0
    weight_limit: int = 6000
    weight_window: float = 60.0
    ban_after: int = 3
    ban_seconds: float = 120.0
    history_cap: int = 5_000_000
    depth: bool = False  # keep an order book per symbol and make depth events (synthetic Rule 8)
    depth_record: int = 6000  # 100 ms depth events kept per symbol as ground truth (10 min at 10/s)
    archive_days: int = 0
    archive_day_aggs: int = 1000
    max_send_buffer: int = 64 * 1024 * 1024
    oversized_bytes: int = 2 * 1024 * 1024
    disconnect_every: float = 0.0
    faults: tuple[ScheduledFault, ...] = field(default_factory=tuple)
    log_level: str = "WARNING"

    def market_symbols(self) -> list[str]:
        """Symbols known before generation starts (replay may discover more)."""
        if self.symbols is not None:
            return list(self.symbols)
        return list(DEFAULT_SYMBOLS) if self.source == "synthetic" and not self.market else []
