"""Bytes to generations: the header, batches, and each generation's strings, stacks and CPU samples.

A Go 1.22+ trace is a header and then generations, each a run of batches: per-thread event
batches (decoded lazily by :mod:`~debugcap.formats.gotrace.reader`) and the structural batches
read here (string and stack tables, CPU samples, the clock). Ported from the Go project's
``src/internal/trace/{batch,generation,base}.go`` and ``version/version.go`` (Copyright 2023 The
Go Authors; BSD-style license, https://go.dev/LICENSE); the checks and their order are Go's, so
what ``go tool trace`` refuses this refuses too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from debugcap.errors import AnalysisError
from debugcap.formats.gotrace import spec

SUPPORTED: Final = (22, 23, 25, 26)  # 1.24 wrote the 1.23 format
FIRST, LAST = SUPPORTED[0], SUPPORTED[-1]
_HEADER = re.compile(rb"go 1\.(\d+) trace\x00")
HEADER_SIZE: Final = 16  # "go 1.22 trace\x00\x00\x00"


class TraceError(AnalysisError):
    """The bytes are not a Go execution trace debugcap can read, or a broken one."""


class UnsupportedTraceError(TraceError):
    """A real execution trace, in a format (Go version) this reader does not know."""


class TruncatedTraceError(TraceError):
    """The bytes end inside a generation: what came before it is complete and readable."""


def read_header(data: bytes) -> int:
    """The minor Go version of the trace format (22 for ``go 1.22 trace``); raise otherwise."""
    m = _HEADER.match(data[:HEADER_SIZE])
    if m is None or len(data) < HEADER_SIZE:
        raise TraceError("not a Go execution trace (no \"go 1.N trace\" header)")
    version = int(m.group(1))
    if version < FIRST:
        raise UnsupportedTraceError(
            f"unsupported: execution trace format of Go 1.{version}; debugcap reads Go 1.{FIRST} and later "
            f"(re-capture from a program built with Go 1.{FIRST}+ or use go tool trace from that Go version)")
    if version not in SUPPORTED:
        raise UnsupportedTraceError(
            f"unsupported: execution trace format of Go 1.{version}; debugcap reads those of Go 1.{FIRST} "
            f"to 1.{LAST} (use go tool trace from Go 1.{version} or later)")
    if data[:HEADER_SIZE] != b"go 1.%d trace\x00\x00\x00" % version:
        raise TraceError(f"bad header for a Go 1.{version} execution trace: {data[:HEADER_SIZE]!r}")
    return version


class CutVarintError(ValueError):
    """The data ends inside a varint."""


def uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """Go's binary.Uvarint at ``pos``: (value, next position); ValueError if cut or over 64 bits."""
    x = shift = 0
    for i in range(10):
        if pos + i >= len(data):
            raise CutVarintError("unexpected end of data in a varint")
        b = data[pos + i]
        if b < 0x80:
            if i == 9 and b > 1:
                break
            return x | b << shift, pos + i + 1
        x |= (b & 0x7F) << shift
        shift += 7
    raise ValueError("varint overflows 64 bits")


@dataclass
class Batch:
    m: int  # thread (M) ID, -1 for the generation-wide structural batches
    time: int  # raw timestamp (ticks)
    data: bytes
    exp: int = 0  # experiment ID, 0 for none

    def first(self, typ: int) -> bool:
        return self.exp == 0 and len(self.data) > 0 and self.data[0] == typ


class BatchStream:
    """Reads batches one after another from the bytes after the header."""

    def __init__(self, data: bytes, pos: int = HEADER_SIZE) -> None:
        self.data = data
        self.pos = pos

    def next(self) -> tuple[Batch, int] | None:
        """The next batch and its generation; None at the end of the data (Go's io.EOF)."""
        data, pos = self.data, self.pos
        if pos >= len(data):
            return None
        b = data[pos]
        pos += 1
        if b == spec.EV_END_OF_GENERATION:
            self.pos = pos
            return Batch(spec.NO_THREAD, 0, bytes([b])), 0
        if b not in (spec.EV_EVENT_BATCH, spec.EV_EXPERIMENTAL_BATCH):
            raise TraceError(f"expected batch event, got event {b} at byte {pos - 1}")
        exp = 0
        if b == spec.EV_EXPERIMENTAL_BATCH:
            if pos >= len(data):
                return None  # Go's readBatch passes this io.EOF through as the end of the trace
            exp, pos = data[pos], pos + 1
        fields = []
        for what in ("gen", "M ID", "timestamp", "size"):
            try:
                value, pos = uvarint(data, pos)
            except ValueError as exc:
                cls = TruncatedTraceError if isinstance(exc, CutVarintError) else TraceError
                raise cls(f"error reading batch {what}: {exc}") from None
            fields.append(value)
        gen, m, ts, size = fields
        if size > spec.MAX_BATCH_SIZE:
            raise TraceError(f"invalid batch size {size}, maximum is {spec.MAX_BATCH_SIZE}")
        if pos + size > len(data):
            raise TruncatedTraceError(f"failed to read full batch: read {len(data) - pos} but wanted {size}")
        self.pos = pos + size
        return Batch(spec.signed(m), ts, data[pos:pos + size], exp), gen


@dataclass
class Table:
    """What a generation's events refer to by ID (Go's evTable): strings, stacks, frames, clock."""

    gen: int = 0
    strings: dict[int, str] = field(default_factory=dict)
    stacks: dict[int, tuple[int, ...]] = field(default_factory=dict)  # stack ID -> PCs, leaf first
    pcs: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # PC -> (func, file string IDs, line)
    extra_strings: list[str] = field(default_factory=list)  # made while reading (task names)
    freq: float = 0.0  # nanoseconds per tick
    has_clock_snapshot: bool = False
    wall_clock_ns: int | None = None  # the clock snapshot's wall time, Unix nanoseconds

    def string(self, sid: int) -> str:
        return "" if sid == 0 else self.strings[sid]

    def add_extra_string(self, s: str) -> int:
        if not s:
            return 0
        if s not in self.extra_strings:
            self.extra_strings.append(s)
        return self.extra_strings.index(s) + 1

    def frames(self, stack_id: int) -> list[tuple[int, str, str, int]]:
        """(PC, function, file, line) of a stack, leaf first; [] for stack 0 (none)."""
        out = []
        for pc in self.stacks.get(stack_id, ()) if stack_id else ():
            fn, fl, line = self.pcs[pc]
            out.append((pc, self.string(fn), self.string(fl), line))
        return out


@dataclass
class CPUSample:
    time: int  # nanoseconds once the generation's frequency is known
    m: int
    p: int
    g: int
    stack: int


@dataclass
class Generation:
    table: Table = field(default_factory=Table)
    batches: dict[int, list[Batch]] = field(default_factory=dict)  # by M, in the order Ms appeared
    cpu_samples: list[CPUSample] = field(default_factory=list)
    min_ts: int = 0

    @property
    def gen(self) -> int:
        return self.table.gen


def process_batch(g: Generation, b: Batch, version: int) -> None:
    """File one batch into its generation (Go's processBatch)."""
    sync_first = spec.EV_SYNC if version >= 25 else spec.EV_FREQUENCY
    if b.first(spec.EV_STRINGS):
        _add_strings(g.table, b.data)
    elif b.first(spec.EV_STACKS):
        _add_stacks(g.table, b.data)
    elif b.first(spec.EV_CPU_SAMPLES):
        _add_cpu_samples(g.cpu_samples, b.data)
    elif b.first(sync_first):
        _set_sync(g.table, b, version)
    elif b.exp != 0:
        pass  # experimental data (allocation events): nothing debugcap reads
    elif b.first(spec.EV_END_OF_GENERATION):
        raise TraceError("unexpected end-of-generation batch; broken trace?")
    else:
        g.batches.setdefault(b.m, []).append(b)


def finish_generation(g: Generation, version: int) -> None:
    """The checks Go makes once a generation's batches are all read, and the CPU samples' times."""
    t = g.table
    if t.freq == 0:
        raise TraceError("no frequency event found")
    if version >= 25 and not t.has_clock_snapshot:
        raise TraceError("no clock snapshot event found")
    strings = t.strings
    # Each PC once (they repeat across stacks); stack by stack, for Go's message, only if one is bad.
    bad = any(fn and fn not in strings or fl and fl not in strings for fn, fl, _ in t.pcs.values())
    for sid, pcs in sorted(t.stacks.items()) if bad else ():
        for pc in pcs:
            fn, fl, _ = t.pcs[pc]
            if fn and fn not in t.strings:
                raise TraceError(f"found invalid func string ID {fn} for stack {sid}")
            if fl and fl not in t.strings:
                raise TraceError(f"found invalid file string ID {fl} for stack {sid}")
    freq = t.freq
    for s in g.cpu_samples:
        s.time = int(s.time * freq)
    g.cpu_samples.sort(key=lambda s: s.time)


def _uv(data: bytes, pos: int, what: str) -> tuple[int, int]:
    try:
        return uvarint(data, pos)
    except ValueError as exc:
        raise TraceError(f"reading {what}: {exc}") from None


def _add_strings(table: Table, data: bytes) -> None:
    pos, n = 1, len(data)
    while pos < n:
        if data[pos] != spec.EV_STRING:
            raise TraceError(f"expected string event, got {data[pos]}")
        pos += 1
        # IDs of one or two bytes and lengths of one, inline: a call per value is most of the time.
        if pos + 1 < n and data[pos] < 0x80:
            sid, pos = data[pos], pos + 1
        elif pos + 1 < n and data[pos + 1] < 0x80:
            sid, pos = (data[pos] & 0x7F) | data[pos + 1] << 7, pos + 2
        else:
            sid, pos = _uv(data, pos, "a string's ID")
        if pos < n and data[pos] < 0x80:
            size, pos = data[pos], pos + 1
        else:
            size, pos = _uv(data, pos, "a string's length")
        if size > spec.MAX_STRING_SIZE:
            raise TraceError(f"invalid string size {size}, maximum is {spec.MAX_STRING_SIZE}")
        if pos + size > len(data):
            raise TraceError(f"failed to read full string: read {len(data) - pos} but wanted {size}")
        if sid == 0 or sid in table.strings:
            raise TraceError(f"multiple strings with the same ID: id={sid}")
        table.strings[sid] = data[pos:pos + size].decode("utf-8", "replace")
        pos += size


def _add_stacks(table: Table, data: bytes) -> None:
    pos = 1
    pcs = table.pcs
    while pos < len(data):
        if data[pos] != spec.EV_STACK:
            raise TraceError(f"expected stack event, got {data[pos]}")
        sid, pos = _uv(data, pos + 1, "a stack's ID")
        n, pos = _uv(data, pos, "a stack's size")
        if n > spec.MAX_FRAMES_PER_STACK:
            raise TraceError(f"invalid stack size {n}, maximum is {spec.MAX_FRAMES_PER_STACK}")
        frames = []
        for i in range(n):
            vals = [0, 0, 0, 0]  # PC, function and file string IDs, line
            try:
                for j in range(4):  # inline up to four bytes, as a call per value is most of the time
                    b = data[pos]
                    if b < 0x80:  # most IDs and lines
                        vals[j] = b
                        pos += 1
                    elif data[pos + 1] < 0x80:
                        vals[j] = (b & 0x7F) | data[pos + 1] << 7
                        pos += 2
                    elif data[pos + 2] < 0x80:
                        vals[j] = (b & 0x7F) | (data[pos + 1] & 0x7F) << 7 | data[pos + 2] << 14
                        pos += 3
                    elif data[pos + 3] < 0x80:  # most PCs (a Go binary's text starts at 4 MiB)
                        vals[j] = ((b & 0x7F) | (data[pos + 1] & 0x7F) << 7 | (data[pos + 2] & 0x7F) << 14
                                   | data[pos + 3] << 21)
                        pos += 4
                    else:
                        vals[j], pos = uvarint(data, pos)
            except (IndexError, ValueError) as exc:
                err = exc if isinstance(exc, ValueError) else CutVarintError("unexpected end of data in a varint")
                raise TraceError(f"reading frame {i + 1} of stack {sid}: {err}") from None
            pc = vals[0]
            frames.append(pc)
            # The first frame seen for a PC names it for the whole generation, as in Go.
            if pc not in pcs:
                pcs[pc] = (vals[1], vals[2], vals[3])
        if sid == 0 or sid in table.stacks:
            raise TraceError(f"multiple stacks with the same ID: id={sid}")
        table.stacks[sid] = tuple(frames)


def _add_cpu_samples(samples: list[CPUSample], data: bytes) -> None:
    pos = 1
    while pos < len(data):
        if data[pos] != spec.EV_CPU_SAMPLE:
            raise TraceError(f"expected CPU sample event, got {data[pos]}")
        pos += 1
        values = []
        for what in ("timestamp", "M", "P", "G", "stack"):
            v, pos = _uv(data, pos, f"a CPU sample's {what}")
            values.append(v)
        ts, m, p, g, stack = values
        samples.append(CPUSample(ts, spec.signed(m), spec.signed(p), spec.signed(g) if g else spec.NO_GOROUTINE,
                                 stack))


def _set_sync(table: Table, b: Batch, version: int) -> None:
    data = b.data
    pos = 1 if version >= 25 else 0  # the EvSync byte
    last_ts = b.time
    while pos < len(data):
        ev = data[pos]
        pos += 1
        if ev == spec.EV_FREQUENCY:
            if table.freq:
                raise TraceError("found multiple frequency events")
            f, pos = _uv(data, pos, "the frequency")
            if f == 0:
                raise TraceError("frequency of 0 ticks per second")
            table.freq = 1.0 / (f / 1e9)  # Go's expression: the same float64 rounding
        elif ev == spec.EV_CLOCK_SNAPSHOT and version >= 25:
            if table.has_clock_snapshot:
                raise TraceError("found multiple clock snapshot events")
            table.has_clock_snapshot = True
            values = []
            for what in ("time", "monotonic time", "seconds", "nanoseconds"):
                v, pos = _uv(data, pos, f"the clock snapshot's {what}")
                values.append(v)
            last_ts += values[0]
            table.wall_clock_ns = values[2] * 10**9 + values[3]
        else:
            raise TraceError(f"expected frequency or clock snapshot event, got {ev}")
