"""Fixtures for the analysis tests: real Go profiles from tests/fixtures/profgen.

The profiles are generated once per session by building and running the Go
program, so every comparison with ``go tool pprof`` is made on real runtime
output, not on hand-made protobufs.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

PROFGEN = Path(__file__).resolve().parents[2] / "fixtures" / "profgen"


def _go_env() -> dict[str, str]:
    # GOTOOLCHAIN=local: never download a toolchain from inside a test.
    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}


@pytest.fixture(scope="session")
def go() -> str:
    path = shutil.which("go")
    assert path, "the Go toolchain is required for the analysis tests (go tool pprof, profgen)"
    return path


@pytest.fixture(scope="session")
def profdir(tmp_path_factory: pytest.TempPathFactory, go: str) -> Path:
    """Directory with cpu/heap/allocs/goroutine/block/mutex/threadcreate profiles and dumps."""
    tmp = tmp_path_factory.mktemp("profgen")
    binary = tmp / "profgen"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=PROFGEN, env=_go_env(), check=True,
                   timeout=300)
    out = tmp / "out"
    subprocess.run([str(binary), str(out)], check=True, timeout=60)
    return out


@pytest.fixture(scope="session")
def go_top(go: str) -> Callable[..., list[tuple[str, int, int]]]:
    """``go_top(path, sample_index=..., unit=..., node_fraction=..., diff_base=...)``."""
    return functools.partial(go_pprof_top, go)


def go_pprof_top(go: str, path: Path, *, sample_index: str | None = None, unit: str | None = None,
                 node_fraction: str = "0", diff_base: Path | None = None) -> list[tuple[str, int, int]]:
    """(function, flat, cum) rows of ``go tool pprof -top``, values exact via ``-unit``."""
    cmd = [go, "tool", "pprof", "-top", "-nodecount=1000000", f"-nodefraction={node_fraction}"]
    if sample_index:
        cmd.append(f"-sample_index={sample_index}")
    if unit:
        cmd.append(f"-unit={unit}")
    if diff_base:
        cmd.append(f"-diff_base={diff_base}")
    out = subprocess.run([*cmd, str(path)], capture_output=True, text=True, check=True,
                         env=_go_env(), timeout=120).stdout
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["flat", "flat%"])
    rows = []
    for ln in lines[start + 1:]:
        flat, _, _, cum, _, name = ln.split(maxsplit=5)
        for label in (" (inline)", " (partial-inline)"):
            name = name.removesuffix(label)
        rows.append((name, _exact(flat, unit), _exact(cum, unit)))
    return rows


def _exact(text: str, unit: str | None) -> int:
    # With -unit equal to the sample unit pprof prints "%.2f" of the raw value
    # with ".00" trimmed, which is exact for integers below 2**53.
    if unit:
        text = text.removesuffix(unit)
    return int(text)
