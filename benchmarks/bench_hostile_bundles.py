"""Memory and time of the readers on hostile bundles (prints numbers; not a test).

    .venv/bin/python benchmarks/bench_hostile_bundles.py [--mib 300]

Builds, in a temporary directory, small .tar.gz bundles that decompress to a lot: one whose
``trace/trace.out`` is ``--mib`` MiB (over the report's trace limit), one whose ``manifest.json``
is ``--mib`` MiB of spaces. Runs ``kubectl-debugcap report`` and ``verify`` on each as a
separate process and prints the archive size, the exit code, the wall time and the peak RSS
(``ru_maxrss`` of the child). Baseline alongside: the same commands on a good debug-full-sized
bundle (the trace fixture in an ordinary bundle), so the ratio shows what the hostile input costs.
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
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _run(*args: str) -> tuple[int, float, float]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(CLI), *args], capture_output=True, text=True,
                         timeout=600, check=True).stdout.split()
    return int(out[0]), time.perf_counter() - t0, int(out[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=300)
    args = ap.parse_args()
    big = args.mib << 20
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        trace = TRACE.read_bytes()
        cases = {
            "baseline: a bundle with the 114 kB goapp trace": _good(d, trace),
            f"trace/trace.out of {args.mib} MiB": _bundle(
                d / "big-trace.tar.gz", {"manifest.json": (len(_manifest({})), _manifest({})),
                                         "trace/trace.out": (big, trace[:4096])}),
            f"manifest.json of {args.mib} MiB of spaces": _bundle(
                d / "big-manifest.tar.gz", {"manifest.json": (big, b" " * 4096)}),
        }
        print(f"{'bundle':<48} {'archive':>9} {'command':<8} {'exit':>4} {'wall s':>7} {'peak RSS MiB':>12}")
        for label, path in cases.items():
            for command in ("report", "verify"):
                code, wall, rss = _run(command, str(path))
                print(f"{label:<48} {os.path.getsize(path) / 1024:>7.0f}kB {command:<8} {code:>4} {wall:>7.2f} "
                      f"{rss:>12.0f}")


if __name__ == "__main__":
    sys.exit(main())
