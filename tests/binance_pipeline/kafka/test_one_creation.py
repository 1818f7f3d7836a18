"""Rule 1 of kafka/topics.py: the product packages call ``create_topics`` in exactly one place."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PRODUCT = ("binance_pipeline", "binance_launcher", "dashboard", "db", "ingestion", "consumer")


def create_topics_calls() -> list[str]:
    """``path:line`` of every ``<anything>.create_topics(...)`` call in the product packages."""
    found = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "create_topics"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_only_the_kit_creates_topics() -> None:
    """One AdminClient.create_topics call, in binance_pipeline/kafka/topics.py (TopicCreation)."""
    calls = create_topics_calls()
    assert len(calls) == 1, calls
    assert calls[0].startswith("binance_pipeline/kafka/topics.py:"), calls
