"""Mutation testing of the pure core: run mutmut, then print one line per module (``make mutation``).

What is mutated and which tests run is ``[tool.mutmut]`` in pyproject.toml: the pure modules,
against their fast tests only (``tests.fast_only`` refuses a selected test that needs a service).

Columns, per mutated module:
  killed     mutants a test failed on (a timeout counts as killed: the mutant changed behaviour);
  survived   mutants every test that reached them passed on;
  no tests   mutants in functions no selected test calls;
  score      killed / (killed + survived): how well the tests that reach a mutant judge it;
  reached    (killed + survived) / all: the share of mutants some fast test reaches.

Usage:
  python scripts/mutation_report.py [--reuse] [--table-only] [--check] [--survivors] [--jobs N]
  --reuse        keep mutants/ from the last run (mutmut re-tests only what changed)
  --table-only   do not run mutmut; print the table of the last run
  --check        exit 1 when a module is under the goals (score >= 90 %, reached >= 80 %)
  --survivors    list the surviving mutants by name (``mutmut show NAME`` prints the diff)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
GOAL_SCORE, GOAL_REACHED = 90.0, 80.0
KILLED_CODES = {1, 3, 36, 24, -24, 152, 255}  # test failure, pytest internal error, timeouts (mutmut.stats)
SURVIVED_CODES = {0}
NO_TESTS_CODES = {5, 33}


@dataclass
class ModuleResult:
    module: str
    killed: int = 0
    survived: int = 0
    no_tests: int = 0
    other: int = 0  # not checked, skipped, suspicious, segfault, interrupted
    survivors: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.killed + self.survived + self.no_tests + self.other

    @property
    def score(self) -> float:
        reached = self.killed + self.survived
        return 100.0 * self.killed / reached if reached else 0.0

    @property
    def reached(self) -> float:
        return 100.0 * (self.killed + self.survived) / self.total if self.total else 0.0


def run_mutmut(jobs: int, reuse: bool) -> None:
    """Run ``mutmut run`` from the project root; its progress goes to mutants/mutmut-run.log."""
    if not reuse and MUTANTS.exists():
        shutil.rmtree(MUTANTS)
    MUTANTS.mkdir(exist_ok=True)
    log = MUTANTS / "mutmut-run.log"
    mutmut = Path(sys.executable).with_name("mutmut")
    with log.open("w") as out:
        done = subprocess.run(
            [str(mutmut), "run", "--max-children", str(jobs)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        sys.exit(f"mutmut run failed (exit {done.returncode}); see {log}")


def load_results() -> list[ModuleResult]:
    """One result per mutated module, from mutmut's ``mutants/**/*.py.meta`` files."""
    results = []
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        r = ModuleResult(str(meta.relative_to(MUTANTS)).removesuffix(".meta"))
        for code in codes.values():
            if code in KILLED_CODES:
                r.killed += 1
            elif code in SURVIVED_CODES:
                r.survived += 1
            elif code in NO_TESTS_CODES:
                r.no_tests += 1
            else:
                r.other += 1
        r.survivors = tuple(sorted(name for name, code in codes.items() if code in SURVIVED_CODES))
        results.append(r)
    return results


def table(results: list[ModuleResult]) -> str:
    """A Markdown table, one row per module and a total row."""
    total = ModuleResult(
        "**all**",
        sum(r.killed for r in results),
        sum(r.survived for r in results),
        sum(r.no_tests for r in results),
        sum(r.other for r in results),
    )
    lines = [
        "| module | mutants | killed | survived | no tests | score (reached) | reached |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in [*results, total]:
        name = r.module if r is total else f"`{r.module}`"
        lines.append(
            f"| {name} | {r.total} | {r.killed} | {r.survived} | {r.no_tests} "
            f"| {r.score:.1f} % | {r.reached:.1f} % |"
        )
    if total.other:
        lines.append(
            f"\n{total.other} mutants were neither killed, survived nor untested (see mutmut results)."
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--survivors", action="store_true")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not args.table_only:
        run_mutmut(args.jobs, args.reuse)
    results = load_results()
    if not results:
        sys.exit("no mutation results: run without --table-only first")
    print(table(results))
    if args.survivors:
        print("\nsurvivors (mutmut show NAME):")
        print("\n".join(f"  {name}" for r in results for name in r.survivors))
    under = [r.module for r in results if r.score < GOAL_SCORE or r.reached < GOAL_REACHED]
    if args.check and under:
        print(
            f"\nunder the goals (score >= {GOAL_SCORE:.0f} %, reached >= {GOAL_REACHED:.0f} %): "
            + ", ".join(under)
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
