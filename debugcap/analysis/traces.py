"""Execution traces: ``go tool trace -pprof``'s four profiles, and a summary of scheduling and GC.

Callers: the ``trace`` command (:mod:`debugcap.kubectl_plugin.commands.trace`) and
:mod:`debugcap.analysis.report` (:func:`bundle_summary`, for the report's ``trace`` section
and the ``sched-latency`` finding). Events come from :mod:`debugcap.formats.gotrace`, which
yields Go's own event order and times; :mod:`debugcap.analysis.trace_pass` turns them into
profile records and counters in one pass.

The profiles (pprof's "contentions"/count and "delay"/nanoseconds per stack, as cmd/trace writes
them):

- ``sched``: time goroutines waited runnable before running (scheduler latency), at the stack of
  what made them runnable;
- ``net``: time blocked on the network; ``sync``: on mutexes, channels and select; both at the
  stack where the goroutine blocked;
- ``syscall``: time in system calls, at the stack of the call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from debugcap import errors
from debugcap.analysis import bundle_reading, hints, pprof
from debugcap.analysis.bundle_reading import Reading
from debugcap.analysis.trace_pass import PROFILE_KINDS, Record, Stats, TracePass
from debugcap.bundle import layout
from debugcap.formats import gotrace, pprof_encode
from debugcap.formats import pprof as pprof_format

__all__ = ["PROFILE_KINDS", "TraceAnalysis", "TraceSummary", "analyse", "bundle_summary", "load"]

SAMPLE_TYPES: Final = (("contentions", "count"), ("delay", "nanoseconds"))  # cmd/trace's, in its order
PERCENTILE: Final = 0.99
TRACE_MAGIC: Final = b"go 1."  # every execution trace's first bytes, whatever its version


@dataclass(frozen=True)
class TraceSummary:
    """What a trace shows at a glance. ``cut`` says why it ends early (then the numbers cover its
    complete generations); scheduler latencies are waits from runnable to running, new
    goroutines' first wait included; durations are nanoseconds."""

    source: str
    go_format: str  # the trace format's Go version, "1.26"
    generations: int
    events: int
    duration_ns: int
    cut: str | None
    gomaxprocs: int | None
    procs_seen: int
    goroutines_created: int
    goroutines_at_end: int
    goroutines_max: int
    gc_count: int
    stw_count: int
    stw_total_ns: int
    stw_max_ns: int
    sched_waits: int
    sched_latency_p99_ns: int | None
    sched_latency_max_ns: int | None
    sched_latency_total_ns: int
    cpu_samples: int
    heap_max_bytes: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TraceAnalysis:
    """One trace read: its summary, and each profile as records, pprof bytes or a top."""

    def __init__(self, summary: TraceSummary, done: TracePass) -> None:
        self.summary = summary
        self._pass = done
        self._bytes: dict[str, bytes] = {}
        self.unverified: list[str] = []  # why the bundle it came from cannot be trusted (read with force)

    def records(self, kind: str) -> list[Record]:
        if kind not in PROFILE_KINDS:
            raise errors.AnalysisError(f"unknown trace profile {kind!r}: one of {', '.join(PROFILE_KINDS)}")
        if not self._pass.profiles:
            raise errors.AnalysisError(f"{self.summary.source}: read for its summary only, without profiles; "
                                       "read it with analyse() or load() for the profiles")
        return self._pass.profile(kind)

    def profile_bytes(self, kind: str) -> bytes:
        """The gzip-compressed pprof protobuf ``go tool trace -pprof=KIND`` writes (same samples)."""
        if kind in self._bytes:
            return self._bytes[kind]
        samples = [pprof_encode.Sample(
            (r.count, r.time_ns),
            [pprof_encode.Frame(*f) for f in (r.table.frames(r.stack) if r.table is not None else [])])
            for r in self.records(kind)]
        data = self._bytes[kind] = pprof_encode.encode(SAMPLE_TYPES, samples, period_type=("trace", "count"),
                                                       period=1)
        return data

    def profile(self, kind: str) -> pprof_format.Profile:
        return pprof_format.parse(self.profile_bytes(kind), f"{self.summary.source} ({kind} profile)")

    def top(self, kind: str, node_fraction: float = pprof.PPROF_NODE_FRACTION) -> pprof.TopReport:
        """``go tool pprof -top`` of the profile: delay per function."""
        return pprof.top(self.profile(kind), "delay", node_fraction)


_gc_lock = threading.Lock()
_gc_pauses = 0  # passes running now, on any thread
_gc_was_enabled = True


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The cyclic collector off while any pass runs. A pass makes millions of small objects that
    live until it ends and form no cycles: the collector would scan them again and again for
    nothing (a quarter of the time). Counted under a lock, so that passes on several threads (the
    operator analyses pods side by side) turn it back on once, when the last one ends, and only if
    it was on before the first began."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def analyse(data: bytes, source: str, *, profiles: bool = True) -> TraceAnalysis:
    """Read a whole trace; a trace that breaks after complete generations is read up to there.
    Without ``profiles``, only the summary (cheaper): asking for a profile then is an error."""
    try:
        reader = gotrace.Reader(data)
    except gotrace.TraceError as exc:
        raise type(exc)(f"{source}: {exc}") from None
    done = TracePass(profiles=profiles)
    cut = None
    with _no_cyclic_gc():
        try:
            done.run(reader)
        except gotrace.TraceError as exc:
            if done.syncs <= 1:
                raise type(exc)(f"{source}: no complete generation to read: {exc}") from None
            cut = _cut(reader, done.syncs - 1, exc)
    if done.syncs <= 1:
        # A header and nothing else reads without error, and would print a summary of zeros as if
        # the program had done nothing: it is a trace stopped at once, or cut after its header.
        raise gotrace.TruncatedTraceError(f"{source}: no complete generation to read: the trace ends after its "
                                          f"header ({reader.size} bytes); was it stopped at once, or cut short?")
    stats = done.final()
    if not stats.events:
        raise gotrace.TraceError(f"{source}: the trace holds no events")
    return TraceAnalysis(_summary(source, reader, done, stats, cut), done)


def _cut(reader: gotrace.Reader, n: int, exc: gotrace.TraceError) -> str:
    read = f"read its first {n} generation{'s' if n > 1 else ''} ({reader.complete_bytes} of {reader.size} bytes)"
    if isinstance(exc, gotrace.TruncatedTraceError):
        return f"the trace was cut short (capture interrupted?): {read}; the rest is incomplete: {exc}"
    return f"the trace breaks after {n} generation{'s' if n > 1 else ''}: {exc}; {read}"


def _summary(source: str, reader: gotrace.Reader, done: TracePass, s: Stats, cut: str | None) -> TraceSummary:
    waits = sorted(s.sched_ns)
    return TraceSummary(
        source=source, go_format=f"1.{reader.version}", generations=max(done.syncs - 1, 0),
        events=s.events, duration_ns=s.end_ns - s.first_ns, cut=cut, gomaxprocs=s.gomaxprocs,
        procs_seen=len(s.procs), goroutines_created=s.created, goroutines_at_end=len(s.alive),
        goroutines_max=s.alive_max, gc_count=s.gc_count, stw_count=len(s.stw_ns), stw_total_ns=sum(s.stw_ns),
        stw_max_ns=max(s.stw_ns, default=0), sched_waits=len(waits),
        sched_latency_p99_ns=waits[math.ceil(PERCENTILE * len(waits)) - 1] if waits else None,
        sched_latency_max_ns=waits[-1] if waits else None, sched_latency_total_ns=sum(waits),
        cpu_samples=s.cpu_samples, heap_max_bytes=s.heap_max)


# The largest trace a report (and so the operator, for each bundle it stores) reads: the summary
# alone takes about 0.35 s per MiB of goapp trace on one core (0.75 s before issue 17's speed-up,
# which docs/performance.md measured), and a report must not hold an upload for a minute. The
# trace command reads any size.
REPORT_TRACE_LIMIT: Final = 16 << 20
# The largest trace `kubectl debugcap trace` reads out of a bundle (whole: the parser needs it so).
TRACE_READ_MAX: Final = 1 << 30


def bundle_summary(reading: Reading, limit: int | None = None) -> TraceSummary | None:
    """The summary of a bundle's ``trace/trace.out``; None when it is missing or unreadable (a
    problem line then; a trace cut short is read up to the cut, with a hint saying so). ``limit``:
    the largest trace read, in bytes (None: :data:`REPORT_TRACE_LIMIT`); the operator reads less,
    as reading costs memory too (about 12 MB per MiB of trace)."""
    limit = REPORT_TRACE_LIMIT if limit is None else limit
    rel = layout.TRACE
    size = reading.reader.size(rel)
    if not size:
        return None
    # Judged by the size the checking pass saw, before reading: a few hundred kB of bundle can
    # hold a trace of hundreds of MiB, which a report must not decompress just to refuse it.
    if size > limit:
        if limit:  # 0: the reader was told to read no trace, and needs no reminder
            reading.notes.append(
                f"{rel} not read: {size / (1 << 20):.1f} MiB, more than the {limit / (1 << 20):.1f} MiB this "
                "reading allows (about a second per MiB); read it with `kubectl debugcap trace BUNDLE`")
        return None
    data = reading.guard(lambda: reading.reader.read(rel, limit))
    if not data:
        return None
    body = hints.error_body(data, rel)
    if body:
        reading.hints.append(body)
        return None
    label = reading.reader.label(rel)
    found = reading.guard(lambda: analyse(data, label, profiles=False))
    if found is None:
        return None
    if found.summary.cut:
        reading.hints.append(f"{rel}: {found.summary.cut}")
    return found.summary


def load(path: str | os.PathLike[str], *, force: bool = False) -> TraceAnalysis:
    """A trace file, or the ``trace/trace.out`` of a bundle (packed or unpacked), which is checked
    first (:class:`~debugcap.analysis.bundle_reading.BundleReader`; ``force`` reads a bundle that
    fails its checks, and :attr:`TraceAnalysis.unverified` says why it cannot be trusted)."""
    p = Path(path)
    if p.is_file() and not is_bundle_file(p):
        return _load_file(p)
    bundle_reading.require_bundle(p, force=force)
    with bundle_reading.BundleReader(p, force=force) as reader:
        data = reader.read(layout.TRACE, TRACE_READ_MAX)
        if data is None and reader.lost(layout.TRACE):
            found = _damaged_trace(p, reader)
        elif data is None:
            raise errors.AnalysisError(f"{p}: the bundle has no execution trace ({layout.TRACE}); capture "
                                       "with a template that has the trace collector")
        else:
            found = analyse(data, reader.label(layout.TRACE))
        found.unverified = list(reader.unverified)
        return found


def _damaged_trace(p: Path, reader: bundle_reading.BundleReader) -> TraceAnalysis:
    """The trace of a bundle read with force whose damage cut the trace (read up to its last
    complete generation before the damage) or came before it (nothing to read)."""
    rel, label = layout.TRACE, reader.label(layout.TRACE)
    data = reader.read_damaged(rel)
    if data is None:
        raise errors.AnalysisError(f"{p}: the bundle is damaged before its execution trace ({rel}): the trace, "
                                   "if it had one, is lost; fetch an intact copy of the bundle")
    _before, size = reader.cut_member(rel) or (len(data), len(data))
    lost = f"{rel} is the member the bundle's damage cut: {len(data)} of its {size} bytes precede the damage"
    try:
        found = analyse(data, label)
    except gotrace.TraceError as exc:
        raise type(exc)(f"{p}: {lost}, and they hold no complete generation to read; fetch an intact copy "
                        "of the bundle") from None
    n = found.summary.generations
    cut = f"{lost}; read up to its last complete generation before it ({n} generation{'s' if n > 1 else ''})"
    found.summary = dataclasses.replace(found.summary, cut=cut)
    return found


def is_bundle_file(p: Path) -> bool:
    """A file that is a packed bundle (gzip or tar), not a trace: traces start with their header."""
    try:
        with p.open("rb") as fh:
            head = fh.read(len(TRACE_MAGIC))
    except OSError as exc:
        raise errors.AnalysisError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    return head != TRACE_MAGIC and (head.startswith(b"\x1f\x8b") or _is_tar(p))


def _is_tar(p: Path) -> bool:
    try:
        with p.open("rb") as fh:
            return fh.read(262)[257:262] == b"ustar"
    except OSError:
        return False


def _load_file(p: Path) -> TraceAnalysis:
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise errors.AnalysisError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    body = hints.error_body(data, str(p))
    if body and not data.startswith(TRACE_MAGIC):
        raise errors.AnalysisError(body)
    return analyse(data, str(p))
