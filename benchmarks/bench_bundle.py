"""Bundle writing: wall time, throughput and peak RSS against `tar czf` + `sha256sum`.

Usage: .venv/bin/python benchmarks/bench_bundle.py [--sizes 10,100,1000] [--dir /tmp/debugcap-bench]

For each size (MB) it generates log-like text evidence (one big container log plus a few small
files), then writes a bundle with BundleWriter in a fresh process (redaction on, then off) and
runs the baseline `tar czf` + `sha256sum` of the same files (and of the archive) in another.
Peak RSS is each process's ru_maxrss (for the baseline: the largest of sh, tar, gzip,
sha256sum). The goal is a peak RSS under 150 MB whatever the size.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

MB = 1000 * 1000


def generate(directory: Path, size_mb: int) -> None:
    """Log-like text: compresses like real logs (about 4:1), not like zeros or random bytes."""
    if (directory / "done").exists():
        return
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "logs").mkdir(parents=True)
    (directory / "proc").mkdir()
    rng = random.Random(size_mb)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(2000)]
    blocks = [
        b"".join(
            b"2026-11-23T16:%02d:%02dZ level=info req=%d msg=" % (i % 60, j % 60, j)
            + b" ".join(rng.choices(words, k=14))
            + b"\n"
            for j in range(40_000)
        )
        for i in range(4)
    ]
    remaining = size_mb * MB
    with (directory / "logs" / "app.log").open("wb") as out:
        i = 0
        while remaining > 0:
            block = blocks[i % len(blocks)][:remaining]
            out.write(block)
            remaining -= len(block)
            i += 1
    (directory / "proc" / "ps.txt").write_bytes(b"root 1 0.0 /app --serve\n" * 50)
    (directory / "proc" / "status.txt").write_bytes(b"VmRSS:\t123456 kB\n" * 20)
    (directory / "done").write_text("")


def evidence_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "done")


def child_ours(directory: Path, out: Path, redact: bool) -> None:
    from datetime import UTC, datetime

    from debugcap.bundle import layout, manifest, writer

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
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"wall": wall, "rss": rss, "bundle_bytes": bundle.size}))


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


def run_child(*args: str) -> dict[str, float]:
    result = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
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
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, directory, out = args.child[0], Path(args.child[1]), Path(args.child[2])
        if kind == "baseline":
            child_baseline(directory, out)
        else:
            child_ours(directory, out, redact=kind == "ours-redact")
        return

    header = (
        f"{'size':>7} {'variant':<22} {'wall s':>8} {'MB/s':>8} {'peak RSS MB':>12} {'bundle MB':>10} "
        f"{'time vs tar':>11}"
    )
    print(header)
    print("-" * len(header))
    for size in (int(s) for s in args.sizes.split(",")):
        evidence = args.dir / f"evidence-{size}"
        generate(evidence, size)
        baseline = run_child("baseline", str(evidence), str(args.dir / "out-baseline"))
        rows = [
            ("debugcap (redact)", run_child("ours-redact", str(evidence), str(args.dir / "out-ours"))),
            ("debugcap (--no-redact)", run_child("ours-raw", str(evidence), str(args.dir / "out-ours"))),
            ("tar czf + sha256sum", baseline),
        ]
        for variant, row in rows:
            print(
                f"{size:>5}MB {variant:<22} {row['wall']:>8.2f} {size / row['wall']:>8.1f} "
                f"{row['rss'] / MB:>12.1f} {row['bundle_bytes'] / MB:>10.1f} "
                f"{row['wall'] / baseline['wall']:>10.2f}x",
                flush=True,
            )
        shutil.rmtree(args.dir / "out-ours", ignore_errors=True)
        shutil.rmtree(args.dir / "out-baseline", ignore_errors=True)
        if not args.keep:
            shutil.rmtree(evidence, ignore_errors=True)


if __name__ == "__main__":
    main()
