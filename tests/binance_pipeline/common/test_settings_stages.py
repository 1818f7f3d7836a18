"""Settings per stage: each stage's class refuses its own bad values and ignores every other stage's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from binance_pipeline.common.settings import (
    STAGES,
    EnvSettings,
    IngestionSettings,
    QuerySettings,
    Settings,
    WorkerSettings,
    declared_in_order,
    format_error,
    load_or_exit,
)

ROOT = Path(__file__).resolve().parents[3]
BAD = {  # one bad value per rule (setting_types), for settings of every stage
    "KAFKA_BOOTSTRAP_SERVERS": "", "TOPIC_TRADES": "two words", "TOPIC_FRONTIER": "a/b",
    "TOPIC_HISTORY_PROGRESS": "", "CONSUMER_GROUP": "a b", "WORKER_NAME": "a b",
    "DATABASE_URL": "mysql://x", "BINANCE_WS_URL": "garbage", "BINANCE_REST_URL": "garbage",
    "BINANCE_ARCHIVE_URL": "ftp://x", "SYMBOLS": "btc usdt", "STREAM_TYPES": "bogus", "LOG_LEVEL": "LOUD",
    "INGESTION_HEALTH_HOST": "a;b", "WORKER_HEALTH_HOST": "a b", "QUERY_API_HOST": "-x-",
    "DASHBOARD_HOST": "a b", "QUERY_API_KEY": "", "REPLAY_SCHEMA": "Bad", "BATCH_MAX_ROWS": "0",
    "QUERY_MAX_ROWS": "0", "DASHBOARD_PORT": "0", "WORKER_HEALTH_PORT": "70000", "PRODUCER_LINGER_MS": "-1",
    "RETENTION_DAYS": "-1", "AUDIT_STATEMENT_TIMEOUT_MS": "0", "HISTORY_ARCHIVE_ATTEMPTS": "0",
    "INGESTION_SHARD": "4/3",
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",  # without KAFKA_SASL_*: the rule across settings
}
CLASSES: list[type[EnvSettings]] = [*STAGES.values(), Settings]


@pytest.mark.parametrize("var", BAD)
def test_a_bad_value_stops_exactly_the_stages_that_read_it(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    """Every stage class declaring the setting refuses the value naming it; every other ignores it."""
    monkeypatch.setenv(var, BAD[var])
    for cls in CLASSES:
        if var.lower() not in cls.model_fields:
            cls()
            continue
        with pytest.raises(ValidationError) as info:
            cls()
        assert var in format_error(info.value), (cls.__name__, format_error(info.value))


def test_the_worker_ignores_ingestion_s_topic_but_not_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """TOPIC_FRONTIER equal to TOPIC_TRADES stops ingestion (and the launcher), not the worker."""
    monkeypatch.setenv("TOPIC_FRONTIER", "binance.trades")
    assert WorkerSettings().topic_trades == "binance.trades"
    for cls in (IngestionSettings, Settings):
        with pytest.raises(ValidationError, match="TOPIC_FRONTIER and TOPIC_TRADES are both"):
            cls()
    monkeypatch.setenv("TOPIC_DEAD_LETTER", "binance.gaps")
    with pytest.raises(ValidationError) as info:
        WorkerSettings()
    assert "TOPIC_DEAD_LETTER and TOPIC_GAPS are both 'binance.gaps'" in format_error(info.value)


def test_every_setting_is_declared_once_and_each_stage_is_a_part_of_settings() -> None:
    """Settings is the union of the stages, so a Settings fits wherever a stage's settings are asked for."""
    assert sorted(declared_in_order()) == sorted(Settings.model_fields)
    assert len(declared_in_order()) == len(set(declared_in_order()))
    for cls in STAGES.values():
        assert issubclass(Settings, cls)
    assert "kafka_bootstrap_servers" not in QuerySettings.model_fields


def test_a_stage_loaded_alone_reads_its_settings_and_leaves_the_others_at_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """load_or_exit(prog, "ingestion") ignores a bad worker setting and keeps ingestion's values."""
    monkeypatch.setenv("WORKER_NAME", "a b")
    monkeypatch.setenv("BATCH_MAX_ROWS", "7")
    monkeypatch.setenv("SYMBOLS", "ethbtc")
    settings = load_or_exit("prog", "ingestion")
    assert isinstance(settings, Settings)
    assert (settings.symbols, settings.worker_name, settings.batch_max_rows) == (("ETHBTC",), "", 500)
    assert settings.model_copy(update={"symbols": ("BTCUSDT",)}).symbols == ("BTCUSDT",)


def test_a_stage_loaded_alone_exits_2_on_its_own_bad_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """load_or_exit(prog, "history") with a bad BINANCE_ARCHIVE_URL exits 2, one line naming it."""
    monkeypatch.setenv("BINANCE_ARCHIVE_URL", "garbage")
    with pytest.raises(SystemExit) as info:
        load_or_exit("prog", "history")
    assert info.value.code == 2
    assert capsys.readouterr().err == "prog: invalid setting BINANCE_ARCHIVE_URL: expected http[s]://host[:port]\n"


SETTINGS_NAMES = {"settings", "s", "resolved", "self._s", "self.settings", "self._settings"}  # ingestion's


def settings_read(path: Path, function: str | None = None) -> set[str]:
    """The settings a module (or one of its functions) reads: ``<settings>.<setting>`` attributes."""
    tree: ast.AST = ast.parse(path.read_text())
    if function is not None:
        tree = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in Settings.model_fields
            and ast.unparse(node.value) in SETTINGS_NAMES}


def test_ingestion_reads_only_the_settings_it_validates() -> None:
    """Ingestion's modules annotate Settings but validate IngestionSettings (the rest is left at
    defaults), so none of them may read a setting outside it; nor the history import outside its own."""
    ingestion = {p: None for p in (ROOT / "ingestion").glob("*.py")}
    history: dict[Path, str | None] = {p: None for p in (ROOT / "ingestion" / "history").glob("*.py")}
    history |= {ROOT / "ingestion" / "rest.py": None}
    history |= {ROOT / "ingestion" / "producer_slot.py": "producer_config"}
    for stage, files in ((IngestionSettings, ingestion), (STAGES["history"], history)):
        for path, function in files.items():
            outside = settings_read(path, function) - set(stage.model_fields)
            assert not outside, f"{path.relative_to(ROOT)} reads {sorted(outside)}, not in {stage.__name__}"
