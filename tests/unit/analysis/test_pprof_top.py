"""``top`` and ``diff`` agree with ``go tool pprof`` on real profiles.

Cases (each at pprof's default -nodefraction=0.005 and at 0, every row compared):
- cpu (hot function, recursion, an inlined function), default sample type cpu
- heap: inuse_space (default), inuse_objects, alloc_space, alloc_objects
- allocs (default_sample_type alloc_space), goroutine, block, mutex, threadcreate
- diff of two heap snapshots (-diff_base) for each heap sample type, and heap vs allocs
- the default sample type of a diff, as -diff_base picks it from the merged profile
- the ``top`` and ``diff`` commands' text against ``go tool pprof -top`` line by line, header
  included, on profgen's and goapp's real profiles (CPU in ms and in s, heap, allocs, goroutine,
  block, mutex, threadcreate; node counts and fractions; diffs) and on synthetic profiles for what
  real ones rarely show (a 1.9e-05% row, an unknown unit, comments, a build id). No line is exempt.
"""

from __future__ import annotations

import gzip
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from debugcap.analysis import pprof
from debugcap.analysis.rendering import pprof_text
from debugcap.formats import pprof as pprof_format
from debugcap.formats import pprof_proto
from debugcap.kubectl_plugin.commands import analyze

CASES = [
    ("cpu.pb.gz", None, "ns"),
    ("heap.pb.gz", None, "B"),
    ("heap.pb.gz", "inuse_space", "B"),
    ("heap.pb.gz", "inuse_objects", None),
    ("heap.pb.gz", "alloc_space", "B"),
    ("heap.pb.gz", "alloc_objects", None),
    ("allocs.pb.gz", None, "B"),
    ("goroutine.pb.gz", None, None),
    ("block.pb.gz", None, "ns"),
    ("block.pb.gz", "contentions", None),
    ("mutex.pb.gz", None, "ns"),
    ("threadcreate.pb.gz", None, None),
]
Rows = list[tuple[str, int, int]]


def _rows(rep: pprof.TopReport) -> Rows:
    return [(r["function"], r["flat"], r["cum"]) for r in rep["rows"]]


@pytest.mark.parametrize("node_fraction", ["0", "0.005"])
@pytest.mark.parametrize(("name", "index", "unit"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_top_matches_go_tool_pprof(profdir: Path, go_top: Callable[..., Rows], name: str,
                                   index: str | None, unit: str | None, node_fraction: str) -> None:
    path = profdir / name
    rep = pprof.top(pprof_format.load(path), index, float(node_fraction))
    expected = go_top(path, sample_index=index, unit=unit, node_fraction=node_fraction)
    assert expected, "pprof printed no rows; the fixture profile is empty"
    assert _rows(rep) == expected


def test_cpu_profile_has_the_features_the_comparison_relies_on(profdir: Path) -> None:
    prof = pprof_format.load(profdir / "cpu.pb.gz")
    rep = pprof.top(prof)
    names = [r["function"] for r in rep["rows"]]
    assert rep["sample_type"] == "cpu" and rep["unit"] == "nanoseconds"
    assert {"main.hotLoop", "main.recurse", "main.mixStep"} <= set(names)
    # mixStep is inlined into hotLoop: its own node, with an inline label.
    assert prof.inline_label[prof.node_names.index("main.mixStep")] == "(inline)"
    recurse = next(r for r in rep["rows"] if r["function"] == "main.recurse")
    # Recursion is counted once per sample: cum can never exceed the total.
    assert recurse["cum"] <= rep["total"]
    assert any(st.count(prof.node_names.index("main.recurse")) > 1
               for st in pprof.node_stacks(prof, 1))


def test_total_percentages_and_sum_follow_pprof(profdir: Path) -> None:
    rep = pprof.top(pprof_format.load(profdir / "heap.pb.gz"), "alloc_space")
    assert rep["total"] == sum(r["flat"] for r in rep["rows"])
    assert rep["rows"][-1]["sum_pct"] == pytest.approx(100.0)
    first = rep["rows"][0]
    assert first["flat_pct"] == pytest.approx(100 * first["flat"] / rep["total"])


def test_default_sample_types_are_chosen_as_pprof_does(profdir: Path) -> None:
    assert pprof.top(pprof_format.load(profdir / "heap.pb.gz"))["sample_type"] == "inuse_space"
    assert pprof.top(pprof_format.load(profdir / "allocs.pb.gz"))["sample_type"] == "alloc_space"
    assert pprof.top(pprof_format.load(profdir / "block.pb.gz"))["sample_type"] == "delay"
    prof = pprof_format.load(profdir / "heap.pb.gz")
    assert pprof.sample_index(prof, "0") == 0
    with pytest.raises(pprof.UnknownSampleTypeError, match="must be one of"):
        pprof.sample_index(prof, "nope")


HEAP_INDICES = [("inuse_space", "B"), ("inuse_objects", None), ("alloc_space", "B"), ("alloc_objects", None)]


@pytest.mark.parametrize("node_fraction", ["0", "0.005"])
@pytest.mark.parametrize(("index", "unit"), HEAP_INDICES, ids=[i for i, _ in HEAP_INDICES])
def test_diff_matches_go_tool_pprof_diff_base(profdir: Path, go_top: Callable[..., Rows], index: str,
                                              unit: str | None, node_fraction: str) -> None:
    base, new = profdir / "snapshots/00/heap.pb.gz", profdir / "snapshots/01/heap.pb.gz"
    rep = pprof.diff(pprof_format.load(base), pprof_format.load(new), index, float(node_fraction))
    expected = go_top(new, sample_index=index, unit=unit, node_fraction=node_fraction, diff_base=base)
    assert _rows(rep) == expected
    assert any(flat > 0 for _, flat, _ in expected), "snapshot 01 should have grown"
    # Percentages are of the base total, as with pprof -diff_base.
    assert rep["total"] == pprof.total(pprof_format.load(base), pprof.sample_index(pprof_format.load(base), index))


def test_diff_of_identical_profiles_is_empty(profdir: Path) -> None:
    prof = pprof_format.load(profdir / "heap.pb.gz")
    assert pprof.diff(prof, prof)["rows"] == []


def test_diff_heap_against_allocs_matches_go(profdir: Path, go_top: Callable[..., Rows]) -> None:
    base, new = profdir / "allocs.pb.gz", profdir / "heap.pb.gz"
    rep = pprof.diff(pprof_format.load(base), pprof_format.load(new), "alloc_space")
    assert _rows(rep) == go_top(new, sample_index="alloc_space", unit="B", diff_base=base)


def test_diff_refuses_incompatible_profiles(profdir: Path) -> None:
    from debugcap.errors import AnalysisError

    with pytest.raises(AnalysisError, match="incompatible period types"):
        pprof.diff(pprof_format.load(profdir / "cpu.pb.gz"), pprof_format.load(profdir / "heap.pb.gz"))


def test_render_top_is_aligned_like_pprof(profdir: Path) -> None:
    prof = pprof_format.load(profdir / "cpu.pb.gz")
    text = pprof_text.render_top(pprof.top(prof), prof, limit=3)
    lines = text.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["flat", "flat%"])
    assert lines[header] == "      flat  flat%   sum%        cum   cum%"
    body = lines[header + 1:]
    assert len(body) == 3
    assert "Showing top 3 nodes" in text
    assert any(ln.endswith("main.mixStep (inline)") for ln in body) or "main.mixStep" not in text
    # flat column right-aligned in 10 characters, as pprof's "%10s".
    assert all(ln[10] == " " and ln[:10].strip() for ln in body)


# ---- the -top text, byte for byte ----

GOAPP_DUMPS = Path(__file__).resolve().parents[2] / "fixtures" / "goapp-dumps"
GOAPP_PROFILES = Path(__file__).resolve().parents[2] / "fixtures" / "goapp-profiles"

# (profile, our flags, pprof's flags): profgen's, a 5 s CPU profile of goapp's busy loop (values in
# seconds), and goapp's contention and heap profiles.
TEXT_CASES = [
    ("cpu.pb.gz", [], []),
    ("cpu.pb.gz", ["--limit", "3"], ["-nodecount=3"]),
    ("cpu.pb.gz", ["--node-fraction", "0"], ["-nodefraction=0"]),
    ("heap.pb.gz", [], []),
    ("heap.pb.gz", ["--sample-index", "alloc_objects"], ["-sample_index=alloc_objects"]),
    ("heap.pb.gz", ["--sample-index", "alloc_space", "--node-fraction", "0"], ["-sample_index=alloc_space",
                                                                               "-nodefraction=0"]),
    ("allocs.pb.gz", [], []),
    ("allocs.pb.gz", ["--limit", "5"], ["-nodecount=5"]),
    ("goroutine.pb.gz", [], []),
    ("block.pb.gz", [], []),
    ("block.pb.gz", ["--sample-index", "contentions"], ["-sample_index=contentions"]),
    ("mutex.pb.gz", [], []),
    ("threadcreate.pb.gz", [], []),
    ("goapp-dumps/cpu.pb.gz", [], []),
    ("goapp-dumps/cpu.pb.gz", ["--node-fraction", "0"], ["-nodefraction=0"]),
    ("goapp-profiles/cpu.pb.gz", [], []),
    ("goapp-profiles/mutex.pb.gz", [], []),
    ("goapp-profiles/block.pb.gz", ["--node-fraction", "0"], ["-nodefraction=0"]),
    ("goapp-profiles/heap.pb.gz", ["--sample-index", "alloc_space"], ["-sample_index=alloc_space"]),
]


def _path(profdir: Path, name: str) -> Path:
    if name.startswith("goapp-dumps/"):
        return GOAPP_DUMPS / name.split("/", 1)[1]
    if name.startswith("goapp-profiles/"):
        return GOAPP_PROFILES / name.split("/", 1)[1]
    return profdir / name


def _go_text(go: str, *args: str) -> str:
    # Both processes read the same TZ, so pprof's "Time:" line and ours name the same zone.
    env = {**os.environ, "GOTOOLCHAIN": "local"}
    return subprocess.run([go, "tool", "pprof", "-top", *args], capture_output=True, text=True, check=True,
                          env=env, timeout=120).stdout


def _ours(*args: str) -> str:
    group = click.Group("debugcap")
    for c in analyze.COMMANDS:
        group.add_command(c)
    res = CliRunner().invoke(group, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


@pytest.mark.parametrize(("name", "ours", "theirs"), TEXT_CASES,
                         ids=[f"{c[0]}{''.join(c[2])}" for c in TEXT_CASES])
def test_top_text_is_go_tool_pprofs_line_for_line(profdir: Path, go: str, name: str, ours: list[str],
                                                   theirs: list[str]) -> None:
    path = _path(profdir, name)
    expected = _go_text(go, *theirs, str(path)).splitlines()
    got = _ours("top", str(path), *ours).splitlines()
    assert len(expected) > 5
    for number, (want, have) in enumerate(zip(expected, got, strict=True), start=1):
        assert have == want, f"line {number} differs"


DIFF_CASES = [
    ("snapshots/00/heap.pb.gz", "snapshots/01/heap.pb.gz", [], []),
    ("snapshots/00/heap.pb.gz", "snapshots/01/heap.pb.gz", ["--sample-index", "inuse_objects"],
     ["-sample_index=inuse_objects"]),
    ("goapp-profiles/heap-00.pb.gz", "goapp-profiles/heap.pb.gz", ["--node-fraction", "0"], ["-nodefraction=0"]),
    ("allocs.pb.gz", "heap.pb.gz", [], []),  # pprof takes allocs' default sample type: alloc_space
    ("heap.pb.gz", "allocs.pb.gz", [], []),
]


@pytest.mark.parametrize(("base", "new", "ours", "theirs"), DIFF_CASES,
                         ids=[f"{c[0]}->{c[1]}{''.join(c[3])}" for c in DIFF_CASES])
def test_diff_text_is_go_tool_pprof_diff_bases_line_for_line(profdir: Path, go: str, base: str, new: str,
                                                               ours: list[str], theirs: list[str]) -> None:
    b, n = _path(profdir, base), _path(profdir, new)
    expected = _go_text(go, *theirs, f"-diff_base={b}", str(n)).splitlines()
    got = _ours("diff", str(b), str(n), *ours).splitlines()
    for number, (want, have) in enumerate(zip(expected, got, strict=True), start=1):
        assert have == want, f"line {number} differs"


def test_diff_without_a_sample_index_picks_as_pprof_does(profdir: Path, go_top: Callable[..., Rows]) -> None:
    base, new = profdir / "allocs.pb.gz", profdir / "heap.pb.gz"
    rep = pprof.diff(pprof_format.load(base), pprof_format.load(new))
    # heap.pb.gz names no default sample type (its top is inuse_space, the last); allocs.pb.gz
    # names alloc_space, and the merged profile takes the first default it finds: NEW's, then BASE's.
    assert pprof_format.load(new).default_sample_type == ""
    assert rep["sample_type"] == "alloc_space"
    assert _rows(rep) == go_top(new, unit="B", diff_base=base)
    # A number counts in the sample types both profiles have, in NEW's order.
    assert pprof.diff(pprof_format.load(base), pprof_format.load(new), "1")["sample_type"] == "alloc_space"


def _synthetic(rows: list[tuple[str, int]], unit: str, *, duration_ns: int = 0) -> bytes:
    """A profile with one sample per function, its own mapping, comment and time: pprof's whole header."""
    p = pprof_proto.Profile()
    strings = ["", "samples", "count", "value", unit, "/srv/bin/shop", "abc123", "built by hand", "#hidden"]
    p.sample_type.add(type=1, unit=2)
    p.sample_type.add(type=3, unit=4)
    p.period_type.type, p.period_type.unit = 3, 4
    p.period = 1
    p.duration_nanos = duration_ns
    p.time_nanos = 1_795_000_000 * 10**9 + 123
    p.mapping.add(id=1, memory_start=0x400000, memory_limit=0x800000, filename=5, build_id=6, has_functions=True)
    p.comment.extend([7, 8])
    for i, (name, value) in enumerate(rows, start=1):
        strings.append(name)
        p.function.add(id=i, name=len(strings) - 1)
        p.location.add(id=i, mapping_id=1, address=0x400000 + i).line.add(function_id=i, line=1)
        p.sample.add(location_id=[i], value=[1, value])
    p.string_table.extend(strings)
    return gzip.compress(p.SerializeToString())


@pytest.mark.parametrize(("rows", "unit", "duration"), [
    ([("main.big", 5_263_157), ("main.tiny", 1)], "bytes", 0),  # 1.9e-05%
    ([("main.spin", 5_900_000_000), ("main.idle", 10_000_000)], "nanoseconds", 30 * 10**9),  # 5.90s
    ([("main.a", 3), ("main.b", 1)], "widgets", 10**9),  # a unit pprof does not know, and no ratio
], ids=["tiny-percentage", "seconds", "unknown-unit"])
def test_synthetic_profiles_print_as_pprof_prints_them(tmp_path: Path, go: str, rows: list[tuple[str, int]],
                                                       unit: str, duration: int) -> None:
    path = tmp_path / "p.pb.gz"
    path.write_bytes(_synthetic(rows, unit, duration_ns=duration))
    assert _ours("top", str(path), "--node-fraction", "0") == _go_text(go, "-nodefraction=0", str(path))


def test_units_and_percentages_are_formatted_as_pprof_formats_them() -> None:
    assert pprof_text.scaled_label(5_900_000_000, "nanoseconds", "s") == "5.90s"
    assert pprof_text.scaled_label(5_900_000_000, "nanoseconds", "ms") == "5900ms"
    assert pprof_text.scaled_label(1, "nanoseconds", "s") == "0"
    assert pprof_text.scaled_label(3_600 * 10**9, "nanoseconds", "auto") == "1hrs"
    assert pprof_text.scaled_label(1536, "bytes", "minimum") == "1.50kB"
    assert pprof_text.percentage(1, 5_263_157) == "1.9e-05%"
    assert pprof_text.percentage(999_600, 1_000_000) == "  100%"
    assert pprof_text.percentage(-5, 100) == " 5.00%"
    # The smallest node picks the unit, unless the total is over 100 times larger in a larger one.
    assert pprof_text.output_unit("nanoseconds", [(5_900_000_000, 0), (10_000_000, 0)], 5_910_000_000) == "s"
    assert pprof_text.output_unit("nanoseconds", [(200_000_000, 0), (10_000_000, 0)], 210_000_000) == "ms"
