"""`kubectl debugcap trace`: summary and profiles of a trace file or a bundle's trace; flag errors.

Cases: the summary as a table and as JSON; --pprof as a top equal to go tool pprof's of go tool
trace's profile (committed, tests/fixtures/goapp-trace), its text byte for byte that of `go tool
pprof -top` on `go tool trace -pprof=KIND`'s output (made live; and on committed older-format
traces), as JSON, and -O writing the profile itself; a bundle, packed or not, is read for its
trace/trace.out, checked first as the other commands check it (exit 4; --force reads it, with a
warning); -O without --pprof, -o with -O and --force on a trace file are usage errors naming the
flags; a bundle without a trace, a trace of an older Go and a cut trace say so; the command is
registered, with analysis' profile kinds.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from debugcap.analysis import pprof, traces
from debugcap.bundle import manifest
from debugcap.formats import pprof as pprof_format
from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.commands import trace as trace_command

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "goapp-trace"
TRACE = FIXTURE / "trace.out"
WHEN = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["trace", *args])
    return res.exit_code, res.stdout, res.stderr


def _rows(data: bytes) -> list[tuple[str, int, int]]:
    rows = pprof.top(pprof_format.parse(data, "p"), "delay", pprof.PPROF_NODE_FRACTION)["rows"]
    return [(r["function"], r["flat"], r["cum"]) for r in rows]


def test_summary_table_and_json() -> None:
    code, out, _ = run(str(TRACE), "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["source"] == str(TRACE) and doc["cut"] is None and doc["cpu_samples"] > 0
    code, out, err = run(str(TRACE))
    rows = {key: ln[len(key):].strip() for ln in out.splitlines() for key in
            ("trace", "duration", "GOMAXPROCS", "goroutines", "scheduler latency", "GC", "CPU samples", "heap")
            if ln.startswith(key + " ")}
    assert code == 0 and err == "" and len(rows) == len(out.splitlines()) == 8
    assert rows["trace"] == f"{TRACE} (Go 1.26 format, {doc['generations']} generations, {doc['events']} events)"
    assert rows["GOMAXPROCS"] == f"{doc['gomaxprocs']} ({doc['procs_seen']} procs seen)"
    assert rows["scheduler latency"].startswith("p99 ") and f"over {doc['sched_waits']} waits" in rows[
        "scheduler latency"]
    assert f"stop-the-world {doc['stw_count']} pauses" in rows["GC"]


@pytest.mark.parametrize("kind", ["sched", "net", "sync", "syscall"])
def test_pprof_top_and_file_equal_go_tool_traces(kind: str, tmp_path: Path) -> None:
    want = _rows((FIXTURE / f"{kind}.pb.gz").read_bytes())
    code, out, _ = run(str(TRACE), "--pprof", kind, "-o", "json")
    assert code == 0 and [(r["function"], r["flat"], r["cum"]) for r in json.loads(out)["rows"]] == want
    code, out, _ = run(str(TRACE), "--pprof", kind)
    assert code == 0 and out.startswith("Type: delay\n") and all(f"  {f}" in out for f, _, _ in want)
    dest = tmp_path / f"{kind}.pb.gz"
    code, out, err = run(str(TRACE), "--pprof", kind, "-O", str(dest))
    assert code == 0 and out == "" and str(dest) in err
    assert _rows(dest.read_bytes()) == want and gzip.decompress(dest.read_bytes())


def _go_pprof_top(profile: Path) -> str:
    go = shutil.which("go")
    assert go, "the Go toolchain is required: the text is compared with go tool pprof's"
    env = {**os.environ, "GOTOOLCHAIN": "local"}
    return subprocess.run([go, "tool", "pprof", "-top", str(profile)], capture_output=True, text=True,
                          check=True, env=env, timeout=120).stdout


@pytest.mark.parametrize("kind", ["sched", "net", "sync", "syscall"])
def test_pprof_text_is_go_tool_pprofs_of_go_tool_traces_profile_byte_for_byte(kind: str, tmp_path: Path) -> None:
    go = shutil.which("go")
    assert go, "the Go toolchain is required: the profile is made by go tool trace"
    made = tmp_path / f"{kind}.pb.gz"
    with made.open("wb") as out:
        subprocess.run([go, "tool", "trace", f"-pprof={kind}", str(TRACE)], stdout=out, check=True,
                       env={**os.environ, "GOTOOLCHAIN": "local"}, timeout=300)
    expected = _go_pprof_top(made)
    code, out, _ = run(str(TRACE), "--pprof", kind)
    assert code == 0 and out == expected
    if kind == "sched":  # the line render_top left out; the goapp trace's sched profile has small nodes
        assert "\nDropped " in out


@pytest.mark.parametrize("name", ["go122-gc-stress", "go122-annotations-stress", "go122-task-across-generations"])
@pytest.mark.parametrize("kind", ["sched", "sync"])
def test_pprof_text_of_older_format_traces_is_go_tool_pprofs(name: str, kind: str) -> None:
    traces_dir = FIXTURE.parent / "go-traces"
    code, out, _ = run(str(traces_dir / f"{name}.trace"), "--pprof", kind)
    assert code == 0 and out == _go_pprof_top(traces_dir / f"{name}.{kind}.pb.gz")


def _bundle(root: Path, trace: bytes | None, listed: dict[str, manifest.FileEntry] | None = None) -> Path:
    stem = root / "ns_pod_20261123T160000Z"
    stem.mkdir(parents=True)
    fields = manifest.ManifestFields(
        capture=manifest.CaptureInfo(name="c1", template="debug-full", parameters={}),
        target=manifest.TargetInfo(namespace="ns", pod="pod", container="app"),
        started_at=WHEN, finished_at=WHEN, collectors=())
    (stem / "manifest.json").write_text(manifest.Manifest.build(fields, files=listed or {}).to_json())
    if trace is not None:
        (stem / "trace").mkdir()
        (stem / "trace" / "trace.out").write_bytes(trace)
    return stem


def _packed(stem: Path) -> Path:
    packed = stem.parent / f"{stem.name}.tar.gz"
    with tarfile.open(packed, "w:gz") as tf:
        tf.add(stem, arcname=stem.name)
    return packed


def test_a_bundle_is_read_for_its_trace(tmp_path: Path) -> None:
    stem = _bundle(tmp_path, TRACE.read_bytes())
    packed = _packed(stem)
    want = json.loads(run(str(TRACE), "-o", "json")[1])
    for path in (stem, packed):
        code, out, _ = run(str(path), "-o", "json")
        doc = json.loads(out)
        assert code == 0 and doc["source"].endswith("trace/trace.out")
        assert {**doc, "source": None} == {**want, "source": None}


def test_a_bundle_that_fails_its_checks_exits_4_unless_forced(tmp_path: Path) -> None:
    wrong = {"trace/trace.out": manifest.FileEntry(sha256="0" * 64, size=TRACE.stat().st_size)}
    packed = _packed(_bundle(tmp_path, TRACE.read_bytes(), wrong))
    code, out, err = run(str(packed))
    assert code == 4 and out == "" and "trace/trace.out" in err
    code, out, err = run(str(packed), "--force", "-o", "json")
    assert code == 0 and json.loads(out)["events"] > 0 and err.startswith("warning: ")


def test_force_is_for_bundles_and_a_directory_needs_a_manifest(tmp_path: Path) -> None:
    code, _, err = run(str(TRACE), "--force")
    assert code == 2 and "--force applies to a bundle" in err
    (tmp_path / "trace").mkdir()
    (tmp_path / "trace" / "trace.out").write_bytes(TRACE.read_bytes())
    code, _, err = run(str(tmp_path))
    assert code == 2 and "manifest.json" in err


def test_a_bundle_without_a_trace_says_so(tmp_path: Path) -> None:
    code, _, err = run(str(_bundle(tmp_path, None)))
    assert code == 1 and "has no execution trace (trace/trace.out)" in err


@pytest.mark.parametrize(("args", "named"), [
    (["-O", "x.pb.gz"], ["-O/--output-file", "--pprof"]),
    (["--pprof", "sched", "-O", "x.pb.gz", "-o", "json"], ["-o/--output", "-O/--output-file"]),
])
def test_flags_that_do_not_go_together_are_usage_errors(args: list[str], named: list[str], tmp_path: Path) -> None:
    code, _, err = run(str(TRACE), *args)
    assert code == 2 and all(n in err for n in named)
    assert not (tmp_path / "x.pb.gz").exists()


def test_an_older_trace_and_a_cut_one(tmp_path: Path) -> None:
    old = tmp_path / "old.out"
    old.write_bytes(b"go 1.19 trace\x00\x00\x00" + bytes(32))
    code, _, err = run(str(old))
    assert code == 1 and "unsupported: execution trace format of Go 1.19; debugcap reads Go 1.22 and later" in err
    cut = tmp_path / "cut.out"
    data = TRACE.read_bytes()
    cut.write_bytes(data[: len(data) * 3 // 4])
    code, out, err = run(str(cut))
    assert code == 0 and "cut short" in out and err.startswith("warning: the trace was cut short")


def test_trace_is_registered_with_the_analysis_profile_kinds() -> None:
    assert "trace" in cli.commands
    assert trace_command.PROFILE_KINDS == traces.PROFILE_KINDS
