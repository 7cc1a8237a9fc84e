"""Benchmark the execution-trace reader against ``go tool trace -pprof`` (prints numbers; not a test).

    .venv/bin/python benchmarks/bench_trace.py [--seconds 5] [--rounds 3] [--trace FILE]

Without ``--trace``, builds goapp and takes a trace of ``--seconds`` under the load of
tests/fixtures/goapp-trace (lock contention, a CPU burner, keep-alive clients, a CPU profile
alongside). Then, on the same file, best of ``--rounds``: debugcap reading it (every event,
the summary and the records of all four profiles) and writing the sched profile, against
``go tool trace -pprof=sched`` (a whole process: start-up, parse, profile). Prints MB, events,
seconds, MB/s and the ratio ours / go's.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from debugcap.analysis import traces  # noqa: E402


def _fixture_tools() -> object:
    """tests/fixtures/goapp-trace/regenerate.py: goapp's build, run and loaded capture."""
    path = ROOT / "tests" / "fixtures" / "goapp-trace" / "regenerate.py"
    spec = importlib.util.spec_from_file_location("goapp_trace_regenerate", path)
    assert spec is not None and spec.loader is not None
    mod = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def take_trace(seconds: int, out: Path) -> None:
    tools: object = _fixture_tools()
    work = out.parent
    binary = tools.build(work)  # type: ignore[attr-defined]
    with tools.running(binary, work) as base:  # type: ignore[attr-defined]
        time.sleep(2)
        out.write_bytes(tools.capture(base, seconds=seconds))  # type: ignore[attr-defined]


def best(fn: object, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trace", type=Path, help="benchmark this trace instead of taking one")
    args = ap.parse_args()
    go = shutil.which("go") or "/usr/local/go/bin/go"
    with tempfile.TemporaryDirectory() as tmp:
        path = args.trace or Path(tmp) / "trace.out"
        if args.trace is None:
            take_trace(args.seconds, path)
        data = path.read_bytes()
        found = traces.analyse(data, str(path))
        ours = best(lambda: traces.analyse(data, str(path)).profile_bytes("sched"), args.rounds)
        theirs = best(lambda: subprocess.run([go, "tool", "trace", "-pprof=sched", str(path)], check=True,
                                             stdout=subprocess.DEVNULL), args.rounds)
    mb = len(data) / 1e6
    s = found.summary
    print(f"trace: {mb:.2f} MB, {s.events} events, {s.generations} generations, {s.duration_ns / 1e9:.1f} s traced")
    print(f"debugcap (read, summary, 4 profiles, sched written): {ours:.2f} s ({mb / ours:.2f} MB/s, "
          f"{ours / s.events * 1e6:.1f} us/event)")
    print(f"go tool trace -pprof=sched: {theirs:.2f} s ({mb / theirs:.2f} MB/s)")
    print(f"ratio debugcap / go tool trace: {ours / theirs:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
