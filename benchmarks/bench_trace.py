"""Benchmark the execution-trace reader (prints numbers; not a test). Two modes.

Against ``go tool trace -pprof`` (the default)::

    .venv/bin/python benchmarks/bench_trace.py [--seconds 5] [--rounds 3] [--trace FILE]

Without ``--trace``, builds goapp and takes a trace of ``--seconds`` under the load of
tests/fixtures/goapp-trace (lock contention, a CPU burner, keep-alive clients, a CPU profile
alongside). Then, on the same file, best of ``--rounds``: debugcap reading it (every event,
the summary and the records of all four profiles) and writing the sched profile, against
``go tool trace -pprof=sched`` (a whole process: start-up, parse, profile). Prints MB, events,
seconds, MB/s and the ratio ours / go's.

The summary a report reads (``traces.bundle_summary``), against an older commit (``--base``)::

    git worktree add /tmp/trace-base <commit>
    .venv/bin/python benchmarks/bench_trace.py --base /tmp/trace-base [--new TREE] [--rounds 10] [--repeats 3] [FILE...]

For each trace (default: tests/fixtures/goapp-trace/trace.out, a 1 s goapp trace of a debug-full
capture), a fresh interpreter per side imports debugcap from that tree and reads the summary as
that tree's ``bundle_summary`` does, ``--rounds`` times, ``--repeats`` times (the two sides
alternating, as the machine is shared): CPU ms per read (min/median/max), the ratio new / base
of the medians, and whether the two summaries are the same. ``--new``: another tree than this
one as the new side (a copy with modules compiled by mypyc, say).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOAPP_TRACE = ROOT / "tests" / "fixtures" / "goapp-trace" / "trace.out"


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


def against_go(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from debugcap.analysis import traces

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


def child(tree: str, path: str, rounds: int) -> int:
    """One side: the summary of ``path`` as ``tree``'s bundle_summary reads it, CPU ms per read."""
    sys.path.insert(0, tree)
    from debugcap.analysis import traces

    data = Path(path).read_bytes()
    # bundle_summary's own call: trees from before the summary-only read have no ``profiles``.
    kw = {"profiles": False} if "profiles" in inspect.signature(traces.analyse).parameters else {}
    times, summary = [], None
    for _ in range(rounds):
        start = time.process_time()
        summary = traces.analyse(data, "trace.out", **kw).summary
        times.append((time.process_time() - start) * 1e3)
    assert summary is not None
    print(json.dumps({"ms": times, "summary": summary.as_dict()}))
    return 0


def _side(tree: Path, path: Path, rounds: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", str(tree), str(path), str(rounds)],
                         check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def against_base(args: argparse.Namespace) -> int:
    base, new = args.base.resolve(), (args.new or ROOT).resolve()
    for tree in (base, new):
        if not (tree / "debugcap" / "analysis" / "traces.py").is_file():
            raise SystemExit(f"{tree}: not a debugcap tree; make one with `git worktree add {tree} <commit>`")
    print(f"{'trace':<28} {'kB':>6} {'events':>7}  {'base ms min/med/max':>21}  {'new ms min/med/max':>21}  "
          f"{'new/base':>8}  same")
    ratios = []
    for path in args.files or [GOAPP_TRACE]:
        ms: dict[str, list[float]] = {"base": [], "new": []}
        sums: dict[str, Any] = {}
        for _ in range(args.repeats):
            for side, tree in (("base", base), ("new", new)):
                res = _side(tree, path, args.rounds)
                ms[side] += res["ms"]
                sums[side] = res["summary"]
        b, n = statistics.median(ms["base"]), statistics.median(ms["new"])
        ratios.append(n / b)
        same = "yes" if sums["base"] == sums["new"] else "NO"
        fmt = "{:6.1f}/{:6.1f}/{:6.1f}"
        print(f"{path.name[-28:]:<28} {path.stat().st_size / 1e3:6.0f} {sums['new']['events']:7d}  "
              f"{fmt.format(min(ms['base']), b, max(ms['base']))}  {fmt.format(min(ms['new']), n, max(ms['new']))}  "
              f"{n / b:8.2f}  {same}")
    if len(ratios) > 1:
        print(f"new/base over {len(ratios)} traces: median {statistics.median(ratios):.2f}, "
              f"min {min(ratios):.2f}, max {max(ratios):.2f}")
    return 0


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        return child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=None, help="reads per measurement (3 against go, 10 against base)")
    ap.add_argument("--trace", type=Path, help="benchmark this trace instead of taking one")
    ap.add_argument("--base", type=Path, help="compare the summary with this tree's (a git worktree)")
    ap.add_argument("--new", type=Path, help="with --base: the new side's tree (default: this one)")
    ap.add_argument("--repeats", type=int, default=3, help="with --base: interpreters per side and trace")
    ap.add_argument("files", nargs="*", type=Path, help="with --base: the traces (default: goapp's fixture)")
    args = ap.parse_args()
    if args.base is None:
        args.rounds = args.rounds or 3
        return against_go(args)
    args.rounds = args.rounds or 10
    return against_base(args)


if __name__ == "__main__":
    sys.exit(main())
