"""``python -m scripts.settings_table [--check]``: README.md's settings table, from the settings classes.

Rewrites the table between README's markers from ``binance_pipeline.common.settings.settings_table``;
``--check`` only compares, and exits 1 when README is out of date (tests/scripts/test_settings_table.py).
Run from the repository root, where ``binance_pipeline`` is importable (installed, or the current directory).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from binance_pipeline.common.settings import settings_table

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def rewritten(text: str) -> str:
    """``text`` (README) with the table between the markers (or at SETTINGS_TABLE) regenerated."""
    block = f"{START}\n{settings_table()}\n{END}"
    if START in text:
        return re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    return text.replace("SETTINGS_TABLE", block)


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    text = README.read_text()
    new = rewritten(text)
    if args == ["--check"]:
        if new != text:
            sys.stderr.write("README.md's settings table is out of date: python -m scripts.settings_table\n")
            return 1
        return 0
    if args:
        sys.stderr.write("usage: python -m scripts.settings_table [--check]\n")
        return 2
    README.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
