"""The analyze commands: output formats, exit codes and messages.

Cases: top json equals go tool pprof at its defaults; top table; unknown
sample index (usage error, exit 2); broken profile (exit 1, file named);
error body explained; goroutines json/table; diff of profiles and of bundles;
profile mixed with bundle; report json/table with --html and --speedscope;
registration list. Damaged input (bundles written by the BundleWriter, then cut or
flipped): report, diff, top and goroutines exit 4 naming the first bad member and
`kubectl debugcap verify`; with --force they exit 0 and say unverified (problems,
-o json, stderr); a directory of only pprof/ is refused saying what a bundle is; a
profile, dump or execution trace where a bundle (or a profile) is expected names the
command that reads it; report --force warns on stderr and above its findings, and lists
what the damage took as lost, not missing, and so do top and goroutines --force when the member
they were asked for is past the cut or is the member it cut; trace --force on a bundle cut inside its trace
reads the generations before the cut or says the trace is the damaged member; a trace of
only its header is an error; flags that do not apply are usage errors; a debug=1 dump is
read; a cut dump is not called truncated at Go's limit.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import click
from click.testing import CliRunner

from debugcap.bundle import layout
from debugcap.kubectl_plugin import cli
from debugcap.kubectl_plugin.commands import analyze

from .test_bundle_reading import BEFORE_TRACE, DUMP, MARKER, TRACE, cut_in_half, flip, write_bundle
from .test_report import STEM, fixed_cpu_profile, make_bundle

GOAPP_DUMPS = Path(__file__).resolve().parents[2] / "fixtures" / "goapp-dumps"
GOAPP_TRACE = Path(__file__).resolve().parents[2] / "fixtures" / "goapp-trace" / "trace.out"


def _cli() -> click.Group:
    group = click.Group("debugcap")
    for c in analyze.COMMANDS:
        group.add_command(c)
    return group


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(_cli(), list(args))
    return res.exit_code, res.stdout, res.stderr


def test_commands_are_exported_for_cli_registration() -> None:
    assert [c.name for c in analyze.COMMANDS] == ["top", "goroutines", "diff", "report"]


def test_top_json_equals_go_tool_pprof_defaults(
        profdir: Path, go_top: Callable[..., list[tuple[str, int, int]]]) -> None:
    code, out, _ = run("top", str(profdir / "heap.pb.gz"), "--sample-index", "alloc_space", "-o", "json")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert [(r["function"], r["flat"], r["cum"]) for r in rows] == go_top(
        profdir / "heap.pb.gz", sample_index="alloc_space", unit="B", node_fraction="0.005")


def test_top_table_is_limited_and_aligned(profdir: Path) -> None:
    code, out, _ = run("top", str(profdir / "cpu.pb.gz"), "--limit", "2")
    assert code == 0
    assert "      flat  flat%   sum%        cum   cum%" in out
    lines = out.splitlines()
    assert len(lines[lines.index("      flat  flat%   sum%        cum   cum%") + 1:]) == 2


def test_top_unknown_sample_index_is_a_usage_error(profdir: Path) -> None:
    code, _, err = run("top", str(profdir / "heap.pb.gz"), "--sample-index", "bogus")
    assert code == 2 and "--sample-index" in err and "inuse_space" in err


def test_top_broken_profile_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "cpu.pb.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00nope")
    code, _, err = run("top", str(bad))
    assert code == 1 and str(bad) in err and "gzip" in err and "Traceback" not in err


def test_top_on_error_body_explains_it(tmp_path: Path) -> None:
    body = tmp_path / "cpu.pb.gz"
    body.write_bytes(b"Could not enable CPU profiling: cpu profiling already in use\n")
    code, _, err = run("top", str(body))
    assert code == 1 and "only one can run at once" in err


def test_goroutines_outputs(profdir: Path) -> None:
    code, out, _ = run("goroutines", str(profdir / "goroutine-debug2.txt"), "-o", "json")
    assert code == 0
    data = json.loads(out)
    assert data["groups"][0]["function"] == "main.parkedWorker" and data["groups"][0]["suspect"]
    code, out, _ = run("goroutines", str(profdir / "goroutine-debug2.txt"))
    assert code == 0 and "leak suspect" in out and "main.parkedWorker" in out


def test_diff_of_two_profiles(profdir: Path) -> None:
    code, out, _ = run("diff", str(profdir / "snapshots/00/heap.pb.gz"),
                       str(profdir / "snapshots/01/heap.pb.gz"), "-o", "json")
    assert code == 0
    assert json.loads(out)["rows"][0]["function"] == "main.growingAlloc"


def test_diff_of_two_bundles_and_mixed_inputs(profdir: Path, tmp_path: Path) -> None:
    old = make_bundle(profdir, tmp_path / "old")
    new = make_bundle(profdir, tmp_path / "new")
    (old / "proc/fd-count.txt").write_text("10\n")
    packed = tmp_path / f"{STEM}.tar.gz"
    with tarfile.open(packed, "w:gz") as tf:
        tf.add(new, arcname=STEM)
    code, out, _ = run("diff", str(old), str(packed))
    assert code == 0 and "Open fds: 10 -> 950 (+940)" in out
    code, _, err = run("diff", str(old), str(profdir / "heap.pb.gz"))
    assert code == 2 and "both be profiles or both be bundles" in err


def test_report_writes_html_and_speedscope(profdir: Path, tmp_path: Path) -> None:
    bundle = make_bundle(profdir, tmp_path)
    html_file, ss_file = tmp_path / "r.html", tmp_path / "r.speedscope.json"
    code, out, _ = run("report", str(bundle), "--html", str(html_file), "--speedscope", str(ss_file),
                       "-o", "json")
    assert code == 0
    assert json.loads(out)["findings"][0]["subject"] == "main.parkedWorker"
    assert "flamebox" in html_file.read_text() and json.loads(ss_file.read_text())["profiles"]
    code, out, _ = run("report", str(bundle))
    assert code == 0 and out.index("goroutine leak suspect") < out.index("CPU:")


def test_report_rejects_a_profile_as_bundle_and_suggests_top(profdir: Path) -> None:
    code, _, err = run("report", str(profdir / "cpu.pb.gz"))
    assert code == 2 and "is a single profile, not a bundle" in err and "kubectl debugcap top" in err


# ---- corrupt and partial input ----


def test_report_on_a_truncated_bundle_exits_non_zero_naming_the_member(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path).path
    cut_in_half(bundle)
    code, out, err = run("report", str(bundle))
    assert code == 4 and out == ""
    assert "cut short or damaged at trace/trace.out" in err and f"kubectl debugcap verify {bundle}" in err
    code, out, err = run("report", str(bundle), "--force")
    assert code == 0 and "Problems:\n  unverified (read with --force)" in out and "Open fds: 950" in out
    # Said before the findings and on stderr, as top, goroutines and trace say it; what the cut took
    # is lost, not "Missing" from the capture.
    warnings = [ln for ln in out.splitlines() if ln.startswith("WARNING: unverified (read with --force)")]
    assert len(warnings) == 2 and out.index(warnings[0]) < out.index("Findings (most serious first):")
    assert "Missing:" not in out and "lost to the damage: trace/trace.out" in warnings[1]
    assert err.splitlines() == [w.replace("WARNING: ", "warning: ", 1) for w in warnings]
    code, out, err = run("report", str(bundle), "--force", "-o", "json")
    assert code == 0 and json.loads(out)["problems"][0].startswith("unverified")
    assert err.startswith("warning: unverified (read with --force)")
    code, out, err = run("report", str(write_bundle(tmp_path / "good").path))
    assert code == 0 and "WARNING" not in out and err == ""


def test_report_on_a_bundle_with_a_flipped_byte_exits_non_zero_naming_the_member(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, compresslevel=0).path
    flip(bundle, bundle.read_bytes().index(MARKER))
    code, out, err = run("report", str(bundle))
    assert code == 4 and out == ""
    assert "fails its checks, first at proc/ps.txt: sha-mismatch" in err and "kubectl debugcap verify" in err


def test_report_on_a_directory_of_only_pprof_says_what_a_bundle_is(tmp_path: Path) -> None:
    (tmp_path / "pprof").mkdir()
    (tmp_path / "pprof/cpu.pb.gz").write_bytes(fixed_cpu_profile())
    code, _, err = run("report", str(tmp_path))
    assert code == 2 and "not a debugcap bundle: it has no manifest.json" in err and "a bundle is" in err
    code, out, _ = run("report", str(tmp_path), "--force")
    assert code == 0 and "unverified (read with --force)" in out and "main.mixStep" in out


def test_an_execution_trace_is_pointed_to_the_trace_command(tmp_path: Path) -> None:
    trace = tmp_path / "trace.out"
    trace.write_bytes(GOAPP_TRACE.read_bytes())
    for args in (["report", str(trace)], ["top", str(trace)], ["goroutines", str(trace)],
                 ["diff", str(trace), str(trace)]):
        code, _, err = run(*args)
        assert code == 2 and "is an execution trace" in err and f"kubectl debugcap trace {trace}" in err, args


def test_trace_force_on_a_bundle_cut_inside_its_trace_reads_what_precedes_the_cut(tmp_path: Path) -> None:
    data = GOAPP_TRACE.read_bytes()
    bundle = write_bundle(tmp_path, compresslevel=0, trace=data).path
    raw = bundle.read_bytes()
    bundle.write_bytes(raw[: raw.index(data[:64]) + len(data) * 9 // 10])
    assert CliRunner().invoke(cli.cli, ["trace", str(bundle)]).exit_code == 4
    res = CliRunner().invoke(cli.cli, ["trace", str(bundle), "--force", "-o", "json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["generations"] >= 1
    assert doc["cut"].startswith("trace/trace.out is the member the bundle's damage cut: ")
    assert "has no execution trace" not in res.stderr and "warning: unverified (read with --force)" in res.stderr
    bundle.write_bytes(raw[: raw.index(data[:64]) + 1000])
    res = CliRunner().invoke(cli.cli, ["trace", str(bundle), "--force"])
    assert res.exit_code == 1 and "trace/trace.out is the member the bundle's damage cut" in res.stderr
    assert "no complete generation to read" in res.stderr and "has no execution trace" not in res.stderr


def test_a_trace_of_only_its_header_is_an_error(tmp_path: Path) -> None:
    trace = tmp_path / "trace.out"
    trace.write_bytes(GOAPP_TRACE.read_bytes()[:16])
    res = CliRunner().invoke(cli.cli, ["trace", str(trace)])
    assert res.exit_code == 1 and "no complete generation to read" in res.stderr


def test_report_on_a_dump_suggests_goroutines() -> None:
    code, _, err = run("report", str(GOAPP_DUMPS / "goroutine-debug1.txt"))
    assert code == 2 and "kubectl debugcap goroutines" in err


def test_top_reads_a_profile_out_of_a_bundle(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path).path
    code, out, _ = run("top", str(bundle), "--profile", "cpu")
    assert code == 0 and "Type: cpu" in out and "main.mixStep" in out
    code, _, err = run("top", str(bundle))
    assert code == 2 and "name the profile to show with --profile" in err
    code, _, err = run("top", str(bundle), "--profile", "heap")
    assert code == 1 and "has no pprof/heap.pb.gz; its profiles: cpu" in err
    code, _, err = run("top", str(GOAPP_DUMPS / "cpu.pb.gz"), "--profile", "cpu")
    assert code == 2 and "--profile applies to a bundle" in err


def test_top_and_goroutines_on_a_cut_bundle_need_force(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path).path
    cut_in_half(bundle)
    assert "pprof/cpu.pb.gz" in BEFORE_TRACE  # read before the cut: readable with --force
    for args in (["top", str(bundle), "--profile", "cpu"], ["goroutines", str(bundle)]):
        code, _, err = run(*args)
        assert code == 4 and "trace/trace.out" in err
        code, out, err = run(*args, "--force", "-o", "json")
        doc = json.loads(out)
        assert code == 0 and doc["unverified"][0].startswith("unverified") and doc["bundle"] == str(bundle)
        assert err.startswith("warning: unverified")
    code, out, _ = run("goroutines", str(bundle), "--force")
    assert "60 goroutines" in out and "main.leakWorker" in out


def test_top_and_goroutines_on_a_bundle_cut_before_the_member_say_it_was_lost_not_missing(tmp_path: Path) -> None:
    # The trace (incompressible, most of the archive) comes first: half the file ends inside it,
    # before the CPU profile and the dump, as on a capture whose trace is written before its profiles.
    files = {layout.PROC_FD_COUNT: b"950\n", layout.TRACE: TRACE, layout.PPROF_CPU: fixed_cpu_profile(),
             layout.PPROF_GOROUTINE_DEBUG2: DUMP}
    bundle = write_bundle(tmp_path, files=files).path
    cut_in_half(bundle)
    code, _, err = run("top", str(bundle), "--profile", "cpu", "--force")
    assert code == 1 and "has no pprof/cpu.pb.gz" not in err
    assert (f"{bundle}: pprof/cpu.pb.gz may have been lost to the bundle's damage: the members after "
            f"{layout.TRACE}, manifest.json among them, could not be read; its readable profiles: none") in err
    assert f"kubectl debugcap verify {bundle}" in err
    code, _, err = run("goroutines", str(bundle), "--force")
    assert code == 1 and "holds no goroutine dump" not in err
    assert "pprof/goroutine-debug2.txt may have been lost to the bundle's damage" in err
    # The member the cut went through is named as that.
    bundle = write_bundle(tmp_path / "b", files={layout.PROC_FD_COUNT: b"950\n", layout.PPROF_HEAP: TRACE}).path
    cut_in_half(bundle)
    code, _, err = run("top", str(bundle), "--profile", "heap", "--force")
    assert code == 1 and ("pprof/heap.pb.gz was lost to the bundle's damage: it is the member the damage cut "
                          "(only its first ") in err
    # Intact and without the member: missing from the capture, as before.
    bundle = write_bundle(tmp_path / "c", files={layout.PROC_FD_COUNT: b"950\n"}).path
    code, _, err = run("top", str(bundle), "--profile", "cpu", "--force")
    assert code == 1 and f"{bundle} has no pprof/cpu.pb.gz; its profiles: none" in err


def test_diff_of_bundles_refuses_a_damaged_one_and_reads_it_with_force(tmp_path: Path) -> None:
    good, cut = write_bundle(tmp_path / "a").path, write_bundle(tmp_path / "b").path
    cut_in_half(cut)
    code, _, err = run("diff", str(good), str(cut))
    assert code == 4 and "trace/trace.out" in err
    code, out, _ = run("diff", str(good), str(cut), "--force")
    assert code == 0 and "note: unverified" in out
    code, _, err = run("diff", str(GOAPP_DUMPS / "cpu.pb.gz"), str(GOAPP_DUMPS / "cpu.pb.gz"), "--force")
    assert code == 2 and "--force applies to a bundle" in err


def test_goroutines_reads_a_debug1_dump() -> None:
    code, out, _ = run("goroutines", str(GOAPP_DUMPS / "goroutine-debug1.txt"), "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["format"] == "debug=1" and doc["total"] == sum(g["count"] for g in doc["groups"]) > 10
    assert any(g["function"] == "main.contendedSection" and g["count"] >= 2 for g in doc["groups"])


def test_a_cut_dump_is_not_called_truncated_at_gos_limit(tmp_path: Path) -> None:
    dump = tmp_path / "goroutine-debug2.txt"
    dump.write_bytes((GOAPP_DUMPS / "goroutine-debug2.txt").read_bytes()[:2000])
    code, out, err = run("goroutines", str(dump))
    assert code == 0 and "64 MB" not in out and "TRUNCATED" not in out
    assert "was cut short: the file ends inside goroutine" in err and "after 2000 bytes" in err
