"""Function names are printed as ``go tool pprof`` prints them (its symbolizer's simplification).

Cases:
- a real allocs profile of Go generics (tests/fixtures/genericnames, made by its main.go): the
  ``top`` text equals ``go tool pprof -top`` byte for byte, by default and at -nodefraction=0,
  and the json rows name the same functions;
- the fixture really holds names pprof shortens (else the comparison would prove nothing);
- synthetic profiles for the rule's edges, also against the real tool: a name that differs from its
  system name (kept), an empty name (the system name is used), "::"/"<>" names, an unmatched ")",
  Java's ".<init>", a Go method of a generic type ("]).", kept whole);
- a diff names functions the same way.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from debugcap.formats import pprof as pprof_format
from debugcap.formats import pprof_names, pprof_proto
from debugcap.kubectl_plugin.commands import analyze

GENERICS = Path(__file__).resolve().parents[2] / "fixtures" / "genericnames" / "allocs.pb.gz"


def _go_text(go: str, *args: str) -> str:
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


def test_the_fixture_has_generic_names_with_argument_lists() -> None:
    msg = pprof_proto.Profile()
    msg.ParseFromString(gzip.decompress(GENERICS.read_bytes()))
    raw = {msg.string_table[f.system_name] for f in msg.function}
    assert "main.Alloc[go.shape.func(int) string]" in raw
    assert "main.(*Box[go.shape.func(int) string]).Fill" in raw


@pytest.mark.parametrize(("ours", "theirs"), [([], []), (["--node-fraction", "0"], ["-nodefraction=0"]),
                                              (["--sample-index", "alloc_objects"], ["-sample_index=alloc_objects"])])
def test_top_of_generics_is_go_tool_pprofs_byte_for_byte(go: str, ours: list[str], theirs: list[str]) -> None:
    expected = _go_text(go, *theirs, str(GENERICS))
    assert "main.Alloc[go.shape.func string]" in expected  # pprof's shortened name
    assert _ours("top", str(GENERICS), *ours) == expected


def test_json_rows_use_the_printed_names() -> None:
    rows = json.loads(_ours("top", str(GENERICS), "-o", "json", "--node-fraction", "0"))["rows"]
    names = {r["function"] for r in rows}
    assert {"main.Alloc[go.shape.func string]", "main.Pair[go.shape.func ].Grow",
            "main.(*Box[go.shape.func(int) string]).Fill", "main.Alloc[go.shape.chan<- int]"} <= names
    assert not any("go.shape.func(int) string]." in n and "])." not in n for n in names)


# (name, system_name) of each function; pprof's output decides what each one prints as.
EDGE_NAMES = [
    ("main.F[go.shape.func(int, string) error]", "main.F[go.shape.func(int, string) error]"),
    ("main.(*T[go.shape.func()]).M", "main.(*T[go.shape.func()]).M"),
    ("ns::Widget<int>::draw(int) const", "ns::Widget<int>::draw(int) const"),
    ("pkg.G[a(b]c)d", "pkg.G[a(b]c)d"),
    ("pkg.H[x(y)z)w(v)]", "pkg.H[x(y)z)w(v)]"),  # ")" unmatched after a removed group
    ("java.Foo.<init>(I)[x]", "java.Foo.<init>(I)[x]"),
    ("kept.Name[by(hand)]", "other.System[name(args)]"),  # name differs from system name: kept
    ("", "from.System[name(args)]"),  # no name: the system name, simplified
    ("lone.Less[chan<- int](x)", "lone.Less[chan<- int](x)"),
]


def _edge_profile(scale: int = 1) -> bytes:
    p = pprof_proto.Profile()
    strings = ["", "samples", "count", "space", "bytes", "/srv/bin/app"]

    def idx(s: str) -> int:
        if s not in strings:
            strings.append(s)
        return strings.index(s)

    p.sample_type.add(type=1, unit=2)
    p.sample_type.add(type=3, unit=4)
    p.mapping.add(id=1, memory_start=0x400000, memory_limit=0x800000, filename=5, has_functions=True)
    for i, (name, system) in enumerate(EDGE_NAMES, start=1):
        p.function.add(id=i, name=idx(name), system_name=idx(system))
        p.location.add(id=i, mapping_id=1, address=0x400000 + i).line.add(function_id=i, line=1)
        p.sample.add(location_id=[i], value=[1, 1000 * i * (scale if i % 2 else 1)])
    p.string_table.extend(strings)
    return gzip.compress(p.SerializeToString())


def test_edge_names_print_as_pprof_prints_them(tmp_path: Path, go: str) -> None:
    path = tmp_path / "edges.pb.gz"
    path.write_bytes(_edge_profile())
    expected = _go_text(go, "-nodefraction=0", str(path))
    assert _ours("top", str(path), "--node-fraction", "0") == expected
    printed = set(pprof_format.load(path).node_names)
    assert {"main.F[go.shape.func error]", "main.(*T[go.shape.func()]).M", "ns::Widget::draw const",
            "kept.Name[by(hand)]", "from.System[name]", "java.Foo.<init>(I)[x]"} <= printed


def test_diff_names_functions_as_pprof_does(tmp_path: Path, go: str) -> None:
    base, new = tmp_path / "base.pb.gz", tmp_path / "new.pb.gz"
    base.write_bytes(_edge_profile())
    new.write_bytes(_edge_profile(scale=3))
    expected = _go_text(go, "-nodefraction=0", f"-diff_base={base}", str(new))
    assert "main.F[go.shape.func error]" in expected
    assert _ours("diff", str(base), str(new), "--node-fraction", "0") == expected


def test_remove_matching_stops_at_an_unmatched_close_keeping_what_it_removed() -> None:
    assert pprof_names.printed_name("pkg.H[x(y)z)w(v)]", "pkg.H[x(y)z)w(v)]") == "pkg.H[xz)w(v)]"
    assert pprof_names.printed_name("plain.Go.func1", "plain.Go.func1") == "plain.Go.func1"
    assert pprof_names.printed_name("main.(*T).M", "main.(*T).M") == "main.(*T).M"  # no brackets: not C++
