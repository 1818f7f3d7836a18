"""``python -m db.query`` as a user runs it (a real process) against the hand-built tape."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from binance_pipeline.common.settings import dsn_endpoint
from db.service.errors import InvalidArgument
from db.service.params import parse_time
from db.service.specs import SPECS, parse_request
from tests.db.service.tape_data import G1, G2, G5, tape_schema

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tape(database_url: str) -> Iterator[str]:
    with tape_schema(database_url) as url:
        yield url


def run(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "DATABASE_URL": url, **env}
    return subprocess.run(
        [sys.executable, "-m", "db.query", *args], cwd=ROOT, env=full_env,
        capture_output=True, text=True, timeout=60, check=False,
    )


def ok_json(url: str, *args: str) -> dict[str, object]:
    proc = run(url, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


def test_latest_table_keeps_price_digits(tape: str) -> None:
    """The default output is a table with the exchange's exact digits."""
    proc = run(tape, "latest", "BTCUSDT")
    assert proc.returncode == 0
    lines = dict(line.split(None, 1) for line in proc.stdout.splitlines() if line.strip())
    assert lines["price"] == "105.00000000" and lines["id"] == "8"
    assert lines["time"] == "2024-03-02T12:00:00.000000Z"


def test_latest_json_prices_are_strings(tape: str) -> None:
    """--json gives prices as strings (never floats) and the type asked for."""
    doc = ok_json(tape, "latest", "btcusdt", "--type", "aggTrade")
    assert doc["symbol"] == "BTCUSDT" and doc["type"] == "aggTrade"
    assert doc["trade"] == {"time": "2024-03-01T00:05:00.000000Z", "id": 102, "price": "220.00000000",
                            "qty": "1000.00000000", "buyer_maker": False}


def test_price_at_accepts_iso_and_epoch_ms_alike(tape: str) -> None:
    """An ISO time without offset is UTC and equals the same instant in epoch milliseconds."""
    iso = ok_json(tape, "price-at", "BTCUSDT", "2024-03-01T00:01:00")
    epoch = ok_json(tape, "price-at", "BTCUSDT", "1709251260000")
    offset = ok_json(tape, "price-at", "BTCUSDT", "2024-03-01T01:01:00+01:00")
    assert iso == epoch == offset
    assert iso["price"] == "99.25000000" and iso["nearest"]["id"] == 4  # type: ignore[index]


def test_range_json_is_exact(tape: str) -> None:
    """range --from/--to gives the exact summary."""
    doc = ok_json(tape, "range", "BTCUSDT", "--from", "2024-03-01T00:00:00Z", "--to", "2024-03-01T00:04")
    assert {k: doc[k] for k in ("trade_count", "open", "close", "volume", "quote_volume", "vwap")} == {
        "trade_count": 7, "open": "100.00000000", "close": "98.50000000", "volume": "1006.80000000",
        "quote_volume": "103688.1250000000000000", "vwap": "102.987807906238"}


def test_range_last_on_a_quiet_symbol_is_an_empty_answer(tape: str) -> None:
    """--last over an interval without trades prints count 0 and exits 0 (the symbol has data)."""
    doc = ok_json(tape, "range", "BTCUSDT", "--last", "5m")
    assert doc["trade_count"] == 0 and doc["open"] is None and doc["volume"] == "0"


def test_candles_csv(tape: str) -> None:
    """--csv gives a header and one row per bucket; --fill adds the empty minute."""
    proc = run(tape, "candles", "BTCUSDT", "--from", "2024-03-01", "--to", "2024-03-01T00:03",
               "--bucket", "1m", "--fill", "--csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == ["bucket", "open", "high", "low", "close", "volume", "quote_volume", "trade_count"]
    assert rows[1:] == [
        ["2024-03-01T00:00:00.000000Z", "100.00000000", "101.50000000", "99.25000000", "99.25000000",
         "3.50000000", "352.6250000000000000", "3"],
        ["2024-03-01T00:01:00.000000Z", "102.00000000", "102.00000000", "102.00000000", "102.00000000",
         "3.00000000", "306.0000000000000000", "1"],
        ["2024-03-01T00:02:00.000000Z", "102.00000000", "102.00000000", "102.00000000", "102.00000000",
         "0", "0", "0"],
    ]


def test_stats_spread_sma_whales_gaps(tape: str) -> None:
    """Each remaining command answers with the exact values of the tape."""
    stats = ok_json(tape, "stats", "BTCUSDT")
    assert [t["rows"] for t in stats["tables"]] == [8, 3, 3]  # type: ignore[index,union-attr]
    spread = ok_json(tape, "spread", "BTCUSDT", "--at", "2024-03-01T00:01:00Z")
    assert spread["quote"]["spread"] == "0.10000000"  # type: ignore[index]
    sma = ok_json(tape, "sma", "BTCUSDT", "--from", "2024-03-01T00:01", "--to", "2024-03-01T00:02",
                  "--window", "2")
    assert [p["sma"] for p in sma["points"]] == ["100.625000000000"]  # type: ignore[union-attr]
    whales = ok_json(tape, "whales", "BTCUSDT", "--from", "2024-03-01", "--to", "2024-03-02")
    assert [(w["id"], w["notional"]) for w in whales["trades"]] == [  # type: ignore[union-attr]
        (5, "103000.0000000000000000")]
    gaps = ok_json(tape, "gaps", "BTCUSDT", "--from", "2024-03-01", "--to", "2024-03-02")
    assert [g["gap_id"] for g in gaps["gaps"]] == [G1, G2, G5]  # type: ignore[union-attr]
    assert gaps["days"] == [{"day": "2024-03-01T00:00:00.000000Z", "trades": 7, "agg_trades": 3}]


def test_text_output_of_every_command_exits_0(tape: str) -> None:
    """Every command prints a table for a symbol with data."""
    span = ("--from", "2024-03-01", "--to", "2024-03-02")
    for args in (("stats",), ("spread", "--at", "2024-03-01T00:00:01Z"), ("price-at", "2024-02-01"),
                 ("spread", "--at", "2024-02-01"), ("whales", "--last", "1m"),
                 ("sma", *span, "--bucket", "1h"),
                 ("whales", *span), ("gaps", *span), ("candles", *span, "--bucket", "1h")):
        proc = run(tape, args[0], "BTCUSDT", *args[1:])
        assert proc.returncode == 0 and proc.stdout.strip() and not proc.stderr, (args, proc.stderr)


def test_symbol_without_data_is_a_clear_message_and_exit_1(tape: str) -> None:
    """No data: one line on stderr naming the symbol, exit 1, no traceback, nothing on stdout."""
    for args in (("latest",), ("range",), ("stats",), ("spread",), ("gaps",)):
        proc = run(tape, args[0], "XRPUSDT")
        assert proc.returncode == 1, args
        assert proc.stdout == "" and "XRPUSDT" in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "named"), [
    (("range", "BTCUSDT", "--from", "yesterday"), "--from"),
    (("range", "BTCUSDT", "--from", "2024-03-02", "--to", "2024-03-01"), "--to"),
    (("candles", "BTCUSDT", "--bucket", "2d"), "--bucket"),
    (("candles", "BTCUSDT", "--bucket", "500ms"), "--bucket"),
    (("whales", "BTCUSDT", "--limit", "100000000"), "--limit"),
    (("whales", "BTCUSDT", "--threshold", "lots"), "--threshold"),
    (("latest", "BTC-USDT"), "symbol"),
    (("latest", "BTCUSDT", "--type", "bookTicker"), "--type"),
    (("price-at", "BTCUSDT", "noon"), "at"),
    (("range", "BTCUSDT", "--last", "5m", "--from", "2024-03-01"), "--last"),
    (("sma", "BTCUSDT", "--window", "0"), "--window"),
])
def test_bad_arguments_are_usage_errors_naming_them(tape: str, args: tuple[str, ...], named: str) -> None:
    """A bad argument: exit 2, a usage message naming it, no traceback."""
    proc = run(tape, *args)
    assert proc.returncode == 2
    assert f"argument {named}:" in proc.stderr and "Traceback" not in proc.stderr


def test_unreachable_database_is_one_line_naming_database_url() -> None:
    """Database down: exit 1 and one stderr line naming DATABASE_URL (without a password)."""
    proc = run("postgresql://postgres:secret@127.0.0.1:1/pipeline", "latest", "BTCUSDT")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "DATABASE_URL" in proc.stderr and "127.0.0.1:1/pipeline" in proc.stderr
    assert "secret" not in proc.stderr and "Traceback" not in proc.stderr


def test_bad_setting_exits_2_naming_it(tape: str) -> None:
    """A bad QUERY_* setting stops the CLI with exit 2 naming the variable."""
    proc = run(tape, "latest", "BTCUSDT", QUERY_MAX_ROWS="lots")
    assert proc.returncode == 2 and "QUERY_MAX_ROWS" in proc.stderr


# --- input parsing (db.service.params), shared by the CLI and the API: property tests

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)
TEXT = st.one_of(st.text(max_size=30), st.from_regex(r"[0-9]{1,18}", fullmatch=True),
                 st.sampled_from(["2024-03-01T00:00:00Z", "5m", "1d", "0s", "BTCUSDT", "aggTrade",
                                  "true", "100.5", "-1", "NaN", "Infinity", "1e400", " 3 "]))


@given(TEXT)
def test_parse_time_accepts_or_rejects_with_invalid_argument(text: str) -> None:
    """Any text is a UTC-aware datetime or an InvalidArgument naming the parameter."""
    try:
        value = parse_time(text, "at")
    except InvalidArgument as exc:
        assert exc.param == "at"
    else:
        assert value.utcoffset() == timedelta(0)


@settings(max_examples=300)
@example("candles", {"symbol": "00", "from": "0"})  # found by CI: a too long series named the default bucket
@given(st.sampled_from(sorted(n for n, s in SPECS.items() if s.download is None)),
       st.dictionaries(st.sampled_from(["symbol", "type", "at", "from", "to", "last", "bucket", "fill",
                                        "window", "threshold", "limit", "other"]), TEXT, max_size=6))
def test_parse_request_accepts_or_names_the_bad_parameter(command: str, raw: dict[str, str]) -> None:
    """Any parameter mapping gives a Request or an InvalidArgument naming a given/required parameter."""
    try:
        req = parse_request(command, raw, NOW, 10_000)
    except InvalidArgument as exc:
        assert exc.param in raw or exc.param in ("symbol", "at", "from")
    else:
        if command == "markets":  # the whole market: the one query without a symbol
            assert "symbol" not in type(req).model_fields
        else:
            assert req.symbol.isupper() or req.symbol.isdigit()
        if req.start is not None and req.end is not None:
            assert req.start <= req.end


def test_epoch_ms_and_iso_agree() -> None:
    """Epoch milliseconds and ISO 8601 (naive = UTC) name the same instant."""
    assert parse_time("1709251260000", "at") == parse_time("2024-03-01T00:01:00", "at")
    assert parse_time("2024-03-01T01:01:00+01:00", "at") == parse_time("2024-03-01 00:01:00Z", "at")


def test_now_is_a_time_for_from_to_and_at() -> None:
    """`now` (any case) is the request's clock for --from, --to and --at; other words stay errors."""
    req = parse_request("range", {"symbol": "BTCUSDT", "from": "2024-03-01", "to": "now"}, NOW, 10_000)
    assert (req.start, req.end) == (datetime(2024, 3, 1, tzinfo=UTC), NOW)
    assert parse_request("spread", {"symbol": "BTCUSDT", "at": "NOW"}, NOW, 10_000).at == NOW
    with pytest.raises(InvalidArgument):
        parse_request("range", {"symbol": "BTCUSDT", "from": "2024-03-01", "to": "later"}, NOW, 10_000)


def test_to_now_on_the_command_line(tape: str) -> None:
    """`range --from ... --to now` is accepted and covers the whole tape."""
    doc = ok_json(tape, "range", "BTCUSDT", "--from", "2024-03-01", "--to", "now")
    assert doc["trade_count"] == 8, doc


def test_help_lists_only_the_settings_db_query_reads() -> None:
    """`db.query --help` names DATABASE_URL and the QUERY_* limits, not other stages' settings."""
    out = run("postgresql://x@127.0.0.1:1/p", "--help").stdout
    listed = {line.split()[0] for line in out.split("environment variables")[1].splitlines()[1:]
              if line.startswith("  ")}
    assert listed == {"DATABASE_URL", "QUERY_STATEMENT_TIMEOUT_MS", "QUERY_MAX_ROWS",
                      "AUDIT_STATEMENT_TIMEOUT_MS", "AUDIT_REPAIR_WAIT_S"}


def test_database_without_tables_is_named(database_url: str) -> None:
    """A reachable database without the tables: exit 1, one line naming host:port/dbname, no password."""
    url = database_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2@", 1)
    proc = run(url + ("&" if "?" in url else "?") + "options=-csearch_path%3Dnone_such", "latest", "BTCUSDT")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert dsn_endpoint(database_url) in proc.stderr and "hunter2" not in proc.stderr


def test_markets_lists_the_whole_market(tape: str) -> None:
    """`markets` takes no symbol: every symbol of the tape, most trades first, exact last prices."""
    doc = ok_json(tape, "markets", "--from", "2024-03-01", "--to", "2024-03-03")
    assert [(m["symbol"], m["trades"], m["completeness"], m["last_price"])  # type: ignore[index,union-attr]
            for m in doc["markets"]] == [("BTCUSDT", 8, "open gaps", "105.00000000"),
                                         ("ETHUSDT", 1, "open gaps", "3000.10000000")]
    proc = run(tape, "markets", "--last", "1h")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:3] == ["symbol", "trades", "completeness"], proc.stdout
