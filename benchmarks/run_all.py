"""Run every benchmark, one after the other, and print their output.

Usage: .venv/bin/python benchmarks/run_all.py [--only analysis,capture]

Each ``benchmarks/bench_*.py`` (in name order: analysis, bundle, capture, hostile_bundles,
operator, trace, transports, trigger_lead) runs as its own subprocess with its default arguments,
never two at once, so their timings and peak RSS figures do not disturb each other. bench_capture,
bench_operator, bench_transports and bench_trigger_lead need the testbed running.
Exits non-zero when any benchmark failed, after running the others.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated names to run (e.g. analysis,bundle)")
    args = parser.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = {n.strip().removeprefix("bench_").removesuffix(".py") for n in args.only.split(",")}
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
        if not scripts:
            parser.error(f"no benchmark named {args.only}")
    failed: list[str] = []
    for script in scripts:
        print(f"===== {script.name} =====", flush=True)
        start = time.perf_counter()
        # Output goes straight through, so long benchmarks show progress as they go.
        res = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        took = time.perf_counter() - start
        status = "ok" if res.returncode == 0 else f"FAILED (exit {res.returncode})"
        print(f"===== {script.name}: {status} in {took:.0f} s =====\n", flush=True)
        if res.returncode:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
