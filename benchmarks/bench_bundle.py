"""Bundle writing: wall time, throughput and peak RSS against `tar czf` + `sha256sum`.

Usage: .venv/bin/python benchmarks/bench_bundle.py [--sizes 10,100,1000] [--dir /tmp/debugcap-bench]
                                                   [--repeat N]
       .venv/bin/python benchmarks/bench_bundle.py --micro pod-bundle|profiles|s3-put --root /tmp/before
                                                   [--repeat N] [--iterations K]

--micro: one pod's share of a sweep, this tree against --root's (a `git archive` of an earlier
commit, unpacked), child processes alternately: min/median/max per bundle and the ratio of the
medians. pod-bundle and profiles print CPU per bundle written; s3-put puts a written bundle
into DEBUGCAP_S3_* (the testbed's MinIO: eval "$(.venv/bin/python -m testbed env)") under a
key prefix of its own, deleted after, and prints wall time and MinIO requests per put.

For each size (MB) it generates log-like text evidence (one big container log of realistic Go
service lines, from benchmarks/bench_redaction_speed.py, plus a few small files), then writes a
bundle with BundleWriter in a fresh process (redaction on with ISA-L's deflate when installed,
redaction on with zlib's, redaction off) and runs the baseline `tar czf` + `sha256sum` of the
same files (and of the archive) in another, alternately, ``--repeat`` times: the median wall
time of each is printed, with its ratio to the baseline's and the bundle's size against the
baseline's archive. Peak RSS is each process's VmHWM (for the baseline: the largest ru_maxrss of
sh, tar, gzip, sha256sum). The goals: at least 2x faster than the baseline with redaction on, and a
peak RSS that stays flat (under 150 MB) whatever the size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

MB = 1000 * 1000


def generate(directory: Path, size_mb: int, vocabulary: float = 0.05) -> None:
    """Log-like text: realistic Go service lines (JSON, klog, logfmt, the secret vocabulary at the
    rate a service prints it, a few secrets); compresses about 4.5:1, like real logs."""
    if (directory / "done").exists():
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_redaction_speed import generate as log_text

    shutil.rmtree(directory, ignore_errors=True)
    (directory / "logs").mkdir(parents=True)
    (directory / "proc").mkdir()
    # 32 MB of distinct lines, repeated: far beyond deflate's 32 KiB window, so it compresses as
    # if all of it were distinct.
    block = log_text(min(size_mb, 32) * MB, vocabulary=vocabulary)
    remaining = size_mb * MB
    with (directory / "logs" / "app.log").open("wb") as out:
        while remaining > 0:
            piece = block[:remaining]
            out.write(piece)
            remaining -= len(piece)
    (directory / "proc" / "ps.txt").write_bytes(b"root 1 0.0 /app --serve\n" * 50)
    (directory / "proc" / "status.txt").write_bytes(b"VmRSS:\t123456 kB\n" * 20)
    (directory / "done").write_text("")


def evidence_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "done")


def child_ours(directory: Path, out: Path, redact: bool, isal: bool = True) -> None:
    from datetime import UTC, datetime

    from debugcap.bundle import layout, manifest, writer

    if not isal:
        from debugcap.bundle import compressing

        compressing._isal = None  # type: ignore[assignment]

    now = datetime.now(UTC)
    fields = manifest.ManifestFields(
        capture=manifest.CaptureInfo(name="bench", template="debug-full"),
        target=manifest.TargetInfo(namespace="bench", pod="api-1", container="app"),
        started_at=now,
        finished_at=now,
    )
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    with writer.BundleWriter(
        directory=out, name=layout.bundle_name("bench", "api-1", now), redact=redact
    ) as w:
        for path in evidence_files(directory):
            with path.open("rb") as handle:
                w.add_stream(path.relative_to(directory).as_posix(), handle)
        bundle = w.finish(fields)
    wall = time.perf_counter() - start
    print(json.dumps({"wall": wall, "rss": _own_peak_rss(), "bundle_bytes": bundle.size}))


def _own_peak_rss() -> int:
    """This process's VmHWM: ru_maxrss carries the parent's peak over fork and exec (the parent
    that generated the evidence would be measured instead)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_baseline(directory: Path, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    files = " ".join(p.relative_to(directory).as_posix() for p in evidence_files(directory))
    script = (
        f"cd {directory} && sha256sum {files} > {out}/SHA256SUMS && "
        f"tar czf {out}/bundle.tar.gz {files} && sha256sum {out}/bundle.tar.gz > {out}/bundle.tar.gz.sha256"
    )
    start = time.perf_counter()
    subprocess.run(["sh", "-c", script], check=True)
    wall = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"wall": wall, "rss": rss, "bundle_bytes": (out / "bundle.tar.gz").stat().st_size}))


def _micro_profile(functions: int, labels: dict[str, str]) -> bytes:
    """A small gzip pprof profile of a debug-full capture's shape (sampled stacks, no secret unless
    ``labels`` carries one)."""
    import gzip
    import random

    from debugcap.formats import pprof_proto

    rnd = random.Random(functions)
    p = pprof_proto.Profile()
    strings = ["", "samples", "count", "cpu", "nanoseconds", "/app/server"]
    p.sample_type.add(type=1, unit=2)
    p.sample_type.add(type=3, unit=4)
    p.period_type.type, p.period_type.unit = 3, 4
    p.period = 10_000_000
    p.mapping.add(id=1, filename=5, has_functions=True)
    for fid in range(1, functions + 1):
        strings += [f"github.com/example/svc/pkg{fid % 31}.(*Type{fid % 7}).Method{fid}", f"/src/pkg{fid % 31}/f.go"]
        p.function.add(id=fid, name=len(strings) - 2, system_name=len(strings) - 2, filename=len(strings) - 1)
        p.location.add(id=fid, mapping_id=1, address=0x400000 + fid * 16).line.add(function_id=fid, line=fid % 900)
    label_keys = []
    for key, value in labels.items():
        strings += [key, value]
        label_keys.append((len(strings) - 2, len(strings) - 1))
    for _ in range(functions * 2):
        sample = p.sample.add(location_id=[rnd.randint(1, functions) for _ in range(rnd.randint(8, 30))],
                              value=[c := rnd.randint(1, 5), c * 10_000_000])
        for key_index, value_index in label_keys:
            sample.label.add(key=key_index, str=value_index)
    p.string_table.extend(strings)
    return gzip.compress(p.SerializeToString(), compresslevel=6, mtime=0)


def _micro_members(case: str) -> dict[str, bytes]:
    """One pod's members: ``pod-bundle`` a debug-full bundle's ~25 (text of a few KiB, eight small
    profiles, a trace); ``profiles`` its eight profiles alone, nothing in them to mask."""
    import random

    from debugcap.bundle import layout

    profiles = {path: _micro_profile(150 + 40 * n, {"handler": "/api/v1/items"})
                for n, path in enumerate(sorted(layout.PPROF_PROFILES.values()))}
    if case == "profiles":
        return profiles
    lines = b"".join(b"tcp ESTAB 0 0 10.0.0.%d:8080 10.0.1.%d:%d\n" % (i % 250, i % 200, 30000 + i)
                     for i in range(120))
    text = {path: lines for path in (layout.PROC_PS, layout.PROC_LSOF_I, layout.PROC_FD, layout.PROC_STATUS,
                                     layout.PROC_LIMITS, layout.NET_SOCKETS, layout.NET_PROC_TCP, layout.FS_DF,
                                     layout.FS_DF_INODES, layout.FS_DU_TOP, layout.FS_DELETED_OPEN)}
    text |= {layout.PROC_FD_COUNT: b"42\n", layout.NET_RESOLV_CONF: b"nameserver 10.96.0.10\n",
             layout.NET_SOCKSTAT: b"sockets: used 12\n", layout.ENV_ENVIRONMENT: b"PATH=/usr/bin\nHOME=/\n",
             layout.METRICS_EXPVAR: b'{"memstats": {"Alloc": 123}}\n' * 40,
             layout.METRICS_PROMETHEUS: b'go_goroutines{job="app"} 12\n' * 400,
             layout.log_path("app"): b"level=info msg=served path=/api/v1/items status=200\n" * 800,
             layout.TRACE: random.Random(3).randbytes(120_000)}
    return text | profiles


def child_micro_s3(iterations: int) -> None:
    """Put one pod's bundle ``iterations`` times under new keys; print each put's wall seconds and
    the requests it made."""
    import hashlib
    import tempfile
    import uuid

    import urllib3

    from debugcap.settings import S3Settings
    from debugcap.storage import s3

    settings = S3Settings.from_env()
    if settings is None:
        raise SystemExit('no DEBUGCAP_S3_ENDPOINT: eval "$(.venv/bin/python -m testbed env)" first')
    backend = s3.S3Backend(settings)
    requests: list[str] = []
    real_urlopen = urllib3.PoolManager.urlopen

    def counting(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        requests.append(method)
        return real_urlopen(self, method, url, *args, **kwargs)

    urllib3.PoolManager.urlopen = counting  # type: ignore[method-assign]
    prefix = f"bench-micro/{uuid.uuid4().hex}"
    wall, counts, keys = [], [], []
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "b.tar.gz"
        path.write_bytes(os.urandom(300_000))
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        backend.put(key=f"{prefix}/warm.tar.gz", path=path, sha256=sha256)  # bucket check, connections
        keys.append(f"{prefix}/warm.tar.gz")
        for i in range(iterations):
            keys.append(f"{prefix}/{i}.tar.gz")
            requests.clear()
            start = time.perf_counter()
            backend.put(key=keys[-1], path=path, sha256=sha256)
            wall.append(time.perf_counter() - start)
            counts.append(len(requests))
    for key in keys:
        backend.delete(key=key)
    print(json.dumps({"cpu": wall, "requests": statistics.median(counts), "bundle_bytes": 300_000}))


def child_micro(case: str, iterations: int) -> None:
    """Write ``iterations`` bundles of ``case``'s members; print each one's CPU seconds (all threads)."""
    import tempfile

    if case == "s3-put":
        child_micro_s3(iterations)
        return
    from datetime import UTC, datetime

    from debugcap.bundle import layout, manifest, writer

    members = _micro_members(case)
    now = datetime.now(UTC)
    fields = manifest.ManifestFields(
        capture=manifest.CaptureInfo(name="bench", template="debug-full"),
        target=manifest.TargetInfo(namespace="bench", pod="api-1", container="app"),
        started_at=now,
        finished_at=now,
    )
    cpu = []
    with tempfile.TemporaryDirectory() as directory:
        for i in range(iterations + 3):  # three warm-ups: imports, caches
            start = time.process_time()
            with writer.BundleWriter(directory=Path(directory), name=layout.bundle_name("bench", f"p{i}", now),
                                     durable=False) as w:
                for path, data in members.items():
                    w.add_bytes(path, data)
                bundle = w.finish(fields)
            if i >= 3:
                cpu.append(time.process_time() - start)
            bundle.path.unlink()
            bundle.checksum_path.unlink()
    print(json.dumps({"cpu": cpu, "bundle_bytes": bundle.size}))


def micro(case: str, root: Path | None, repeat: int, iterations: int) -> None:
    """Per-bundle CPU of ``case``, this tree against ``root``'s, child processes alternately."""
    trees = {"before": root, "after": None} if root else {"after": None}
    cpu: dict[str, list[float]] = {name: [] for name in trees}
    sizes: dict[str, float] = {}
    requests: dict[str, float] = {}
    for _ in range(repeat):
        for name, tree in trees.items():
            data = run_child("micro", case, str(iterations), root=tree)
            cpu[name] += data["cpu"]  # type: ignore[arg-type]
            sizes[name] = data["bundle_bytes"]
            requests[name] = data.get("requests", 0)
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    what = "wall ms per put of a 300 KB bundle" if case == "s3-put" else "CPU ms per bundle"
    print(f"micro {case}: {what} ({repeat} x {iterations} per tree)")
    for name, values in cpu.items():
        extra = f"requests {requests[name]:.0f}" if case == "s3-put" else f"bundle {sizes[name]:.0f} B"
        print(f"  {name:<7} min {min(values) * 1e3:7.2f}  median {medians[name] * 1e3:7.2f}  "
              f"max {max(values) * 1e3:7.2f}  {extra}")
    if root:
        print(f"  after / before (medians): {medians['after'] / medians['before']:.3f}")


def run_child(*args: str, root: Path | None = None) -> dict[str, float]:
    # --root: the debugcap package of another tree (an earlier commit), imported first.
    env = {**os.environ, "PYTHONPATH": str(root)} if root else None
    result = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if result.returncode:
        raise SystemExit(f"benchmark child {args} failed:\n{result.stderr}")
    data: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,100,1000", help="evidence sizes in MB, comma-separated")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/debugcap-bench"))
    parser.add_argument("--keep", action="store_true", help="keep generated evidence for the next run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (the median is printed)")
    parser.add_argument("--vocabulary", type=float, default=0.05,
                        help="share of log lines with words of the secret vocabulary (bench_redaction_speed.py)")
    parser.add_argument("--root", type=Path, help="also measure the BundleWriter of this tree (git archive of a "
                        "commit, unpacked): 'before (redact)'")
    parser.add_argument("--micro", choices=["pod-bundle", "profiles", "s3-put"],
                        help="one pod's share of a sweep (see above), against --root when given")
    parser.add_argument("--iterations", type=int, default=40, help="--micro: bundles per child process")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child and args.child[0] == "micro":
        child_micro(args.child[1], int(args.child[2]))
        return
    if args.micro:
        micro(args.micro, args.root, args.repeat, args.iterations)
        return
    if args.child:
        kind, directory, out = args.child[0], Path(args.child[1]), Path(args.child[2])
        if kind == "baseline":
            child_baseline(directory, out)
        else:
            child_ours(directory, out, redact=kind != "ours-raw", isal=kind != "ours-redact-zlib")
        return

    header = (
        f"{'size':>7} {'variant':<26} {'wall s':>8} {'MB/s':>8} {'peak RSS MB':>12} {'bundle MB':>10} "
        f"{'size vs tar':>11} {'tar time / this':>16}"
    )
    print(header)
    print("-" * len(header))
    for size in (int(s) for s in args.sizes.split(",")):
        evidence = args.dir / f"evidence-{size}-{args.vocabulary}"
        generate(evidence, size, args.vocabulary)
        variants = {
            "debugcap (redact, isal)": "ours-redact",
            "debugcap (redact, zlib)": "ours-redact-zlib",
            "debugcap (--no-redact)": "ours-raw",
            "tar czf + sha256sum": "baseline",
        }
        if args.root:
            variants = {"before (redact)": "before-redact", **variants}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for _ in range(args.repeat):  # alternately, so a busy moment of the machine hits all alike
            for name, kind in variants.items():
                target = args.dir / ("out-baseline" if kind == "baseline" else "out-ours")
                if kind == "before-redact":
                    runs[name].append(run_child("ours-redact", str(evidence), str(target), root=args.root))
                else:
                    runs[name].append(run_child(kind, str(evidence), str(target)))
        rows = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()}
        baseline = rows["tar czf + sha256sum"]
        for variant, row in rows.items():
            walls = sorted(r["wall"] for r in runs[variant])
            print(
                f"{size:>5}MB {variant:<26} {row['wall']:>8.2f} {size / row['wall']:>8.1f} "
                f"{max(r['rss'] for r in runs[variant]) / MB:>12.1f} {row['bundle_bytes'] / MB:>10.1f} "
                f"{row['bundle_bytes'] / baseline['bundle_bytes']:>10.2f}x "
                f"{baseline['wall'] / row['wall']:>15.2f}x   (wall min {walls[0]:.2f} max {walls[-1]:.2f})",
                flush=True,
            )
        shutil.rmtree(args.dir / "out-ours", ignore_errors=True)
        shutil.rmtree(args.dir / "out-baseline", ignore_errors=True)
        if not args.keep:
            shutil.rmtree(evidence, ignore_errors=True)


if __name__ == "__main__":
    main()
