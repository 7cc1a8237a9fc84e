"""Write pprof profiles: samples over stacks of (PC, function, file, line) frames, gzip-compressed.

Callers: :mod:`debugcap.analysis.traces`, which writes the profiles ``go tool trace -pprof``
writes. The layout is that of Go's ``internal/trace/traceviewer.BuildProfile``: one location
per PC (named after the first frame seen with it), one function per (file, name), no mappings.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from debugcap.formats import pprof_proto


class Frame(NamedTuple):
    pc: int
    function: str
    file: str
    line: int


class Sample(NamedTuple):
    values: Sequence[int]
    frames: Sequence[Frame]  # leaf first


def encode(sample_types: Sequence[tuple[str, str]], samples: Iterable[Sample], *,
           period_type: tuple[str, str] | None = None, period: int = 0, duration_ns: int = 0,
           time_ns: int = 0) -> bytes:
    """The gzip-compressed ``perftools.profiles.Profile`` holding ``samples``."""
    msg = pprof_proto.Profile()
    strings: dict[str, int] = {"": 0}

    def s(text: str) -> int:
        return strings.setdefault(text, len(strings))

    for typ, unit in sample_types:
        msg.sample_type.add(type=s(typ), unit=s(unit))
    if period_type is not None:
        msg.period_type.type, msg.period_type.unit = s(period_type[0]), s(period_type[1])
    msg.period = period
    msg.duration_nanos = duration_ns
    msg.time_nanos = time_ns
    functions: dict[tuple[str, str], int] = {}
    locations: dict[int, int] = {}
    for sample in samples:
        ids = []
        for f in sample.frames:
            loc = locations.get(f.pc)
            if loc is None:
                fn = functions.get((f.file, f.function))
                if fn is None:
                    fn = functions[(f.file, f.function)] = len(functions) + 1
                    msg.function.add(id=fn, name=s(f.function), system_name=s(f.function), filename=s(f.file))
                loc = locations[f.pc] = len(locations) + 1
                msg.location.add(id=loc, address=f.pc).line.add(function_id=fn, line=f.line)
            ids.append(loc)
        msg.sample.add(location_id=ids, value=list(sample.values))
    msg.string_table.extend(strings)
    # mtime=0: the same profile gives the same bytes.
    return gzip.compress(msg.SerializeToString(), mtime=0)
