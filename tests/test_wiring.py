"""No executor calls another back through an attribute it set: the stages' parts are wired by
their shells' explicit calls (``ingestion.effects``, ``consumer.loop``), read in the source."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ingestion", "consumer", "db", "binance_pipeline", "binance_launcher", "dashboard")
CALLBACK_NAME = re.compile(r"^on_|_(listener|callback|cb|hook)$")


def callback_assignments(source: str, where: str = "<src>") -> list[str]:
    """``other.attr = <a function>``: a lambda, a function or method of this module, or an
    attribute named like a callback; ``self``/``cls`` attributes are the object's own business."""
    tree = ast.parse(source)
    functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        value = node.value
        for target in targets:
            if not isinstance(target, ast.Attribute):
                continue
            if isinstance(target.value, ast.Name) and target.value.id in ("self", "cls"):
                continue
            named = value.attr if isinstance(value, ast.Attribute) else getattr(value, "id", None)
            if isinstance(value, ast.Lambda) or named in functions or CALLBACK_NAME.search(target.attr):
                found.append(f"{where}:{node.lineno}: {ast.unparse(target)} = {ast.unparse(value)}")
    return found


def test_no_module_assigns_a_callback_to_another_object() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found += callback_assignments(path.read_text("utf-8"), str(path.relative_to(ROOT)))
    assert found == []


def test_the_check_can_fail() -> None:
    """The wiring this round removed is caught, in each of its forms."""
    source = '''
def pick_up(publisher, book, effects, backfiller, metrics):
    def on_lost(*args):
        book.lost(*args)
    publisher.on_lost = on_lost
    publisher.gap_listener = book
    backfiller.on_verified = effects.jump_checked
    metrics.queue_depth = lambda: 0
    self.fine = on_lost
    out.count = 3

class Effects:
    def jump_checked(self): ...
'''
    assert [line.split(": ", 1)[1] for line in callback_assignments(source)] == [
        "publisher.on_lost = on_lost",
        "publisher.gap_listener = book",
        "backfiller.on_verified = effects.jump_checked",
        "metrics.queue_depth = lambda: 0",
    ]
