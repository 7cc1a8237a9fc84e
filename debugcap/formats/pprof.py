"""Read and validate pprof profiles (gzip-compressed ``perftools.profiles.Profile`` protobufs).

Callers: :mod:`debugcap.collectors.fetching` checks every profile it fetched with
:func:`parse`; :mod:`debugcap.analysis` reads profiles out of bundles with it and
computes ``top``, diffs and flame graphs from the reduced :class:`Profile`.

The checks are those of google/pprof (``profile/profile.go`` ``Parse`` and
``CheckValid``): what pprof refuses, this refuses too, with an error that names
the file. See shared/research/pprof.md §3.
"""

from __future__ import annotations

import contextlib
import os
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import IO, Any

from google.protobuf.message import DecodeError

from debugcap import errors
from debugcap.formats import pprof_names, pprof_proto

GZIP_MAGIC = b"\x1f\x8b"

# A profile that inflates past this is a decompression bomb or not a profile;
# real heap profiles stay well under 100 MB (research notes §6). Judgement call.
# The most a profile is decompressed to (a real one is a few MiB, a very large heap profile ~40):
# parsing costs ~12x this in memory, so a bomb in a bundle someone sent stops at ~1.5 GB.
MAX_UNCOMPRESSED_BYTES = 128 << 20
MAX_LOCATION_REFS = 4_000_000  # sum over samples of their stack depth (see _parse_raw)
LARGE_PARSE_BYTES = 4 << 20
_LARGE_PARSES = threading.BoundedSemaphore(1)
# How much compressed input and decompressed output one step of the streamed gunzip handles:
# a bomb never inflates by more than this between two checks of the limit.
PIECE = 1 << 20


class TooLarge(errors.AnalysisError):
    """A profile that decompresses past the limit it was read under (``limit``, bytes): a bomb, or
    one too large to check here; nothing more than the limit was held in memory."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class SampleType:
    type: str
    unit: str


@dataclass(frozen=True)
class Profile:
    """A validated profile, reduced to what the analyses need.

    ``loc_nodes`` maps a location id to the node ids of its lines, innermost
    first, where a node is one function (pprof's "functions" granularity):
    inlined functions are nodes of their own, file/line/address are dropped.
    """

    source: str
    sample_types: list[SampleType]
    default_sample_type: str
    duration_ns: int
    time_ns: int
    period_type: SampleType | None
    period: int
    stacks: list[tuple[int, ...]]
    values: list[tuple[int, ...]]
    loc_nodes: dict[int, tuple[int, ...]]
    node_names: list[str]
    node_files: list[str]
    inline_label: dict[int, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    @property
    def sample_count(self) -> int:
        return len(self.stacks)

    def is_empty(self) -> bool:
        return not any(any(v) for v in self.values)


def load(path: str | os.PathLike[str], max_uncompressed: int = MAX_UNCOMPRESSED_BYTES) -> Profile:
    """Read and validate one profile file, gzip-compressed or raw."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return read(fh, str(p), max_uncompressed)
    except OSError as exc:
        raise errors.AnalysisError(f"{p}: cannot read profile: {exc.strerror or exc}") from exc


def read(fh: IO[bytes], source: str = "<profile>", max_uncompressed: int = MAX_UNCOMPRESSED_BYTES) -> Profile:
    """Validate and reduce the profile ``fh`` holds, read and decompressed a piece at a time: at
    most ``max_uncompressed`` bytes of protobuf are ever held (else :class:`TooLarge`)."""
    head = fh.read(PIECE)
    if not head.startswith(GZIP_MAGIC):
        rest = fh.read(max(max_uncompressed - len(head), 0) + 1)
        if len(head) + len(rest) > max_uncompressed:
            raise _too_large(source, max_uncompressed)
        return parse(head + rest, source, max_uncompressed)
    return _parse_raw(_gunzip(chain((head,), iter(lambda: fh.read(PIECE), b"")), source, max_uncompressed), source)


def _too_large(source: str, limit: int) -> TooLarge:
    return TooLarge(f"{source}: decompresses to more than {_size(limit)}, the most a profile is read to; "
                    "a decompression bomb, or too large to check", limit)


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and not n % (1 << 20) else f"{n} bytes"


def _gunzip(pieces: Iterable[bytes], source: str, limit: int = MAX_UNCOMPRESSED_BYTES) -> bytearray:
    """The gzip stream ``pieces`` decompressed, a bounded step at a time: never more than
    ``limit`` bytes (+ one step) of output held, never one call that inflates without bound."""
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out, rest = bytearray(), iter(pieces)
    try:
        for piece in rest:
            data = piece
            while data and not d.eof:
                out += d.decompress(data, PIECE)
                if len(out) > limit:
                    raise _too_large(source, limit)
                data = d.unconsumed_tail
            if d.eof:
                unused = d.unused_data + data + b"".join(islice(rest, 1))
                if unused:
                    # Go's gzip reader would read a second member and pprof would then see two
                    # profiles (errConcatProfile); any other trailing bytes are an error there too.
                    what = ("concatenated profiles detected" if unused.startswith(GZIP_MAGIC)
                            else "trailing garbage after the gzip stream")
                    raise errors.AnalysisError(f"{source}: {what}")
                break
        if not d.eof:
            out += d.flush()  # what the last piece left pending: at most one match (258 bytes)
    except zlib.error as exc:
        raise errors.AnalysisError(f"{source}: not a valid gzip stream: {exc}") from exc
    if not d.eof:
        raise errors.AnalysisError(f"{source}: gzip stream is truncated (download cut short?)")
    return out


def looks_like_text(data: bytes) -> bool:
    """True for short printable text: a pprof error body rather than a profile."""
    head = data[:512]
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def parse(data: bytes, source: str = "<profile>", max_uncompressed: int = MAX_UNCOMPRESSED_BYTES) -> Profile:
    """Validate and reduce a serialized profile; raise AnalysisError naming ``source``."""
    if not data:
        raise errors.AnalysisError(f"{source}: empty file, not a profile")
    if data.startswith(GZIP_MAGIC):
        return _parse_raw(_gunzip((data,), source, max_uncompressed), source)
    if looks_like_text(data):
        raise errors.AnalysisError(
            f"{source}: holds text, not a profile: {errors.shorten(data.decode('utf-8'), 160)!r}")
    if len(data) > max_uncompressed:
        raise _too_large(source, max_uncompressed)
    return _parse_raw(data, source)


def _parse_raw(data: bytes | bytearray, source: str) -> Profile:
    if not data:
        raise errors.AnalysisError(f"{source}: gzip stream holds no data, not a profile")
    msg = pprof_proto.Profile()
    # One large parse at a time in the process (operator captures check profiles in parallel, and
    # its health analysis parses them again): memory is the parse's, ~12x the protobuf's size.
    with _LARGE_PARSES if len(data) > LARGE_PARSE_BYTES else contextlib.nullcontext():
        try:
            msg.ParseFromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise errors.AnalysisError(f"{source}: not a pprof protobuf: {exc}") from exc
        del data
        return _checked_and_reduced(msg, source)


def _checked_and_reduced(msg: Any, source: str) -> Profile:
    # The reduced profile costs about a Python object per location reference: a small file of
    # many deep, identical samples (413 KB gzipped, 640k samples of 32 frames) took 700 MB to
    # reduce. Real profiles hold far fewer (a 30 s CPU profile thousands of samples, a big heap
    # profile ~1M references); beyond the budget the profile is refused, naming it.
    refs = sum(len(sample.location_id) for sample in msg.sample)
    if refs > MAX_LOCATION_REFS:
        raise TooLarge(f"{source}: {len(msg.sample)} samples referring to {refs} locations, more than the "
                       f"{MAX_LOCATION_REFS} a profile is read with; too large to check here", MAX_LOCATION_REFS)
    return _Reducer(msg, source).reduce()


class _Reducer:
    """One pass over a decoded message: check every reference, keep what the analyses read."""

    def __init__(self, msg: Any, source: str) -> None:
        self.msg = msg
        self.source = source
        self.strings: list[str] = list(msg.string_table)
        if not self.strings or self.strings[0] != "":
            raise self.bad("string_table[0] must be the empty string")

    def bad(self, what: str) -> errors.AnalysisError:
        return errors.AnalysisError(f"{self.source}: malformed profile: {what}")

    def s(self, idx: int, what: str) -> str:
        if not 0 <= idx < len(self.strings):
            raise self.bad(f"{what} refers to string {idx}, outside the string table "
                           f"(size {len(self.strings)})")
        return self.strings[idx]

    def value_type(self, vt: Any, what: str) -> SampleType:
        return SampleType(self.s(vt.type, f"{what}.type"), self.s(vt.unit, f"{what}.unit"))

    def reduce(self) -> Profile:
        msg, s = self.msg, self.s
        sample_types = [self.value_type(vt, "sample_type") for vt in msg.sample_type]
        period_type = self.value_type(msg.period_type, "period_type") if msg.HasField("period_type") else None
        default_type = s(msg.default_sample_type, "default_sample_type")
        s(msg.drop_frames, "drop_frames")
        s(msg.keep_frames, "keep_frames")
        s(msg.doc_url, "doc_url")
        comments = [s(c, "comment") for c in msg.comment]
        nodes = _Nodes()
        loc_nodes = self.locations(self.mappings(), self.functions(), nodes)
        stacks, values = self.samples(len(sample_types), loc_nodes)
        return Profile(
            source=self.source, sample_types=sample_types, default_sample_type=default_type,
            duration_ns=msg.duration_nanos, time_ns=msg.time_nanos, period_type=period_type,
            period=msg.period, stacks=stacks, values=values, loc_nodes=loc_nodes,
            node_names=nodes.names, node_files=nodes.files, inline_label=nodes.inline_labels(),
            comments=comments)

    def mappings(self) -> dict[int, str]:
        files: dict[int, str] = {}
        for m in self.msg.mapping:
            if m.id == 0:
                raise self.bad("mapping with reserved id 0")
            if m.id in files:
                raise self.bad(f"multiple mappings with id {m.id}")
            files[m.id] = self.s(m.filename, "mapping.filename")
            self.s(m.build_id, "mapping.build_id")
        return files

    def functions(self) -> dict[int, tuple[str, str]]:
        functions: dict[int, tuple[str, str]] = {}
        for f in self.msg.function:
            if f.id == 0:
                raise self.bad("function with reserved id 0")
            if f.id in functions:
                raise self.bad(f"multiple functions with id {f.id}")
            name = pprof_names.printed_name(self.s(f.name, "function.name"),
                                            self.s(f.system_name, "function.system_name"))
            functions[f.id] = (name, self.s(f.filename, "function.filename"))
        return functions

    def locations(self, mapping_files: dict[int, str], functions: dict[int, tuple[str, str]],
                  nodes: _Nodes) -> dict[int, tuple[int, ...]]:
        loc_nodes: dict[int, tuple[int, ...]] = {}
        for loc in self.msg.location:
            if loc.id == 0:
                raise self.bad("location with reserved id 0")
            if loc.id in loc_nodes:
                raise self.bad(f"multiple locations with id {loc.id}")
            objfile = ""
            if loc.mapping_id:
                if loc.mapping_id not in mapping_files:
                    raise self.bad(f"location {loc.id} refers to mapping {loc.mapping_id}, which does not exist")
                objfile = mapping_files[loc.mapping_id]
            names: list[tuple[str, str]] = []
            for ln in loc.line:
                fid = ln.function_id
                if fid and fid not in functions:
                    raise self.bad(f"location {loc.id} refers to function {fid}, which does not exist")
                names.append(functions[fid] if fid else ("", ""))
            loc_nodes[loc.id] = nodes.add_location(names or [("", "")], objfile)
        return loc_nodes

    def samples(self, ntypes: int, loc_nodes: dict[int, tuple[int, ...]]
                ) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
        stacks: list[tuple[int, ...]] = []
        values: list[tuple[int, ...]] = []
        if self.msg.sample and not ntypes:
            raise self.bad("missing sample type information")
        for smp in self.msg.sample:
            v = tuple(smp.value)
            if len(v) != ntypes:
                raise self.bad(f"sample has {len(v)} values for {ntypes} sample types")
            stacks.append(tuple(smp.location_id))
            values.append(v)
            for lb in smp.label:
                self.s(lb.key, "label.key")
                self.s(lb.str, "label.str")
                self.s(lb.num_unit, "label.num_unit")
        missing = set(chain.from_iterable(set(stacks))).difference(loc_nodes)
        if missing:
            raise self.bad(f"sample refers to location {min(missing)}, which does not exist")
        return stacks, values


class _Nodes:
    """The function-granularity node table: one node per printable function name."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self.files: list[str] = []
        self.inline_seen: dict[int, int] = {}  # bit 1: seen inlined, bit 2: seen as a real call

    def add_location(self, names: list[tuple[str, str]], objfile: str) -> tuple[int, ...]:
        ids = []
        last = len(names) - 1
        for i, (name, fname) in enumerate(names):
            if not name:
                # pprof's NodeInfo.PrintableName for a frame without a function name.
                name = f"[{os.path.basename(objfile)}]" if objfile else "<unknown>"
            nid = self.ids.get(name)
            if nid is None:
                nid = self.ids[name] = len(self.names)
                self.names.append(name)
                self.files.append(fname)
            ids.append(nid)
            self.inline_seen[nid] = self.inline_seen.get(nid, 0) | (1 if i < last else 2)
        return tuple(ids)

    def inline_labels(self) -> dict[int, str]:
        return {nid: ("(inline)" if bits == 1 else "(partial-inline)" if bits == 3 else "")
                for nid, bits in self.inline_seen.items()}
