"""The import layers of pyproject.toml hold, and an import that runs back up makes lint-imports fail."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("binance_pipeline", "binance_launcher", "dashboard", "db", "ingestion", "consumer",
            "exchange_sim")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), str(tree / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=300)


def copy_tree(dest: Path) -> Path:
    """The source packages and pyproject.toml, nothing else."""
    for name in PACKAGES:
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.sql"))
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def inject(module: Path, line: str) -> None:
    module.write_text(module.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tree(tmp_path_factory.mktemp("layers"))


def test_the_layers_hold() -> None:
    """lint-imports (as make lint runs it) keeps every contract of the checkout."""
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("db/service/queries.py", "import db.repair", "an import never runs back up"),
    ("db/service/queries.py", "import ingestion.publisher", "it never imports the stages"),
    ("binance_pipeline/common/clock.py", "import consumer.worker", "an import never runs back up"),
    ("ingestion/records.py", "import consumer.decode", "an import never runs back up"),
    ("db/store/rollups.py", "import db.service.queries", "an import never runs back up"),
    ("consumer/batcher.py", "import exchange_sim", "no product package imports it"),
    ("ingestion/records.py", "import binance_pipeline.testing.events", "no product package or the simulator"),
])
def test_an_import_that_runs_back_up_fails(tree: Path, module: str, line: str, contract: str) -> None:
    """A forbidden import, injected into a copy of the tree, breaks its contract and fails the run."""
    target = tree / module
    before = target.read_text(encoding="utf-8")
    inject(target, line)
    try:
        done = lint_imports(tree)
    finally:
        target.write_text(before, encoding="utf-8")
    assert done.returncode != 0
    report = " ".join(done.stdout.split())
    assert re.search(re.escape(contract) + r"(?:(?!KEPT).)*BROKEN", report), done.stdout
