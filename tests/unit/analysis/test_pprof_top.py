"""``top`` and ``diff`` agree with ``go tool pprof`` on real profiles.

Cases (each at pprof's default -nodefraction=0.005 and at 0, every row compared):
- cpu (hot function, recursion, an inlined function), default sample type cpu
- heap: inuse_space (default), inuse_objects, alloc_space, alloc_objects
- allocs (default_sample_type alloc_space), goroutine, block, mutex, threadcreate
- diff of two heap snapshots (-diff_base) for each heap sample type, and heap vs allocs
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from debugcap.analysis import pprof
from debugcap.analysis.rendering import pprof_text
from debugcap.formats import pprof as pprof_format

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
