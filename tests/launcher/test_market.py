"""`SYMBOLS='*USDT' launcher demo`: a simulated whole exchange, captured whole, the view following it."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from binance_pipeline.testing.helpers import Topics, wait_for
from binance_pipeline.testing.stages import captured_symbols as captured
from binance_pipeline.testing.stages import control, trading_symbols
from tests.launcher.test_launcher import launch, launcher_env, processes_with

pytestmark = pytest.mark.slow
MARKET = 320  # USDT pairs of the simulated exchange (a few of them delisted: status BREAK)


class Lines:
    """Collects a pipe's lines on a thread, so the test waits for what the view shows."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self.lines.append(line.rstrip("\n"))

    def last_block(self) -> list[str]:
        """The last whole block the launcher printed (blocks end with the dashboard line)."""
        ends = [i for i, line in enumerate(self.lines) if line.startswith("dashboard:")]
        if not ends:
            return []
        starts = [i for i in range(ends[-1]) if self.lines[i].startswith("binance-pipeline ·")]
        return self.lines[starts[-1]: ends[-1] + 1] if starts else []


def ready_line(log: Path) -> dict[str, str]:
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        if line.startswith("{") and '"ready"' in line:
            return dict(json.loads(line))
    return {}


def test_usdt_pattern_demo_captures_the_market_shows_the_busiest_and_audits_them_all(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> None:
    """Every TRADING USDT pair captured; the view shows totals, the busiest, a listing; audit covers all."""
    env = {**launcher_env(kafka_bootstrap, db_url, topics, consumer_group), "SYMBOLS": "*USDT",
           "SYMBOLS_REFRESH_S": "1", "SELF_AUDIT_INTERVAL_S": "4", "SELF_AUDIT_WINDOW_S": "60"}
    port = int(env["INGESTION_HEALTH_PORT"])
    proc = launch(env, tmp_path, "--print-every", "1", "demo", "--market", str(MARKET), "--rate", "20")
    assert proc.stdout is not None
    out = Lines(proc.stdout)
    try:
        wait_for(lambda: ready_line(tmp_path / "exchange-sim.log"), 30, "the simulator's ready line")
        sim = ready_line(tmp_path / "exchange-sim.log")
        wanted = trading_symbols(sim["rest_url"], "USDT")
        assert len(wanted) >= 300 and all(s.endswith("USDT") for s in wanted)
        wait_for(lambda: captured(port) == wanted, 40, "every TRADING USDT symbol captured")
        control(sim["control_url"], "list", symbol="NEWUSDT")
        wait_for(lambda: "NEWUSDT" in captured(port), 10, "the listing captured")
        total = len(wanted) + 1

        def shown() -> bool:
            text = "\n".join(out.last_block())
            return f"{total} captured (SYMBOLS *USDT)" in text and "+1 NEWUSDT" in text \
                and f"{total} of {total} captured symbols checked" in text
        wait_for(shown, 20, "the listing and a whole audit round in the view")
        block = out.last_block()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    text = "\n".join(block)
    assert f"symbols: {total} captured (SYMBOLS *USDT), 0 with open gaps; since start: +1 NEWUSDT" in text
    busiest = block.index(next(line for line in block if line.startswith("busiest 10 of")))
    rows = block[busiest + 1: busiest + 11]
    rates = [float(row.split()[1].rstrip("/s").replace(",", "")) for row in rows]
    assert rows[0].split()[0] == "BTCUSDT" and rates == sorted(rates, reverse=True), rows
    total_line = block[busiest + 11].split()
    assert total_line[0] == "total" and total_line[-2:] == [str(total), "symbols"], block
    assert float(total_line[1].rstrip("/s").replace(",", "")) > sum(rates)
    time.sleep(0.5)
    assert processes_with(consumer_group) == []
