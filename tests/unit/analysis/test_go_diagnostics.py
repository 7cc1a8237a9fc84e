"""Go 1.26 goroutineleak and the runtime facts, as ``top``, ``goroutines`` and ``report`` show them.

Inputs are the real recordings of goapp (``tests/unit/collectors/data/go/``, see its README):
its goroutineleak profile (debug=0) and dump (debug=2) name ``main.orphanedWaiter``, eight
goroutines parked forever on channels nothing can reach, while ``main.leakWorker``'s, parked
on a reachable global channel, are not leaked. Cases: the dump's "(leaked)" marks are counted
per group, without splitting groups by the mark; the profile by top user frame; ``top`` of the
profile; ``goroutines`` marks proven groups; a bundle's report ranks the proven leak above a
heuristic suspect, drops the suspect it proved, says an unproven suspect is still reachable,
and shows the runtime facts in text, HTML and JSON; an empty leak profile says none were found.
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import click
from click.testing import CliRunner

from debugcap.analysis import goroutines, report
from debugcap.analysis.findings import goroutine_leak, goroutine_leak_proven
from debugcap.analysis.rendering import html, text
from debugcap.bundle import layout, manifest
from debugcap.formats import pprof as pprof_format
from debugcap.formats import pprof_proto
from debugcap.kubectl_plugin.commands import analyze

GO = Path(__file__).resolve().parents[1] / "collectors" / "data" / "go"
RUNTIME = {"goVersion": "go1.26.8", "GOMAXPROCS": "2", "GOMEMLIMIT": "536870912"}


def _run(*args: str) -> tuple[int, str]:
    group = click.Group("debugcap")
    for c in analyze.COMMANDS:
        group.add_command(c)
    res = CliRunner().invoke(group, list(args))
    return res.exit_code, res.stdout


def test_dump_counts_leaked_goroutines_per_group() -> None:
    dump = goroutines.load_dump(GO / "goroutineleak-debug2.txt")
    by_func = {g["function"]: g for g in dump["groups"]}
    orphaned = by_func["main.orphanedWaiter"]
    assert orphaned["state"] == "chan receive" and orphaned["leaked"] == orphaned["count"] == 8
    assert by_func["main.leakWorker"]["leaked"] == 0 and by_func["main.leakWorker"]["state"] == "chan receive"
    assert [g["function"] for g in goroutines.leaked(dump)] == ["main.orphanedWaiter"]


def test_mixed_marks_stay_one_group() -> None:
    dump = goroutines.parse_dump(iter([
        b"goroutine 7 [chan receive (leaked), 3 minutes]:\n", b"main.f(0x0?)\n", b"\tmain.go:1 +0x1\n", b"\n",
        b"goroutine 8 [chan receive]:\n", b"main.f(0x0?)\n", b"\tmain.go:1 +0x1\n",
    ]))
    assert dump["groups"] == [{"state": "chan receive", "function": "main.f", "count": 2, "max_wait_minutes": 3,
                               "created_by": "", "suspect": False, "leaked": 1}]


def test_profile_grouped_by_top_user_frame() -> None:
    prof = pprof_format.load(GO / "goroutineleak.pb.gz")
    assert goroutines.leak_groups(prof) == [{"function": "main.orphanedWaiter", "count": 8}]


def test_top_of_the_profile() -> None:
    code, out = _run("top", str(GO / "goroutineleak.pb.gz"), "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["sample_type"] == "goroutineleak" and doc["total"] == 8
    assert any(r["function"] == "main.orphanedWaiter" and r["cum"] == 8 for r in doc["rows"])


def test_goroutines_command_marks_proven_groups() -> None:
    code, out = _run("goroutines", str(GO / "goroutineleak-debug2.txt"))
    assert code == 0
    line = next(ln for ln in out.splitlines() if "main.orphanedWaiter" in ln)
    assert line.endswith("<- 8 leaked (proven by the runtime)")
    assert "leaked" not in next(ln for ln in out.splitlines() if "main.leakWorker" in ln)


def _bundle(tmp_path: Path, *, suspect_dump: bool = True, leak_profile: str = "goroutineleak.pb.gz") -> Path:
    stem = tmp_path / "shop_api-7d9f_20261123T160000Z"
    (stem / "pprof").mkdir(parents=True)
    when = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    fields = manifest.ManifestFields(
        capture=manifest.CaptureInfo(name="c1", template="debug-full"),
        target=manifest.TargetInfo(namespace="shop", pod="api-7d9f", container="api"),
        started_at=when, finished_at=when, runtime=RUNTIME)
    (stem / layout.MANIFEST).write_text(manifest.Manifest.build(fields, files={}).to_json())
    shutil.copy(GO / leak_profile, stem / layout.PPROF_GOROUTINELEAK)
    if suspect_dump:
        # 60 parked in main.leakWorker (a heuristic suspect) and 60 in main.orphanedWaiter.
        blocks = [f"goroutine {i} [chan receive, 2 minutes]:\nmain.{fn}(0x0?)\n\tmain.go:1 +0x1\n"
                  f"created by main.start in goroutine 1\n\tmain.go:2 +0x2\n"
                  for i, fn in enumerate(["leakWorker"] * 60 + ["orphanedWaiter"] * 60, start=10)]
        (stem / layout.PPROF_GOROUTINE_DEBUG2).write_text("\n".join(blocks))
    return stem


def test_report_ranks_the_proven_leak_first_and_shows_runtime_facts(tmp_path: Path) -> None:
    rep = report.build(_bundle(tmp_path))
    assert [(f.kind, f.subject) for f in rep.findings[:2]] == [
        ("goroutine-leak-proven", "main.orphanedWaiter"), ("goroutine-leak", "main.leakWorker")]
    assert rep.findings[0].severity > goroutine_leak.SEVERITY_GROWING > rep.findings[1].severity
    assert rep.findings[0].severity == goroutine_leak_proven.SEVERITY
    assert "8 goroutines blocked forever" in rep.findings[0].message
    # The suspect the runtime proved is not listed twice; the other one is said to be unproven.
    assert not any(f.kind == "goroutine-leak" and f.subject == "main.orphanedWaiter" for f in rep.findings)
    assert "still reachable" in rep.findings[1].message
    assert layout.PPROF_GOROUTINELEAK not in rep.missing
    out = text.render_report(rep)
    assert "Runtime: goVersion go1.26.8, GOMAXPROCS 2, GOMEMLIMIT 536870912" in out
    assert "Goroutine leaks proven by the runtime (pprof/goroutineleak.pb.gz): 8" in out
    page = html.render_report(rep, [])
    assert "Runtime: goVersion go1.26.8, GOMAXPROCS 2, GOMEMLIMIT 536870912" in page
    assert "Goroutine leaks proven by the runtime (8)" in page and "main.orphanedWaiter" in page
    doc = json.loads(json.dumps(rep.as_dict()))
    assert doc["runtime"] == RUNTIME
    assert doc["proven_leaks"] == {"source": layout.PPROF_GOROUTINELEAK, "total": 8,
                                   "groups": [{"function": "main.orphanedWaiter", "count": 8}]}


def test_report_command_text(tmp_path: Path) -> None:
    code, out = _run("report", str(_bundle(tmp_path)))
    assert code == 0
    assert out.index("goroutine leak proven by the Go runtime at main.orphanedWaiter") < out.index(
        "goroutine leak suspect at main.leakWorker")


def test_without_a_proto_the_leak_dump_is_read(tmp_path: Path) -> None:
    stem = _bundle(tmp_path, suspect_dump=False)
    (stem / layout.PPROF_GOROUTINELEAK).unlink()
    shutil.copy(GO / "goroutineleak-debug2.txt", stem / layout.PPROF_GOROUTINELEAK_DEBUG2)
    rep = report.build(stem)
    assert rep.proven_leaks is not None and rep.proven_leaks.source == layout.PPROF_GOROUTINELEAK_DEBUG2
    assert rep.proven_leaks.groups == ({"function": "main.orphanedWaiter", "count": 8},)


def test_an_empty_leak_profile_says_none_were_found(tmp_path: Path) -> None:
    stem = _bundle(tmp_path, suspect_dump=False)
    prof = pprof_format.load(GO / "goroutineleak.pb.gz")
    assert prof.sample_types  # the recording is a real one; now an empty one of the same type
    empty = pprof_proto.Profile()
    empty.string_table.extend(["", "goroutineleak", "count"])
    empty.sample_type.add(type=1, unit=2)
    empty.period_type.type, empty.period_type.unit = 1, 2
    (stem / layout.PPROF_GOROUTINELEAK).write_bytes(gzip.compress(empty.SerializeToString()))
    rep = report.build(stem)
    assert rep.proven_leaks is not None and rep.proven_leaks.total == 0
    assert not any(f.kind == "goroutine-leak-proven" for f in rep.findings)
    assert "its leak check found no goroutine blocked forever" in text.render_report(rep)
