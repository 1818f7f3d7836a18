"""Rewrite README.md's settings table from binance_pipeline/common/settings.py (between its markers)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from binance_pipeline.common.settings import settings_table  # noqa: E402

START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"{START}\n{settings_table()}\n{END}"
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.replace("SETTINGS_TABLE", block)
    readme.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
