"""Replay of the recorded files (pure readers and live), and the command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets

from exchange_sim.cli import build_parser, parse_config
from exchange_sim.replay import read_file
from exchange_sim.testing import SimProcess, start_simulator

from .conftest import http

EXPECTED = {
    "hftbacktest_spot_btcusdt_20240808.gz": {("BTCUSDT", "trade"): 9757, ("BTCUSDT", "bookTicker"): 28040},
    "hftbacktest_spot_btcusdt_20230405.dat.gz": {("BTCUSDT", "trade"): 3144, ("BTCUSDT", "bookTicker"): 8015},
    "cryptofeed_BINANCE-ee25be.0": {
        ("BTCUSDT", "aggTrade"): 1227,
        ("ETHUSDT", "aggTrade"): 506,
        ("DOTUSDT", "aggTrade"): 177,
    },
    "BTCUSDT-aggTrades-2026-01-01.csv": {("BTCUSDT", "aggTrade"): 5000},
    "test_positive_binance_trade_stream_spot_trxusdt_04-03-2025.csv": {("TRXUSDT", "trade"): 10000},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_files_are_read_completely(data_dir: Path, name: str) -> None:
    """Each recorded file yields exactly its documented events, ids consecutive."""
    records = list(read_file(data_dir / name))
    assert Counter((r.event.symbol, r.event.kind) for r in records) == EXPECTED[name]
    for symbol, kind in EXPECTED[name]:
        if kind == "bookTicker":
            continue
        ids = [r.event.ident for r in records if r.event.symbol == symbol and r.event.kind == kind]
        assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_recorded_values_kept_byte_for_byte(data_dir: Path) -> None:
    """Old trades keep their b/a fields, TRX prices keep their 4 decimals, us times are sniffed."""
    old = next(read_file(data_dir / "hftbacktest_spot_btcusdt_20230405.dat.gz")).event
    assert old.payload(False) == (
        b'{"e":"trade","E":1680652800000,"s":"BTCUSDT","t":3071245454,"p":"28165.47000000",'
        b'"q":"0.00056000","b":20720542158,"a":20720542592,"T":1680652799999,"m":true,"M":true}'
    )
    trx = next(read_file(data_dir / "test_positive_binance_trade_stream_spot_trxusdt_04-03-2025.csv")).event
    assert (trx.body["p"], trx.body["q"], trx.body["m"]) == ("0.2312", "2619.4", True)
    assert trx.times_us["E"] == 1741046401271969 and trx.body["E"] == 1741046401271
    agg = next(read_file(data_dir / "BTCUSDT-aggTrades-2026-01-01.csv")).event
    assert agg.times_us["T"] == 1767225600039409 and agg.body["T"] == 1767225600039


def test_replay_live_stream_and_rest_match_file(sim: Callable[..., SimProcess], data_dir: Path) -> None:
    """Replaying the TRX file as fast as possible streams every recorded trade; REST serves the same."""
    path = data_dir / "test_positive_binance_trade_stream_spot_trxusdt_04-03-2025.csv"
    s = sim("--source", "replay", "--replay-file", str(path), "--speed", "0", "--start-delay", "0.3")
    recorded = [r.event.body for r in read_file(path)]

    async def main() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        async with websockets.connect(s.ws_url + "/ws/trxusdt@trade") as ws:
            while len(got) < len(recorded):
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        return got

    assert asyncio.run(main()) == recorded
    first = recorded[0]["t"]
    _, _, page = http(f"{s.rest_url}/api/v3/historicalTrades?symbol=TRXUSDT&fromId={first}&limit=3")
    assert [(r["id"], r["price"], r["qty"]) for r in page] == [(b["t"], b["p"], b["q"]) for b in recorded[:3]]
    assert s.stats()["done"] is True


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    """--help names every option of the parser, including the contract's ones (exit 0)."""
    with pytest.raises(SystemExit) as info:
        parse_config(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for action in build_parser()._actions:
        for flag in action.option_strings:
            assert flag in out
    for flag in (
        "--max-trades",
        "--start-delay",
        "--shutdown-notice",
        "--ban-after",
        "--replay-file",
        "--speed",
    ):
        assert flag in out


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--rate", "-3"], "--rate"),
        (["--ws-port", "70000"], "--ws-port"),
        (["--speed", "x"], "--speed"),
        (["--max-streams", "0"], "--max-streams"),
        (["--symbols", "btc"], "--symbols"),
        (["--source", "replay"], "--replay-file"),
        (["--fault", "1:explode"], "--fault"),
        (["--market", "-1"], "--market"),
        (["--market", "10", "--source", "replay", "--replay-file", __file__], "--market"),
    ],
)
def test_bad_option_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], args: list[str], option: str
) -> None:
    """A bad value exits 2 with a message naming the option (the parser of python -m exchange_sim)."""
    with pytest.raises(SystemExit) as info:
        parse_config(args)
    assert info.value.code == 2
    assert option in capsys.readouterr().err


def test_the_command_exits_2_on_a_bad_option() -> None:
    """python -m exchange_sim itself (not only its parser) exits 2 on a bad value, naming it."""
    done = subprocess.run(
        [sys.executable, "-m", "exchange_sim", "--rate", "-3"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "--rate" in done.stderr


def test_sigterm_exits_0_and_ready_line() -> None:
    """The ready line has the contract's keys and SIGTERM stops the process with status 0."""
    s = start_simulator("--symbols", "BTCUSDT")
    assert s.ws_url.startswith("ws://127.0.0.1:") and s.control_url == s.rest_url + "/control"
    time.sleep(0.2)
    os.kill(s.pid, signal.SIGTERM)
    assert s.process.wait(10) == 0
    s.stop()
