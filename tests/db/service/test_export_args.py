"""Export arguments: checked before any database work; bad ones are usage errors (exit 2) naming them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from db.query import main as query_main
from db.service.errors import InvalidArgument
from db.service.export import parquet_schema, parse_export
from ingestion.history.__main__ import main as history_main

ROOT = Path(__file__).resolve().parents[3]
GOOD = {"symbol": "btcusdt", "stream": "aggTrade", "from": "2026-01-01", "to": "2026-01-02"}


def test_good_arguments_make_a_request() -> None:
    """Symbol upper-cased, times UTC-aware, csv by default."""
    req = parse_export(GOOD)
    assert (req.symbol, req.stream, req.fmt) == ("BTCUSDT", "aggTrade", "csv")
    assert req.start.tzinfo is not None and req.file_name().startswith("BTCUSDT-aggTrades-2026-01-01")


@pytest.mark.parametrize(("change", "param"), [
    ({"stream": "bookTicker"}, "stream"), ({"format": "xlsx"}, "format"), ({"to": "2025-12-31"}, "to"),
    ({"from": "yesterday"}, "from"), ({"symbol": ""}, "symbol"),
])
def test_bad_arguments_name_the_parameter(change: dict[str, str], param: str) -> None:
    """Each bad parameter is refused with its name."""
    with pytest.raises(InvalidArgument) as err:
        parse_export({**GOOD, **change})
    assert err.value.param == param


def test_parquet_schema_keeps_decimals_as_text_and_times_utc_microseconds() -> None:
    """Prices and quantities are strings; time is timestamp[us, tz=UTC]."""
    schema = parquet_schema("trade")
    assert str(schema.field("price").type) == "string" and str(schema.field("qty").type) == "string"
    assert str(schema.field("time").type) == "timestamp[us, tz=UTC]"


def test_cli_usage_errors_exit_2_naming_the_option() -> None:
    """db.query export and ingestion.history, as commands, refuse bad arguments with exit status 2."""
    export = subprocess.run([sys.executable, "-m", "db.query", "export", "BTCUSDT", "--stream", "depth",
                             "--from", "2026-01-01", "--to", "2026-01-02"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert export.returncode == 2 and "--stream" in export.stderr
    history = subprocess.run([sys.executable, "-m", "ingestion.history", "BTCUSDT", "--from", "2026-13-01"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert history.returncode == 2 and "--from" in history.stderr


@pytest.mark.parametrize(("main", "argv", "option"), [
    (query_main, ["export", "BTCUSDT", "--stream", "trade", "--from", "2026-01-01", "--to", "2026-01-02",
                  "--format", "parquet"], "--out"),
    (history_main, ["BTCUSDT", "--from", "2026-01-01", "--streams", "bookTicker"], "--streams"),
])
def test_more_usage_errors_exit_2_naming_the_option(
    capsys: pytest.CaptureFixture[str], main: Callable[[list[str]], int], argv: list[str], option: str
) -> None:
    """Parquet without --out, history of bookTicker: exit 2 naming the option (each command's main)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and option in capsys.readouterr().err
