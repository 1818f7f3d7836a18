"""Run every benchmark in bench/ and gather their figures into bench/results/.

Each ``bench/bench_*.py`` (run as ``python -m bench.bench_<name>``) writes ``bench/results/<name>.json`` as
``{"name": ..., "figures": {...}, "goal": "...", "met": bool}``; this script runs them one at a
time (they would disturb each other's figures on a 2-core machine) and writes
``bench/results/summary.json`` and ``bench/results/summary.md``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    scripts = sorted(HERE.glob("bench_*.py"))
    if not scripts:
        print("no benchmarks in bench/")
        return 0
    failed: list[str] = []
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        started = time.monotonic()
        module = f"bench.{script.stem}"  # a module of the checkout, so imports need no path edits
        rc = subprocess.run([sys.executable, "-m", module], cwd=HERE.parent, check=False).returncode
        print(f"=== {script.name}: exit {rc} in {time.monotonic() - started:.1f} s", flush=True)
        if rc != 0:
            failed.append(script.name)
    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json")) if p.stem != "summary"]
    (RESULTS / "summary.json").write_text(json.dumps(results, indent=2))
    lines = ["| benchmark | figures | goal | met |", "|---|---|---|---|"]
    for r in results:
        figs = ", ".join(f"{k}={_fmt(v)}" for k, v in r.get("figures", {}).items())
        lines.append(f"| {r.get('name')} | {figs} | {r.get('goal', '')} | {r.get('met', '')} |")
    (RESULTS / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    if failed:
        print(f"\nbenchmarks that failed to run: {', '.join(failed)}")
    return 1 if failed else 0


def _fmt(value: object) -> str:
    return f"{value:,.3g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    raise SystemExit(main())
