"""A profile is decompressed a bounded step at a time, never whole (issue 16, hostile pods).

Cases: a gzip bomb fails with TooLarge naming the limit, every decompress call was given a
bounded output size (memory bounded by construction, not measured); a raw protobuf past the
limit is TooLarge too; a valid profile read in small pieces parses as it does whole; damage
after the stream (a second member, garbage) and a truncated stream are still refused when the
stream arrives in pieces.
"""

from __future__ import annotations

import gzip
import io
import types
import zlib
from pathlib import Path
from typing import Any

import pytest

from debugcap import errors
from debugcap.formats import pprof

DATA = Path(__file__).parents[1] / "collectors" / "data" / "go"
BOMB = gzip.compress(b"\0" * (64 << 20))
_DECOMPRESSOBJ = zlib.decompressobj


class _Spy:
    """zlib.decompressobj that records the max_length of every decompress call."""

    def __init__(self, calls: list[int]) -> None:
        self._calls = calls

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        real, calls = _DECOMPRESSOBJ(*args, **kwargs), self._calls

        class Wrapped:
            def decompress(self, data: bytes, max_length: int = 0) -> bytes:
                calls.append(max_length)
                return real.decompress(data, max_length)

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        return Wrapped()


def test_a_bomb_stops_at_the_limit_with_every_step_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    spied = types.SimpleNamespace(decompressobj=_Spy(calls), MAX_WBITS=zlib.MAX_WBITS, error=zlib.error)
    monkeypatch.setattr(pprof, "zlib", spied)
    with pytest.raises(pprof.TooLarge) as raised:
        pprof.read(io.BytesIO(BOMB), "heap.pb.gz", 4 << 20)
    assert raised.value.limit == 4 << 20 and "more than 4 MiB" in str(raised.value)
    assert calls and all(0 < n <= pprof.PIECE for n in calls)
    # It stopped at the limit: no more steps than the limit takes, plus one.
    assert len(calls) <= (4 << 20) // pprof.PIECE + 1


def test_parse_of_bytes_is_bounded_too() -> None:
    with pytest.raises(pprof.TooLarge, match="more than 1 MiB"):
        pprof.parse(BOMB, "x.pb.gz", 1 << 20)


def test_a_raw_protobuf_past_the_limit_is_too_large() -> None:
    raw = gzip.decompress((DATA / "heap.pb.gz").read_bytes())
    with pytest.raises(pprof.TooLarge):
        pprof.read(io.BytesIO(raw), "heap.pb", len(raw) - 1)
    assert pprof.read(io.BytesIO(raw), "heap.pb", len(raw)).sample_types


def test_a_profile_read_in_small_pieces_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (DATA / "heap.pb.gz").read_bytes()
    whole = pprof.parse(data, "heap.pb.gz")
    monkeypatch.setattr(pprof, "PIECE", 7)
    assert pprof.read(io.BytesIO(data), "heap.pb.gz") == whole


@pytest.mark.parametrize(("tail", "what"), [(b"", "truncated"), (b"junk", "trailing garbage"),
                                            (b"second", "concatenated profiles")])
def test_damage_is_found_across_pieces(monkeypatch: pytest.MonkeyPatch, tail: bytes, what: str) -> None:
    data = (DATA / "heap.pb.gz").read_bytes()
    body = data[:-5] if what == "truncated" else data + (gzip.compress(tail) if tail == b"second" else tail)
    monkeypatch.setattr(pprof, "PIECE", 64)
    with pytest.raises(errors.AnalysisError, match=what):
        pprof.read(io.BytesIO(body), "heap.pb.gz")


def test_a_profile_of_too_many_location_references_is_refused_before_it_is_reduced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Many deep identical samples compress to little and cost ~a Python object per reference."""
    from debugcap.formats import pprof_proto

    msg = pprof_proto.Profile()
    msg.string_table.extend(["", "samples", "count", "f"])
    kind = msg.sample_type.add()
    kind.type, kind.unit = 1, 2
    fn = msg.function.add()
    fn.id, fn.name = 1, 3
    for i in range(1, 33):
        loc = msg.location.add()
        loc.id = i
        loc.line.add().function_id = 1
    for _ in range(100):
        sample = msg.sample.add()
        sample.location_id.extend(range(1, 33))
        sample.value.append(1)
    data = gzip.compress(msg.SerializeToString())
    assert len(pprof.parse(data, "deep").stacks) == 100  # 3200 references: read
    monkeypatch.setattr(pprof, "MAX_LOCATION_REFS", 3199)
    with pytest.raises(pprof.TooLarge, match="deep: 100 samples referring to 3200 locations, more than the 3199"):
        pprof.parse(data, "deep")


def test_the_analysis_reads_a_profile_no_further_than_its_limit() -> None:
    """The operator analyses a stored bundle with the capture check's limit, not the format's."""
    from debugcap.analysis.bundle_reading import Reading

    class Reader:
        unverified: list[str] = []

        def read(self, rel: str) -> bytes:
            return gzip.compress(b"\0" * (1 << 20))

        def label(self, rel: str) -> str:
            return f"bundle:{rel}"

    reading = Reading(Reader(), profile_limit=64 << 10)  # type: ignore[arg-type]
    assert reading.profile("pprof/heap.pb.gz", "heap") is None
    assert len(reading.problems) == 1 and "decompresses to more than 65536 bytes" in reading.problems[0]
