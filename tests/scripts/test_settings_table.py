"""README's settings table is the one generated from the settings classes (scripts/settings_table.py)."""

from __future__ import annotations

import subprocess
import sys

from binance_pipeline.common.settings import settings_table
from scripts.settings_table import README, START, rewritten


def test_readme_holds_the_generated_table() -> None:
    """Regenerating the table changes nothing in README (run `make settings-table` when this fails)."""
    text = README.read_text()
    assert f"{START}\n{settings_table()}\n" in text
    assert rewritten(text) == text


def test_the_script_runs_as_a_module_and_checks() -> None:
    """`python -m scripts.settings_table --check` runs (no sys.path edit) and exits 0 on a current README."""
    proc = subprocess.run([sys.executable, "-m", "scripts.settings_table", "--check"], cwd=README.parent,
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_a_stale_table_is_rewritten() -> None:
    """A README whose table lacks a row gets it back; the placeholder of a new README becomes the table."""
    stale = README.read_text().replace("| `WORKER_NAME` |", "| `WORKER_NAMES` |")
    assert rewritten(stale) == README.read_text()
    assert settings_table() in rewritten("# x\n\nSETTINGS_TABLE\n")
