"""Memory and time of the readers on hostile bundles (prints numbers; not a test).

    .venv/bin/python benchmarks/bench_hostile_bundles.py [--mib 300]

Builds, in a temporary directory, small .tar.gz bundles that decompress to a lot: one whose
``trace/trace.out`` is ``--mib`` MiB (over the report's trace limit), one whose ``manifest.json``
is ``--mib`` MiB of spaces, one whose ``metrics/expvar.json`` is ``--mib`` MiB, one whose heap
profile is ``--mib`` MiB, one whose goroutine dump is a single line of ``--mib`` MiB; and the
issue-16 shapes: a ``../x`` member the manifest lists, a symlink, data after the gzip stream, a
manifest nested 200000 deep, a member name with escape sequences. Runs ``kubectl-debugcap``
(``report``, ``verify``, ``goroutines``, ``top`` as fits) on each as a separate process and prints
the archive size, the exit code, the wall time and the peak RSS (``ru_maxrss`` of the child), and
whether a traceback or a raw ESC byte reached the output. Baseline alongside: the same commands on
a good bundle (the trace fixture in an ordinary bundle), so the ratio shows what the hostile input costs.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLI = ROOT / ".venv" / "bin" / "kubectl-debugcap"
STEM = "shop_api-1_20261204T120000Z"
TRACE = ROOT / "tests" / "fixtures" / "goapp-trace" / "trace.out"


def _member(tar: tarfile.TarFile, name: str, size: int, chunk: bytes) -> None:
    """A member of ``size`` bytes repeating ``chunk``, streamed: the benchmark never holds it."""
    info = tarfile.TarInfo(f"{STEM}/{name}")
    info.size = size

    class Repeat(io.RawIOBase):
        def __init__(self) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, buf: bytearray) -> int:  # type: ignore[override]
            n = min(len(buf), self.left)
            whole = (chunk * (n // len(chunk) + 1))[:n]
            buf[:n] = whole
            self.left -= n
            return n

    tar.addfile(info, io.BufferedReader(Repeat(), 1 << 20))


def _bundle(path: Path, members: dict[str, tuple[int, bytes]]) -> Path:
    with gzip.open(path, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, (size, chunk) in members.items():
            _member(tar, name, size, chunk)
    return path


def _good(directory: Path, trace: bytes) -> Path:
    """A bundle as a capture writes it (the project's writer): the baseline."""
    from datetime import UTC, datetime

    from debugcap.bundle import layout, manifest, writer

    when = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    with writer.BundleWriter(directory=directory, name=layout.bundle_name("shop", "api-1", when)) as w:
        w.add_bytes(layout.TRACE, trace)
        return w.finish(manifest.ManifestFields(
            capture=manifest.CaptureInfo(name="c", template="go-profile", parameters={}),
            target=manifest.TargetInfo(namespace="shop", pod="api-1", container="app"),
            started_at=when, finished_at=when, collectors=())).path


def _manifest(files: dict[str, int]) -> bytes:
    return json.dumps({"version": 1, "capture": {"name": "c", "template": "t", "parameters": {}},
                       "target": {"namespace": "shop", "pod": "api-1", "container": "app"},
                       "started_at": "2026-12-04T12:00:00Z", "finished_at": "2026-12-04T12:00:01Z",
                       "collectors": [], "files": {}}).encode()


# A fresh parent per command: ru_maxrss of RUSAGE_CHILDREN is the largest child a process ever
# waited for, so each measurement needs a parent of its own.
_MEASURE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
            "o = r.stdout + r.stderr; print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
            "int(b'Traceback' in o), int(b'\\x1b' in o))")


def _run(*args: str) -> tuple[int, float, float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(CLI), *args], capture_output=True, text=True,
                         timeout=600, check=True).stdout.split()
    flags = ",".join(f for f, on in (("traceback", out[2]), ("raw ESC", out[3])) if on == "1") or "-"
    return int(out[0]), time.perf_counter() - t0, int(out[1]) / 1024, flags


def _shapes(d: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """The issue-16 shapes, small: what matters is the exit code and that nothing leaks, not the cost."""
    sys.path.insert(0, str(ROOT))
    from tests.unit.bundle import hostile

    ps, esc = hostile.PS, "\x1b[31mRED\x1b]0;pwned\x07"
    deep = b"[" * 200_000 + b"]" * 200_000
    return {
        "../x member the manifest lists": (hostile.build(d / "dotdot", {"proc/ps.txt": ps, "../x": b"x"}),
                                           ("verify", "report")),
        "symlink member -> /etc/passwd": (hostile.build(d / "link", {"proc/ps.txt": ps},
                                                        raw=(hostile.link(f"{hostile.STEM}/proc/limits.txt"),)),
                                          ("verify", "report")),
        "700 bytes after the gzip stream": (hostile.build(d / "trail", {"proc/ps.txt": ps}, trailing=b"G" * 700),
                                            ("verify", "report")),
        "no .sha256 beside it": (hostile.build(d / "nosum", {"proc/ps.txt": ps}, sidecar=False), ("verify",)),
        "manifest nested 200000 deep": (hostile.build(d / "deep", {"proc/ps.txt": ps}, manifest=deep),
                                        ("verify", "report")),
        "member name with ESC sequences": (hostile.build(d / "esc", {"proc/ps.txt": ps, f"custom/{esc}": b"x"},
                                                         listed={"proc/ps.txt": ps}), ("verify",)),
    }


def _large(d: Path, mib: int, trace: bytes) -> dict[str, tuple[Path, tuple[str, ...]]]:
    big = mib << 20
    man = _manifest({})
    dump = b"goroutine 1 [running]: main.f(0x0, "  # repeated, no newline: the whole member is one line
    return {
        f"trace/trace.out of {mib} MiB": (_bundle(d / "big-trace.tar.gz", {
            "manifest.json": (len(man), man), "trace/trace.out": (big, trace[:4096])}), ("report", "verify")),
        f"manifest.json of {mib} MiB of spaces": (_bundle(d / "big-manifest.tar.gz", {
            "manifest.json": (big, b" " * 4096)}), ("report", "verify")),
        f"metrics/expvar.json of {mib} MiB": (_bundle(d / "big-expvar.tar.gz", {
            "manifest.json": (len(man), man), "metrics/expvar.json": (big, b"9" * 4096)}), ("report",)),
        f"pprof/heap.pb.gz of {mib} MiB": (_bundle(d / "big-heap.tar.gz", {
            "manifest.json": (len(man), man), "pprof/heap.pb.gz": (big, b"\x0a" * 4096)}), ("report", "top")),
        f"goroutine dump: one line of {mib} MiB": (_bundle(d / "big-dump.tar.gz", {
            "manifest.json": (len(man), man),
            "pprof/goroutine-debug2.txt": (big, dump * 128)}), ("goroutines",)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        trace = TRACE.read_bytes()
        cases = {"baseline: a bundle with the 114 kB goapp trace": (_good(d, trace), ("report", "verify")),
                 **_large(d, args.mib, trace), **_shapes(d)}
        print(f"{'bundle':<40} {'archive':>9} {'command':<10} {'exit':>4} {'wall s':>7} {'peak RSS MiB':>12} leaked")
        for label, (path, commands) in cases.items():
            for command in commands:
                extra = ("--profile", "heap") if command == "top" else ()
                code, wall, rss, flags = _run(command, str(path), *extra)
                print(f"{label:<40} {os.path.getsize(path) / 1024:>7.0f}kB {command:<10} {code:>4} {wall:>7.2f} "
                      f"{rss:>12.0f} {flags}")


if __name__ == "__main__":
    sys.exit(main())
