"""`make mutation` covers every pure module: which modules are pure is decided here from their imports.

Rule 1: a module is pure when every module its import closure reaches inside the project imports
nothing from outside ``ALLOWED`` (no sockets, files, threads, subprocesses, clocks, database or Kafka
clients) and calls no clock (``time()``, ``now()``, ...). Imports under ``if TYPE_CHECKING:`` run never
and do not count; imports inside functions do.
Rule 2: every pure module that holds code is in ``[tool.mutmut] only_mutate``, unless it is in
``NO_LOGIC`` (with its reason); ``only_mutate`` lists nothing else.
"""

from __future__ import annotations

import ast
import functools
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("binance_pipeline", "ingestion", "consumer", "db", "dashboard")
SKIPPED = ("binance_pipeline/testing",)  # test helpers shipped with the library: containers, fakes
# What a pure module may import from outside the project. Each is computation on values in memory.
ALLOWED = {
    "__future__", "typing", "dataclasses", "collections", "collections.abc", "re", "enum", "functools",
    "itertools", "math", "logging", "orjson", "pydantic", "pydantic.fields", "json", "decimal", "bisect",
    "array", "types", "fractions", "string", "operator", "textwrap", "abc", "copy", "urllib.parse",
    "datetime",  # dates as values; reading the clock (now(), today()) is caught by CLOCK_CALLS
    "random",  # backoff's jitter: no I/O, and the tests seed it or bound it
    "hashlib", "io", "zipfile",  # the history archive is hashed and unzipped from bytes in memory
    "csv",  # the query service renders CSV into an in-memory buffer
    "zlib",  # crc32 of a symbol's bytes (ingestion/shard.py): a checksum of a value in memory
    # Project modules that import a client library only for its error classes and codes, to classify
    # an error: nothing is connected, opened or sent. Their own logic is mutated; the walk stops here.
    "consumer.errors", "db.service.errors",  # psycopg2 errors by SQLSTATE (STYLE.md practice 5)
    "binance_pipeline.kafka.codes",  # a table of librdkafka's error codes: no client, no I/O (its Rule 3)
}  # fmt: skip
CLOCK_CALLS = {"time", "monotonic", "time_ns", "monotonic_ns", "perf_counter", "now", "utcnow", "today"}
# Pure modules that hold no logic to mutate: only dataclasses, TypedDicts, Protocols or constants.
NO_LOGIC: dict[str, str] = {
    "binance_pipeline/common/bounds.py": "constants only (numeric bounds and the pattern built from them)",
    "consumer/ports.py": "Protocols only: method signatures with no bodies",
    "db/service/sqltext.py": "SQL text constants only",
    "db/store/errors.py": "one exception class with no method",
    "ingestion/actions.py": "frozen dataclasses only: no method, no table",
}
# Modules mutated though Rule 1 finds them impure: their logic is a pure function of their inputs and
# their fast tests judge it, but the module also holds a lock, a sleep or a settings import. Each
# line names what makes it impure; the test checks that it still does (else it belongs to Rule 2).
MUTATED_THOUGH_IMPURE: dict[str, str] = {
    "consumer/backpressure.py": "its state table is guarded by a threading.Lock",
    "consumer/checkpoint.py": "runs the writer on a thread (threading, concurrent.futures)",
    "consumer/core.py": "imports topic_ids.changed_ids, whose module holds the Kafka admin client",
    "db/service/params.py": "imports SYMBOL_RE from settings (pydantic-settings); now() as a default",
    "ingestion/limits.py": "the budget's async wrapper sleeps (asyncio, time.monotonic)",
}


def _module_path(module: str) -> Path:
    path = ROOT / (module.replace(".", "/") + ".py")
    return path if path.exists() else ROOT / module.replace(".", "/") / "__init__.py"


def _is_project(module: str) -> bool:
    return module.split(".")[0] in PACKAGES and _module_path(module).exists()


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        children = list(ast.iter_child_nodes(node))
        if _type_checking_only(node):
            children = [c for c in children if c not in node.body]  # type: ignore[attr-defined]
        todo += children
    return out


@functools.cache
def imports_of(module: str) -> frozenset[str]:
    """The modules ``module`` imports, a ``from a import b`` counted as ``a.b`` when that is a module."""
    names: set[str] = set()
    for node in _nodes(ast.parse(_module_path(module).read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(
                f"{node.module}.{a.name}" for a in node.names if _is_project(f"{node.module}.{a.name}")
            )
    parts = module.split(".")
    names.update(".".join(parts[:i]) for i in range(1, len(parts)))  # the packages' __init__ run first
    return frozenset(names)


@functools.cache
def clock_calls(module: str) -> tuple[str, ...]:
    tree = ast.parse(_module_path(module).read_text("utf-8"))
    return tuple(
        f"{module}:{node.lineno}"
        for node in _nodes(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_CALLS
    )


def impurities(module: str) -> list[str]:
    """Why ``module`` is not pure (outside imports and clock calls in its closure); empty when it is."""
    seen: set[str] = set()
    todo, bad = [module], []
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in ALLOWED:
            continue
        bad += clock_calls(current)
        for name in imports_of(current):
            if _is_project(name):
                todo.append(name)
            elif name not in ALLOWED and name.split(".")[0] not in PACKAGES:
                bad.append(f"{current} imports {name}")
    return sorted(bad)


def project_modules() -> dict[str, str]:
    """Dotted name -> path relative to the root, for every module of ``PACKAGES`` but ``SKIPPED``."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(SKIPPED):
                continue
            out[rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")] = rel
    return out


def holds_code(rel: str) -> bool:
    """Anything besides a docstring and imports (an ``__init__`` that only documents its package does not)."""
    body = ast.parse((ROOT / rel).read_text("utf-8")).body
    return any(
        not isinstance(node, ast.Import | ast.ImportFrom)
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        for node in body
    )


def pure_modules() -> set[str]:
    """The paths of the pure modules that hold code."""
    return {rel for name, rel in project_modules().items() if holds_code(rel) and not impurities(name)}


def only_mutate() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    return list(config["tool"]["mutmut"]["only_mutate"])


def test_every_pure_module_is_mutated() -> None:
    """A pure module with code is in only_mutate, or in NO_LOGIC with its reason."""
    missing = pure_modules() - set(only_mutate()) - set(NO_LOGIC)
    assert sorted(missing) == []


def test_only_mutate_lists_only_pure_modules() -> None:
    """Every entry of only_mutate exists, is pure, and is listed once."""
    listed = only_mutate()
    assert len(listed) == len(set(listed))
    assert sorted(set(listed) - pure_modules() - set(MUTATED_THOUGH_IMPURE)) == []


def test_the_impure_exceptions_are_mutated_and_still_impure() -> None:
    """MUTATED_THOUGH_IMPURE names listed modules that Rule 1 still finds impure."""
    assert set(MUTATED_THOUGH_IMPURE) <= set(only_mutate())
    assert sorted(set(MUTATED_THOUGH_IMPURE) & pure_modules()) == []


def test_no_logic_lists_only_pure_modules_kept_out() -> None:
    """NO_LOGIC names pure modules, none of which is also mutated."""
    assert set(NO_LOGIC) <= pure_modules()
    assert set(NO_LOGIC).isdisjoint(only_mutate())


def test_the_check_can_fail() -> None:
    """I/O modules are found impure, through their own imports and through what they import."""
    assert "ingestion.publisher imports confluent_kafka" in impurities("ingestion.publisher")
    assert any("imports psycopg2" in reason for reason in impurities("db.store.migrate"))
    assert "binance_pipeline.common.clock imports time" in impurities("ingestion.effects")
    assert "db/store/migrate.py" not in pure_modules() and "ingestion/publisher.py" not in pure_modules()
    assert impurities("binance_pipeline.kafka.codes") == []  # its confluent_kafka import is allowed by name
    assert "ingestion/records.py" in pure_modules()


def test_imports_under_type_checking_do_not_count() -> None:
    """consumer.core names WorkerSettings for the type checker only: not an import of it."""
    assert "binance_pipeline.common.settings" not in imports_of("consumer.core")
    assert "consumer.batcher" in imports_of("consumer.core")
