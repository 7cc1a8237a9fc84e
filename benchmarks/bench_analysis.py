"""Benchmark the analysis core against ``go tool pprof`` (prints numbers; not a test).

    .venv/bin/python benchmarks/bench_analysis.py

1. A deterministic ~5 MB gzip CPU profile (50k samples, 40k locations, 12k
   functions, the shape of shared/research/pprof.md §6): parse+top in Python
   vs ``go tool pprof -top`` on the same file, in the same run.
2. ``goroutines`` on a synthetic 500k-goroutine debug=2 dump, in a child
   process so its peak RSS (getrusage) is its own.
Goals: no slower than pprof; the dump under 5 s and 500 MB.
"""

from __future__ import annotations

import gzip
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from debugcap.analysis import goroutines, pprof  # noqa: E402
from debugcap.formats import pprof as pprof_format  # noqa: E402
from debugcap.formats import pprof_proto  # noqa: E402

SAMPLES, LOCATIONS, FUNCTIONS, DEPTH = 50_000, 40_000, 12_000, 37
GOROUTINES = 500_000


def make_cpu_profile(path: Path) -> None:
    rnd = random.Random(42)
    p = pprof_proto.Profile()
    strings = ["", "samples", "count", "cpu", "nanoseconds", "/app/server"]
    p.sample_type.add(type=1, unit=2)
    p.sample_type.add(type=3, unit=4)
    p.period_type.type, p.period_type.unit = 3, 4
    p.period = 10_000_000
    p.duration_nanos = 30 * 10**9
    p.mapping.add(id=1, filename=5, has_functions=True)
    for fid in range(1, FUNCTIONS + 1):
        strings.append(f"github.com/example/svc/pkg{fid % 97}.(*Type{fid % 13}).Method{fid}")
        strings.append(f"/src/pkg{fid % 97}/file{fid % 31}.go")
        p.function.add(id=fid, name=len(strings) - 2, system_name=len(strings) - 2,
                       filename=len(strings) - 1, start_line=fid % 500)
    for lid in range(1, LOCATIONS + 1):
        loc = p.location.add(id=lid, mapping_id=1, address=0x400000 + lid * 16)
        for _ in range(2 if lid % 10 == 0 else 1):  # every tenth location has an inlined frame
            loc.line.add(function_id=rnd.randint(1, FUNCTIONS), line=rnd.randint(1, 900))
    for _ in range(SAMPLES):
        n = rnd.randint(DEPTH - 10, DEPTH + 10)
        p.sample.add(location_id=[rnd.randint(1, LOCATIONS) for _ in range(n)],
                     value=[c := rnd.randint(1, 5), c * 10_000_000])
    p.string_table.extend(strings)
    path.write_bytes(gzip.compress(p.SerializeToString(), compresslevel=6))


def write_dump(path: Path) -> None:
    kinds = [
        ("chan receive, 17 minutes", "main.leakWorker(0xc000123456)", "/app/leak.go:12 +0x1d",
         "main.spawnWorkers"),
        ("IO wait", "internal/poll.(*pollDesc).waitRead(...)",
         "/usr/local/go/src/internal/poll/fd_poll_runtime.go:89", "net/http.(*Server).Serve"),
        ("select", "main.(*Pool).run(0xc0000b2000)", "/app/pool.go:88 +0x145", "main.NewPool"),
        ("sync.Mutex.Lock", "sync.(*Mutex).Lock(...)", "/usr/local/go/src/sync/mutex.go:92", "main.handle"),
    ]
    with path.open("wb") as fh:
        for gid in range(1, GOROUTINES + 1):
            state, func, loc, creator = kinds[gid % 7 % 4]
            fh.write(
                f"goroutine {gid} [{state}]:\n{func}\n\t{loc}\nmain.caller{gid % 5}(0xc000010000)\n"
                f"\t/app/main.go:{gid % 300} +0x25\ncreated by {creator} in goroutine 1\n"
                f"\t/app/main.go:40 +0x3f\n\n".encode())


def bench_goroutines_child(path: str) -> None:
    start = time.perf_counter()
    dump = goroutines.load_dump(path)
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{elapsed:.3f} {peak_mb:.1f} {dump['total']} {len(dump['groups'])}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # The dump goes first: on Linux a child's ru_maxrss starts from the size of
        # the parent it was forked from, so the parent must still be small.
        dump_path = Path(tmp) / "goroutine-debug2.txt"
        t = time.perf_counter()
        write_dump(dump_path)
        print(f"generated {dump_path.stat().st_size / 1e6:.1f} MB dump of {GOROUTINES} goroutines "
              f"in {time.perf_counter() - t:.1f}s")
        out = subprocess.run([sys.executable, __file__, "--goroutines-child", str(dump_path)],
                             check=True, capture_output=True, text=True).stdout.split()
        elapsed, peak, total, groups = float(out[0]), float(out[1]), int(out[2]), int(out[3])
        print(f"goroutines: {elapsed:.3f}s, peak RSS {peak:.1f} MB, {total} goroutines in {groups} groups")
        prof_path = Path(tmp) / "cpu.pb.gz"
        t = time.perf_counter()
        make_cpu_profile(prof_path)
        print(f"generated {prof_path.stat().st_size / 1e6:.2f} MB gzip CPU profile "
              f"({SAMPLES} samples, {LOCATIONS} locations, {FUNCTIONS} functions) "
              f"in {time.perf_counter() - t:.1f}s")

        best_py = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            prof = pprof_format.load(prof_path)
            rep = pprof.top(prof, None, pprof.PPROF_NODE_FRACTION)
            best_py = min(best_py, time.perf_counter() - t)
        best_go = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=1000000", str(prof_path)],
                           check=True, capture_output=True)
            best_go = min(best_go, time.perf_counter() - t)
        print(f"parse+top (python): {best_py:.3f}s  ({len(rep['rows'])} rows)")
        print(f"go tool pprof -top: {best_go:.3f}s")
        print(f"ratio python/go:    {best_py / best_go:.2f}")

        print(f"goals: dump < 5 s: {'ok' if elapsed < 5 else 'MISSED'}; "
              f"< 500 MB: {'ok' if peak < 500 else 'MISSED'}; "
              f"not slower than pprof: {'ok' if best_py <= best_go else 'MISSED'}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--goroutines-child":
        bench_goroutines_child(sys.argv[2])
    else:
        main()
