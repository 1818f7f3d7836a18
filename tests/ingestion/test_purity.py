"""The decision modules of ingestion do no I/O and read no clock (checked on their source's imports)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE_ROOTS = ("ingestion.flow", "ingestion.sequencer", "ingestion.records", "ingestion.losses",
              "ingestion.watch", "ingestion.pace", "ingestion.replay", "ingestion.delivery")  # fmt: skip
# What a pure module may import from outside the project: no sockets, files, threads or clocks.
ALLOWED = {
    "__future__", "typing", "dataclasses", "collections", "collections.abc", "re", "enum",
    "functools", "itertools", "math", "logging", "orjson", "pydantic", "json", "decimal", "bisect", "array",
    "binance_pipeline.kafka.codes",  # a table of librdkafka's error codes: no client, no I/O (its Rule 3)
}  # fmt: skip
CLOCK_CALLS = {"time", "monotonic", "time_ns", "monotonic_ns", "perf_counter", "now", "utcnow", "today"}


def imports_of(module: str) -> tuple[set[str], ast.Module]:
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():  # a package
        path = ROOT / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names, tree


def _ours(module: str) -> bool:
    """A module of the pure core's packages: ``ingestion`` and ``binance_pipeline.common``."""
    return module.split(".")[0] == "ingestion" or module.startswith("binance_pipeline.common")


def pure_closure(roots: tuple[str, ...] = PURE_ROOTS) -> dict[str, set[str]]:
    """Every project module reachable from ``roots``, with its imports."""
    seen: dict[str, set[str]] = {}
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen[module], _ = imports_of(module)
        todo += [m for m in seen[module] if _ours(m)]
    return seen


def impure_imports(roots: tuple[str, ...]) -> dict[str, list[str]]:
    """Imports from outside the project and ``ALLOWED``, per module reachable from ``roots``."""
    bad = {
        module: sorted(m for m in names if not _ours(m) and m not in ALLOWED)
        for module, names in pure_closure(roots).items()
    }
    return {m: b for m, b in bad.items() if b}


def test_pure_modules_import_nothing_that_does_io() -> None:
    """flow, sequencer, records, losses, watch and what they import use only pure libraries."""
    assert set(PURE_ROOTS) <= set(pure_closure())
    assert impure_imports(PURE_ROOTS) == {}


def test_pure_modules_read_no_clock() -> None:
    """No call of time.time(), monotonic(), datetime.now() and the like in the pure closure."""
    calls = []
    for module in pure_closure():
        _, tree = imports_of(module)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in CLOCK_CALLS:
                    calls.append(f"{module}:{node.lineno}")
    assert calls == []


def test_the_check_can_fail() -> None:
    """The I/O shell is caught by the same check (so the check is not vacuous)."""
    bad = impure_imports(("ingestion.effects",))
    assert "time" in bad["binance_pipeline.common.clock"]
    assert "aiohttp" in bad["ingestion.backfill"] and "confluent_kafka" in bad["ingestion.publisher"]


def test_no_function_in_ingestion_is_over_40_lines() -> None:
    """Every function and method of ingestion/ fits on a screen (40 lines, docstring included)."""
    long = []
    for path in sorted((ROOT / "ingestion").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > 40:
                    long.append(f"{path.relative_to(ROOT)}:{node.name} ({size} lines)")
    assert long == []
