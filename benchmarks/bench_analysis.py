"""Benchmark the analysis core against ``go tool pprof`` (prints numbers; not a test).

    .venv/bin/python benchmarks/bench_analysis.py

1. A deterministic ~5 MB gzip CPU profile (50k samples, 40k locations, 12k
   functions, the shape of shared/research/pprof.md §6): parse+top in Python
   vs ``go tool pprof -top`` on the same file, in the same run.
2. ``goroutines`` on a synthetic 500k-goroutine debug=2 dump, in a child
   process so its peak RSS (getrusage) is its own.
Goals: no slower than pprof; the dump under 5 s and 500 MB.

    .venv/bin/python benchmarks/bench_analysis.py --micro pod-yaml [--root /tmp/before] [--repeat N]

3. ``--micro pod-yaml``: CPU per read of a testbed pod's YAML (what the collector writes, 2.4 KB)
   by ``sections.container``, this tree's against ``--root``'s (a ``git archive`` of an earlier
   commit, unpacked), child processes alternately: min/median/max and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# --micro's children import the debugcap of the tree they measure (DEBUGCAP_BENCH_ROOT) first.
sys.path.insert(0, os.environ.get("DEBUGCAP_BENCH_ROOT") or str(Path(__file__).resolve().parents[1]))

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


def _testbed_pod() -> dict[str, object]:
    """A debug-full sweep's pod as the pod-yaml collector writes it (managedFields dropped)."""
    when = "2026-12-05T09:55:43Z"
    conditions = [{"lastProbeTime": None, "lastTransitionTime": when, "observedGeneration": 1, "status": "True",
                   "type": kind} for kind in ("PodReadyToStartContainers", "Initialized", "Ready",
                                               "ContainersReady", "PodScheduled")]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"creationTimestamp": when, "generation": 1, "labels": {"app": "bench", "part": "0"},
                     "name": "bench-01", "namespace": "bench-sweep-7bcc7a", "resourceVersion": "2818",
                     "uid": "2f8bd940-84f0-42e3-8522-08167bc6e5c1"},
        "spec": {"automountServiceAccountToken": False,
                 "containers": [{"image": "debugcap.test/goapp:dev", "imagePullPolicy": "Never", "name": "app",
                                 "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
                                 "terminationMessagePath": "/dev/termination-log",
                                 "terminationMessagePolicy": "File"}],
                 "dnsPolicy": "ClusterFirst", "enableServiceLinks": True, "nodeName": "debugcap-node",
                 "preemptionPolicy": "PreemptLowerPriority", "priority": 0, "restartPolicy": "Always",
                 "schedulerName": "default-scheduler", "securityContext": {}, "serviceAccount": "default",
                 "serviceAccountName": "default", "terminationGracePeriodSeconds": 0,
                 "tolerations": [{"effect": "NoExecute", "key": f"node.kubernetes.io/{key}", "operator": "Exists",
                                  "tolerationSeconds": 300} for key in ("not-ready", "unreachable")]},
        "status": {"conditions": conditions,
                   "containerStatuses": [{"containerID": "containerd://" + "ab" * 32,
                                          "image": "debugcap.test/goapp:dev", "imageID": "sha256:" + "44" * 32,
                                          "lastState": {}, "name": "app", "ready": True, "resources": {},
                                          "restartCount": 0, "started": True,
                                          "state": {"running": {"startedAt": "2026-12-05T09:55:45Z"}}}],
                   "hostIP": "10.250.0.1", "hostIPs": [{"ip": "10.250.0.1"}], "observedGeneration": 1,
                   "phase": "Running", "podIP": "10.251.0.2", "podIPs": [{"ip": "10.251.0.2"}],
                   "qosClass": "Burstable", "startTime": when},
    }


def micro_pod_yaml_child(iterations: int) -> None:
    from datetime import UTC, datetime

    import yaml

    from debugcap.analysis import sections
    from debugcap.analysis.bundle_reading import BundleReader, Reading
    from debugcap.bundle import manifest

    when = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        stem = Path(tmp) / "bench-sweep_bench-01_20261205T100000Z"
        (stem / "k8s").mkdir(parents=True)
        (stem / "k8s/pod.yaml").write_text(yaml.safe_dump(_testbed_pod(), sort_keys=False))
        fields = manifest.ManifestFields(
            capture=manifest.CaptureInfo(name="c1", template="debug-full"),
            target=manifest.TargetInfo(namespace="bench-sweep", pod="bench-01", container="app"),
            started_at=when, finished_at=when)
        (stem / "manifest.json").write_text(manifest.Manifest.build(fields, files={}).to_json())
        reading = Reading(BundleReader(stem))
        print(f"debugcap from {Path(sections.__file__).parents[2]}", file=sys.stderr)
        cpu = []
        for i in range(iterations + 5):  # five warm-ups
            start = time.process_time()
            container = sections.container(reading, "app", when)
            if i >= 5:
                cpu.append(time.process_time() - start)
        assert container is not None and container.cpu_limit == 0.5, container
    print(json.dumps(cpu))


def micro(root: Path | None, repeat: int, iterations: int) -> None:
    trees = {"before": root, "after": None} if root else {"after": None}
    cpu: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(repeat):
        for name, tree in trees.items():  # alternately, so a busy moment of the machine hits both
            env = {**os.environ, "DEBUGCAP_BENCH_ROOT": str(tree or "")}
            out = subprocess.run([sys.executable, __file__, "--micro-child", str(iterations)],
                                 check=True, capture_output=True, text=True, env=env).stdout
            cpu[name] += json.loads(out.strip().splitlines()[-1])
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"micro pod-yaml: CPU ms per sections.container ({repeat} x {iterations} reads per tree)")
    for name, values in cpu.items():
        print(f"  {name:<7} min {min(values) * 1e3:7.3f}  median {medians[name] * 1e3:7.3f}  "
              f"max {max(values) * 1e3:7.3f}")
    if root:
        print(f"  after / before (medians): {medians['after'] / medians['before']:.3f}")


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
    elif len(sys.argv) == 3 and sys.argv[1] == "--micro-child":
        micro_pod_yaml_child(int(sys.argv[2]))
    elif len(sys.argv) > 1:
        parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--micro", choices=["pod-yaml"], required=True)
        parser.add_argument("--root", type=Path, help="the debugcap package of another tree, measured as 'before'")
        parser.add_argument("--repeat", type=int, default=3, help="child processes per tree")
        parser.add_argument("--iterations", type=int, default=200, help="reads per child process")
        args = parser.parse_args()
        micro(args.root, args.repeat, args.iterations)
    else:
        main()
