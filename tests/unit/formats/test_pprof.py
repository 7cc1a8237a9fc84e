"""The profile reader rejects what pprof rejects, always with AnalysisError naming the file.

Cases: empty file, bad gzip, truncated gzip, gzip holding nothing, concatenated
profiles, trailing garbage, text error body, bad protobuf, empty string table,
string_table[0] not "", string index out of range, id 0, duplicate ids,
dangling location/function/mapping ids, value count != sample types, samples
without sample types; a valid profile's reduction (inlined frames, unnamed
frames); then fuzzing with random bytes.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debugcap.errors import AnalysisError
from debugcap.formats import pprof, pprof_proto


def _valid() -> Any:
    p = pprof_proto.Profile()
    p.string_table.extend(["", "samples", "count", "main.f", "main.go", "/bin/app"])
    p.sample_type.add(type=1, unit=2)
    p.mapping.add(id=1, filename=5)
    p.function.add(id=1, name=3, filename=4)
    loc = p.location.add(id=1, mapping_id=1)
    loc.line.add(function_id=1, line=3)
    p.sample.add(location_id=[1], value=[5])
    return p


def _bytes(p: Any) -> bytes:
    return bytes(gzip.compress(p.SerializeToString()))


def test_valid_handmade_profile_reads_gzip_and_raw() -> None:
    p = _valid()
    for data in (_bytes(p), p.SerializeToString()):
        prof = pprof.parse(data, "x.pb.gz")
        assert prof.sample_types == [pprof.SampleType("samples", "count")]
        assert prof.node_names == ["main.f"] and prof.node_files == ["main.go"]
        assert prof.stacks == [(1,)] and prof.values == [(5,)] and prof.loc_nodes == {1: (0,)}


def test_inlined_and_unnamed_frames_become_nodes_of_their_own() -> None:
    p = _valid()
    p.string_table.append("main.g")
    p.function.add(id=2, name=len(p.string_table) - 1, filename=4)
    inl = p.location.add(id=2, mapping_id=1)
    inl.line.add(function_id=2, line=7)  # innermost first: g was inlined into f
    inl.line.add(function_id=1, line=8)
    p.location.add(id=3, mapping_id=1)  # no line: pprof names it after the mapping's file
    p.sample.add(location_id=[2, 3], value=[1])
    prof = pprof.parse(_bytes(p), "x.pb.gz")
    assert prof.node_names == ["main.f", "main.g", "[app]"]
    assert prof.loc_nodes[2] == (1, 0)
    assert prof.inline_label == {0: "", 1: "(inline)", 2: ""}


def _mutate(field: str) -> bytes:
    p = _valid()
    if field == "string0":
        p.string_table[0] = "x"
    elif field == "no-strings":
        del p.string_table[:]
    elif field == "string-range":
        p.function[0].name = 99
    elif field == "sample-type-string":
        p.sample_type[0].unit = 1000
    elif field == "label-string":
        p.sample[0].label.add(key=77, str=1)
    elif field == "location":
        p.sample[0].location_id[:] = [7]
    elif field == "function":
        p.location[0].line[0].function_id = 9
    elif field == "mapping":
        p.location[0].mapping_id = 4
    elif field == "location-id0":
        p.location[0].id = 0
    elif field == "dup-function":
        p.function.add(id=1, name=3)
    elif field == "values":
        p.sample[0].value.append(3)
    elif field == "no-types":
        del p.sample_type[:]
    return _bytes(p)


MALFORMED = [
    ("string0", "string_table\\[0\\] must be the empty string"),
    ("no-strings", "string_table\\[0\\]"),
    ("string-range", "function.name refers to string 99"),
    ("sample-type-string", "sample_type.unit refers to string 1000"),
    ("label-string", "label.key refers to string 77"),
    ("location", "sample refers to location 7, which does not exist"),
    ("function", "location 1 refers to function 9, which does not exist"),
    ("mapping", "location 1 refers to mapping 4, which does not exist"),
    ("location-id0", "location with reserved id 0"),
    ("dup-function", "multiple functions with id 1"),
    ("values", "sample has 2 values for 1 sample types"),
    ("no-types", "missing sample type information"),
]


@pytest.mark.parametrize(("field", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_profile_is_rejected_naming_the_file(field: str, message: str) -> None:
    with pytest.raises(AnalysisError, match=message) as info:
        pprof.parse(_mutate(field), "bundle/pprof/heap.pb.gz")
    assert str(info.value).startswith("bundle/pprof/heap.pb.gz: malformed profile")


BROKEN_FILES = [
    (b"", "empty file"),
    (b"\x1f\x8b\x08\x00garbage-not-deflate", "not a valid gzip stream"),
    (gzip.compress(b"\x0a\x02\x08\x01" * 100)[:-12], "truncated"),
    (gzip.compress(b""), "gzip stream holds no data"),
    (gzip.compress(b"\x32\x00") + gzip.compress(b"\x32\x00"), "concatenated profiles detected"),
    (gzip.compress(b"\x32\x00") + b"junk", "trailing garbage"),
    (b"Could not enable CPU profiling: cpu profiling already in use\n", "holds text, not a profile"),
    (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "not a pprof protobuf"),
]


@pytest.mark.parametrize(("data", "message"), BROKEN_FILES,
                         ids=["empty", "bad-gzip", "truncated-gzip", "empty-gzip", "concatenated",
                              "trailing", "text", "bad-protobuf"])
def test_broken_file_is_rejected(data: bytes, message: str) -> None:
    with pytest.raises(AnalysisError, match=message) as info:
        pprof.parse(data, "p.pb.gz")
    assert "p.pb.gz" in str(info.value)


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="cannot read profile"):
        pprof.load(tmp_path / "nope.pb.gz")


def _check_only_analysis_error(data: bytes) -> None:
    try:
        pprof.parse(data, "fuzz")
    except AnalysisError:
        return


FUZZ = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes_raise_only_analysis_error(data: bytes) -> None:
    _check_only_analysis_error(data)
    _check_only_analysis_error(gzip.compress(data))
