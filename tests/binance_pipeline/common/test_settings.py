"""Settings: defaults, validation, masking, and the exit-2 contract of every entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from binance_pipeline.common.settings import (
    EnvSettings,
    IngestionSettings,
    MigrateSettings,
    QueryApiSettings,
    QuerySettings,
    Settings,
    WorkerSettings,
    format_error,
    settings_table,
)

ROOT = Path(__file__).resolve().parents[3]
ENTRY_POINTS: dict[str, type[EnvSettings]] = {
    "ingestion.ws_consumer": IngestionSettings, "consumer.worker": WorkerSettings,
    "db.query": QuerySettings, "db.migrate": MigrateSettings, "db.api": QueryApiSettings,
    "binance_launcher": Settings,
}
BAD_SETTINGS = [("INGESTION_HEALTH_HOST", "0.0.0.0; rm -rf /"), ("KAFKA_BOOTSTRAP_SERVERS", ""),
                ("SYMBOLS", "btc usdt"), ("QUERY_API_KEY", ""),
                ("DATABASE_URL", "mysql://x"), ("LOG_LEVEL", "LOUD")]


def entry_point_cases() -> list[object]:
    """Every entry point with every bad setting it reads (test_settings_stages.py beside this file:
    the others). One process start each (~0.4 s): the fast suite keeps one bad setting per entry point,
    every setting at least once; the rest are marked slow."""
    cases: list[object] = []
    fast: set[str] = set()
    for module, stage in ENTRY_POINTS.items():
        read = [(var, value) for var, value in BAD_SETTINGS if var.lower() in stage.model_fields]
        pick = next((var for var, _ in read if var not in fast), read[0][0])
        fast.add(pick)
        for var, value in read:
            marks = () if var == pick else (pytest.mark.slow,)
            cases.append(pytest.param(module, var, value, marks=marks, id=f"{var}-{module}"))
    return cases


def test_defaults_are_the_documented_ones() -> None:
    """With nothing set, the defaults name the local services and the three default symbols."""
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.symbols == ("BTCUSDT", "ETHUSDT", "BNBUSDT")
    assert s.stream_types == ("trade", "aggTrade", "bookTicker")
    assert s.binance_ws_url == "wss://stream.binance.com:9443"
    assert s.binance_rest_url == "https://api.binance.com"
    assert (s.batch_max_rows, s.batch_max_seconds) == (500, 2.0)


def test_symbols_are_parsed_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """SYMBOLS accepts comma-separated names, upper-cases them, and trims spaces."""
    monkeypatch.setenv("SYMBOLS", "btcusdt, ethbtc")
    assert Settings().symbols == ("BTCUSDT", "ETHBTC")


def test_ingestion_shard_defaults_to_one_of_one_and_is_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    """INGESTION_SHARD is 1/1 unless set; ' 2 / 3 ' is kept as 2/3."""
    assert Settings(_env_file=None).ingestion_shard == "1/1"  # type: ignore[call-arg]
    monkeypatch.setenv("INGESTION_SHARD", " 2 / 3 ")
    assert Settings().ingestion_shard == "2/3"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("SYMBOLS", "btc usdt"),
        ("SYMBOLS", ""),
        ("SYMBOLS", "BTCUSDT,BTCUSDT"),
        ("KAFKA_BOOTSTRAP_SERVERS", ""),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost"),
        ("DATABASE_URL", "mysql://x"),
        ("STREAM_TYPES", "trade,depth"),
        ("BATCH_MAX_ROWS", "0"),
        ("BINANCE_WS_URL", "http://example"),
        ("LOG_LEVEL", "LOUD"),
        ("INGESTION_HEALTH_HOST", "0.0.0.0; rm -rf /"),
        ("WORKER_HEALTH_HOST", "host name"),
        ("QUERY_API_HOST", "-bad-.example"),
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka$(id):9092"),
        ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:70000"),
        ("DATABASE_URL", "postgresql://u:pw@db;reboot:5432/pipeline"),
        ("BINANCE_WS_URL", "ws://a`b`:9443"),
        ("BINANCE_REST_URL", "http://127.0.0.1:0"),
        ("QUERY_API_KEY", ""),
        ("QUERY_API_KEY", "   "),
        ("INGESTION_SHARD", "0/3"),
        ("INGESTION_SHARD", "4/3"),
        ("INGESTION_SHARD", "2"),
        ("INGESTION_SHARD", "a/b"),
    ],
)
def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    """Each bad value is rejected with a message that names its environment variable."""
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert format_error(info.value).startswith(f"invalid setting {var}:")


def test_secrets_are_masked_when_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    """DATABASE_URL and the API keys never appear in the settings' repr."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2@h:5432/d")
    monkeypatch.setenv("QUERY_API_KEY", "sekrit")
    text = repr(Settings())
    assert "hunter2" not in text and "sekrit" not in text


def test_readme_lists_every_setting() -> None:
    """README's settings table has a row for every setting."""
    readme = (ROOT / "README.md").read_text()
    for row in settings_table().splitlines()[2:]:
        name = row.split("|")[1].strip()
        assert f"| {name} |" in readme, f"{name} missing from README"


@pytest.mark.parametrize(
    ("var", "value"),
    [("INGESTION_HEALTH_HOST", "0.0.0.0"),  # noqa: S104 - a value checked, nothing bound
     ("QUERY_API_HOST", "::1"), ("WORKER_HEALTH_HOST", "localhost"),
     ("KAFKA_BOOTSTRAP_SERVERS", "[::1]:9092,kafka-1.internal:9093"),
     ("DATABASE_URL", "postgresql://u:pw@db1:5432,db2:5433/pipeline"),
     ("DATABASE_URL", "postgresql:///pipeline?host=/var/run/postgresql")],
)
def test_good_hosts_are_accepted(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    """IP addresses (v4, v6), DNS names, libpq multi-host URLs and socket-dir URLs pass the host check."""
    monkeypatch.setenv(var, value)
    Settings()


def test_a_bad_database_host_is_named_without_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DATABASE_URL with a bad host is refused naming the host, never echoing the password."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2@db;x:5432/pipeline")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "db;x" in format_error(info.value) and "hunter2" not in format_error(info.value)


@pytest.mark.parametrize(("module", "var", "value"), entry_point_cases())
def test_entry_points_exit_2_naming_the_bad_setting(module: str, var: str, value: str) -> None:
    """Every entry point stops at start with exit 2 and one line naming the bad setting."""
    env = {**os.environ, var: value}
    args = [sys.executable, "-m", module] + (["latest", "BTCUSDT"] if module == "db.query" else [])
    args += ["demo"] if module == "binance_launcher" else []
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and var in lines[0], proc.stderr


@pytest.mark.parametrize(
    "var", ["TOPIC_DEAD_LETTER", "TOPIC_GAPS", "TOPIC_FRONTIER", "TOPIC_HISTORY_PROGRESS"]
)
def test_a_topic_used_twice_is_refused_naming_both_settings(
    monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    """A topic named like the trades topic (a dead letter looping into the worker's input) is refused."""
    monkeypatch.setenv(var, "binance.trades")
    with pytest.raises(ValidationError) as info:
        Settings()
    said = format_error(info.value)
    assert var in said and "TOPIC_TRADES" in said and "'binance.trades'" in said, said
