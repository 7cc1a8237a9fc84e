"""The report model: what one bundle shows, and what changed between two, as frozen dataclasses.

:mod:`debugcap.analysis.report` builds these values, :mod:`debugcap.analysis.findings`
reads a :class:`Report` to compute its findings, and :mod:`debugcap.analysis.rendering`
and the ``report``/``diff`` commands of :mod:`debugcap.kubectl_plugin.commands.analyze`
show them. ``as_dict()`` is the ``-o json`` form: users and the e2e tests read its
keys, so their names and order are part of the interface.

Tops (:class:`debugcap.analysis.pprof.TopReport`) and goroutine groups
(:mod:`debugcap.analysis.goroutines`) stay TypedDicts: they are the JSON payloads of
the ``top`` and ``goroutines`` commands, and sections embed them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from debugcap.analysis import goroutines as dumps
from debugcap.analysis import pprof, traces
from debugcap.bundle import manifest
from debugcap.formats import df, gostats

# Finding levels by severity: what the text and HTML renderers colour.
HIGH_FROM = 80
MEDIUM_FROM = 55


@dataclass(frozen=True)
class Finding:
    """One line a human reads first; ``severity`` only ranks, ``kind`` names the rule.

    ``subject`` is what the finding is about: for the profile rules, the first frame of the
    application's own code (:mod:`debugcap.analysis.appcode`), ``leaf`` the frame the samples
    ended in when it differs (``crypto/sha256.block`` under ``main.hash``). ``value`` in ``unit``
    is the measure the severity was read from (docs/findings.md), None for rules without one.
    """

    severity: int
    kind: str
    subject: str
    message: str
    leaf: str = ""
    value: float | None = None
    unit: str = ""

    @property
    def level(self) -> str:
        return "high" if self.severity >= HIGH_FROM else "medium" if self.severity >= MEDIUM_FROM else "low"

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "level": self.level, "kind": self.kind,
                "subject": self.subject, "message": self.message, "leaf": self.leaf,
                "value": self.value, "unit": self.unit}


@dataclass(frozen=True)
class OwnRow:
    """Samples whose first frame of the application's own code is ``function``."""

    function: str
    value: int
    leaf: str  # the leaf holding most of ``value``: where the time or bytes were really spent
    own: bool = True  # False: no frame of these stacks is the application's; ``function`` is their leaf

    def as_dict(self) -> dict[str, Any]:
        return {"function": self.function, "value": self.value, "leaf": self.leaf, "own": self.own}


@dataclass(frozen=True)
class Attribution:
    """One profile's values by the application's own function, the profiler's share set apart."""

    sample_type: str
    unit: str
    total: int  # every sample, the profiler's included
    duration_ns: int  # the profile's own window; 0 when it counts from the process start (block, mutex)
    profiler: int  # in stacks through the capture's own machinery (appcode.is_profiler)
    profiler_leaf: str  # the outermost profiler frame of most of it: who started it (a pprof handler...)
    rows: tuple[OwnRow, ...]  # largest first
    time_ns: int = 0  # when the profile was written (Go sets it on every profile); 0 when unknown

    def as_dict(self) -> dict[str, Any]:
        return {"sample_type": self.sample_type, "unit": self.unit, "total": self.total,
                "duration_ns": self.duration_ns, "time_ns": self.time_ns, "profiler": self.profiler,
                "profiler_leaf": self.profiler_leaf, "rows": [r.as_dict() for r in self.rows]}


@dataclass(frozen=True)
class Waiters:
    """Goroutines of the dump in one state whose first own frame is ``function``.

    Counted from the same parse as the dump's groups (:mod:`debugcap.analysis.goroutines`), which
    are keyed by the same (state, function). ``top`` is the first frame outside the runtime they
    wait in (``internal/sync.(*Mutex).lockSlow``): the "parked in" context of a leak finding.
    """

    state: str  # as the dump says: "sync.Mutex.Lock", "chan send", "select"...; "" in a debug=1 dump
    function: str  # the first own frame; ``top`` when the stacks have none (``own`` False)
    count: int
    top: str = ""
    own: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "function": self.function, "count": self.count, "top": self.top,
                "own": self.own}


@dataclass(frozen=True)
class Container:
    """The target container's yardsticks, from the bundle's pod YAML: what rates are measured against."""

    name: str
    cpu_limit: float | None  # cores
    memory_limit: int | None  # bytes
    uptime_seconds: float | None  # from the container's start to the capture's
    started_at: float | None = None  # the container's start, seconds since the epoch

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cpu_limit": self.cpu_limit, "memory_limit": self.memory_limit,
                "uptime_seconds": self.uptime_seconds, "started_at": self.started_at}


@dataclass(frozen=True)
class HeapGrowthRow:
    function: str  # the first frame of the application's own code (its leaf when there is none)
    growth: int  # bytes in use, newest snapshot minus oldest
    per_minute: int | None  # None when the snapshots carry no times
    leaf: str = ""
    own: bool = True


@dataclass(frozen=True)
class HeapGrowth:
    first: str  # snapshot directory, e.g. pprof/snapshots/00
    last: str
    minutes: float
    sample_type: str
    rows: tuple[HeapGrowthRow, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.first, "to": self.last, "minutes": self.minutes, "sample_type": self.sample_type,
                "rows": [{"function": r.function, "growth": r.growth, "per_minute": r.per_minute,
                          "leaf": r.leaf, "own": r.own} for r in self.rows]}


@dataclass(frozen=True)
class SnapshotTotal:
    snapshot: str
    total: int


@dataclass(frozen=True)
class Snapshots:
    """What the go-leak snapshots show: the first against the last."""

    dirs: tuple[str, ...]
    heap_growth: HeapGrowth | None = None  # None unless two heap profiles could be read
    goroutine_totals: tuple[SnapshotTotal, ...] | None = None  # None unless a dump could be read
    goroutine_changes: tuple[dumps.GroupChange, ...] | None = None  # None unless two dumps could

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": len(self.dirs), "dirs": list(self.dirs)}
        if self.heap_growth is not None:
            out["heap_growth"] = self.heap_growth.as_dict()
        if self.goroutine_totals is not None:
            out["goroutine_totals"] = [{"snapshot": t.snapshot, "total": t.total} for t in self.goroutine_totals]
        if self.goroutine_changes is not None:
            out["goroutine_changes"] = list(self.goroutine_changes)
        return out


@dataclass(frozen=True)
class GoroutineSection:
    source: str  # the dump's bundle path: the top-level one, or the newest snapshot's
    total: int
    truncated: bool
    groups: tuple[dumps.GroupDict, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "total": self.total, "truncated": self.truncated,
                "groups": list(self.groups)}


@dataclass(frozen=True)
class ProvenLeaks:
    """Goroutines the Go runtime proved leaked (Go 1.26 goroutineleak profile): not a heuristic."""

    source: str  # the bundle path read: the profile, or the goroutineleak debug=2 dump
    total: int
    groups: tuple[dumps.LeakGroupDict, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "total": self.total, "groups": list(self.groups)}


@dataclass(frozen=True)
class Sockets:
    source: str  # the bundle path(s) the counts come from, comma-separated
    states: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "states": dict(self.states)}


def _target(target: manifest.TargetInfo | None) -> dict[str, Any]:
    return {} if target is None else target.to_dict()


@dataclass(frozen=True)
class Report:
    """Everything read from one bundle. A section is None when its files are missing or broken."""

    bundle: str
    target: manifest.TargetInfo | None  # None: no readable manifest
    capture: manifest.CaptureInfo | None
    collectors: tuple[manifest.CollectorRecord, ...]
    missing: tuple[str, ...]
    errors: Mapping[str, str]  # errors/<file> name (without "errors/") -> its text, cut short
    cpu: pprof.TopReport | None
    heap: pprof.TopReport | None
    block: pprof.TopReport | None
    mutex: pprof.TopReport | None
    snapshots: Snapshots | None
    goroutines: GoroutineSection | None
    leak_suspects: tuple[dumps.GroupDict, ...]
    sockets: Sockets | None
    fd_count: int | None
    fd_limit: int | None
    disk: tuple[df.DfRow, ...] | None
    memstats: Mapping[str, object] | None
    hints: tuple[str, ...]
    problems: tuple[str, ...]
    findings: tuple[Finding, ...] = ()  # filled by debugcap.analysis.findings.evaluate
    proven_leaks: ProvenLeaks | None = None  # None: no goroutineleak profile in the bundle
    # What the target's Go runtime revealed (manifest ``runtime``: goVersion, GOMAXPROCS, ...).
    runtime: Mapping[str, str] = field(default_factory=dict)
    # cpu, heap (inuse_space), block, mutex by the application's own function (analysis.attribution).
    attribution: Mapping[str, Attribution] = field(default_factory=dict)
    waiting: tuple[Waiters, ...] = ()  # the dump's goroutines by state and own function (analysis.attribution)
    container: Container | None = None  # None: no pod YAML, or the target container is not in it
    trace: traces.TraceSummary | None = None  # None: no trace/trace.out, or it could not be read
    gc_pauses: gostats.GcPauses | None = None  # None: no expvar memstats with the pause fields
    # What the reader chose not to read (a trace over its limit): facts about the reading, not
    # about the evidence, so never findings (hints are: they say the evidence is incomplete).
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> tuple[str, ...]:
        """Collectors that failed or delivered only part of their files."""
        return tuple(c.name for c in self.collectors
                     if c.status in (manifest.CollectorStatus.FAILED, manifest.CollectorStatus.PARTIAL))

    def as_dict(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle,
            "target": _target(self.target),
            "capture": {} if self.capture is None else self.capture.to_dict(),
            "collectors": [{"name": c.name, "status": c.status.value, "message": c.message, "files": list(c.files)}
                           for c in self.collectors],
            "failed": list(self.failed),
            "missing": list(self.missing),
            "errors": dict(self.errors),
            "cpu": self.cpu, "heap": self.heap, "block": self.block, "mutex": self.mutex,
            "snapshots": None if self.snapshots is None else self.snapshots.as_dict(),
            "goroutines": None if self.goroutines is None else self.goroutines.as_dict(),
            "leak_suspects": list(self.leak_suspects),
            "proven_leaks": None if self.proven_leaks is None else self.proven_leaks.as_dict(),
            "runtime": dict(self.runtime),
            "sockets": None if self.sockets is None else self.sockets.as_dict(),
            "fd_count": self.fd_count,
            "fd_limit": self.fd_limit,
            "disk": None if self.disk is None else [d.as_dict() for d in self.disk],
            "memstats": None if self.memstats is None else dict(self.memstats),
            "attribution": {k: v.as_dict() for k, v in self.attribution.items()},
            "waiting": [w.as_dict() for w in self.waiting],
            "container": None if self.container is None else self.container.as_dict(),
            "trace": None if self.trace is None else self.trace.as_dict(),
            "gc_pauses": None if self.gc_pauses is None else self.gc_pauses.as_dict(),
            "findings": [f.as_dict() for f in self.findings],
            "hints": list(self.hints),
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class CountChange:
    before: int
    after: int

    @property
    def change(self) -> int:
        return self.after - self.before

    def as_dict(self) -> dict[str, int]:
        return {"before": self.before, "after": self.after, "change": self.change}


@dataclass(frozen=True)
class GoroutineDiff:
    before: int
    after: int
    groups: tuple[dumps.GroupChange, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after, "groups": list(self.groups)}


@dataclass(frozen=True)
class BundleDiff:
    """Two captures of one pod, new minus old. A section is None unless both bundles have it."""

    old: str
    new: str
    target: manifest.TargetInfo | None  # the new bundle's, else the old one's
    heap: pprof.TopReport | None
    goroutines: GoroutineDiff | None
    fd_count: CountChange | None
    sockets: Mapping[str, CountChange] | None  # by TCP state, sorted by name
    problems: tuple[str, ...]
    hints: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": self.old, "new": self.new, "target": _target(self.target), "heap": self.heap,
            "goroutines": None if self.goroutines is None else self.goroutines.as_dict(),
            "fd_count": None if self.fd_count is None else self.fd_count.as_dict(),
            "sockets": None if self.sockets is None else {k: v.as_dict() for k, v in self.sockets.items()},
            "problems": list(self.problems),
            "hints": list(self.hints),
        }
