"""README's `python -m db.query` examples on the hand-built tape print exactly what the command prints.

The examples are the console blocks of README's "Querying the tape" section, up to its first
sub-heading (later sections show real runs on live data, not the tape).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.db.service.tape_data import tape_schema

ROOT = Path(__file__).resolve().parents[3]
BLOCK = re.compile(r"```console\n\$ python -m db\.query (?P<args>[^\n]*)\n(?P<out>.*?)```", re.S)

def tape_section(readme: str) -> str:
    body = readme.split("\n## Querying the tape\n", 1)[1]
    return re.split(r"\n#{2,3} ", body, maxsplit=1)[0]


EXAMPLES = [(m["args"], m["out"]) for m in BLOCK.finditer(tape_section((ROOT / "README.md").read_text()))]


@pytest.fixture(scope="module")
def tape(database_url: str) -> Iterator[str]:
    with tape_schema(database_url) as url:
        yield url


def test_readme_has_the_latest_and_gaps_examples() -> None:
    """README shows at least `latest` and `gaps` (the ones this module must keep honest)."""
    assert {args.split()[0] for args, _ in EXAMPLES} >= {"latest", "gaps"}


@pytest.mark.parametrize(("args", "expected"), EXAMPLES, ids=[a.split()[0] for a, _ in EXAMPLES])
def test_readme_example_matches_the_command(tape: str, args: str, expected: str) -> None:
    """Each README console block is the command's real output on the tape of tape_data.py, line for line."""
    proc = subprocess.run([sys.executable, "-m", "db.query", *shlex.split(args)], cwd=ROOT,
                          env={**os.environ, "DATABASE_URL": tape}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip("\n").splitlines() == expected.rstrip("\n").splitlines()
