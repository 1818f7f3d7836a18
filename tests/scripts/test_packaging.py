"""`pip install .` into a fresh venv: working console scripts and no generic top-level package.

The project is copied out of the checkout first (its tracked files only), so the wheel is built from
what git holds, the checkout gets no build/ directory, and nothing imports from the checkout by accident
(the scripts run in an empty directory with PYTHONPATH unset).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {
    "bp-ingest": "ingestion.ws_consumer",
    "bp-worker": "consumer.worker",
    "bp-migrate": "db.migrate",
    "bp-query": "db.query",
    "bp-api": "db.api",
    "bp-history": "ingestion.history",
    "bp-sim": "exchange_sim",
    "bp-launch": "binance_launcher",
    "bp-dashboard": "dashboard",
}
# The wheel's top-level names: the design's stage packages, the simulator, the dashboard, the distinctive
# package holding the shared code (the bottom layer) and the launcher's own (the top layer, issue #25).
TOP_LEVEL = {"binance_pipeline", "binance_launcher", "ingestion", "consumer", "db", "exchange_sim",
             "dashboard"}

pytestmark = pytest.mark.slow


def tracked_copy(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not name.startswith(("tests/", "bench/", "docs/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project pip-installed from a copy of the checkout; its bin directory."""
    base = tmp_path_factory.mktemp("pkg")
    source = tracked_copy(base / "src")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         str(source)],
        check=True, timeout=900,
    )
    return venv / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def test_pip_show_lists_no_generic_top_level_package(installed: Path) -> None:
    out = subprocess.run(
        [str(installed / "python"), "-m", "pip", "show", "-f", "binance-pipeline"],
        capture_output=True, text=True, check=True,
    ).stdout
    files = [line.strip() for line in out.split("Files:", 1)[1].splitlines() if line.strip()]
    tops = {f.split("/")[0] for f in files if not f.startswith("..") and ".dist-info" not in f}
    assert tops == TOP_LEVEL
    assert not any(f.startswith(("common/", "launcher/")) for f in files)
    assert "db/store/migrations/001_schema.sql" in files


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_runs_its_entry_point(installed: Path, tmp_path: Path, script: str) -> None:
    """Each script exists and answers --help with its usage, from an empty directory."""
    done = subprocess.run(
        [str(installed / script), "--help"], cwd=tmp_path, env=clean_env(),
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_installed_scripts_migrate_and_query_a_database(installed: Path, tmp_path: Path, db_url: str) -> None:
    """bp-migrate then bp-query against a real database: the wheel carries its migrations and works."""
    env = clean_env(DATABASE_URL=db_url)
    migrated = subprocess.run(
        [str(installed / "bp-migrate")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO trades (time, symbol, type, id, price, qty, buyer_maker, received_at)"
            " VALUES ('2026-11-30 12:00:00.123456+00', 'BTCUSDT', 'trade', 7, 97123.45000000, 0.00120000,"
            " true, '2026-11-30 12:00:00.2+00')"
        )
    latest = subprocess.run(
        [str(installed / "bp-query"), "latest", "BTCUSDT"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert latest.returncode == 0, latest.stderr
    assert "97123.45000000" in latest.stdout
    assert "0.00120000" in latest.stdout
