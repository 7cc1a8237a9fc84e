"""The analyze commands: output formats, exit codes and messages.

Cases: top json equals go tool pprof at its defaults; top table; unknown
sample index (usage error, exit 2); broken profile (exit 1, file named);
error body explained; goroutines json/table; diff of profiles and of bundles;
profile mixed with bundle; report json/table with --html and --speedscope;
registration list.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import click
from click.testing import CliRunner

from debugcap.kubectl_plugin.commands import analyze

from .test_report import STEM, make_bundle


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


def test_report_rejects_a_profile_as_bundle(profdir: Path) -> None:
    code, _, err = run("report", str(profdir / "cpu.pb.gz"))
    assert code == 2 and "neither a bundle directory nor a .tar.gz bundle" in err
