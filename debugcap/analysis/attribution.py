"""Charge every sample to the application's own code, and set the profiler's own cost apart.

Callers: :mod:`debugcap.analysis.report` and :mod:`debugcap.analysis.sections` fill the report's
``attribution``, heap growth and ``waiting`` with these; the finding rules read them.

``go tool pprof -top`` ranks leaves: ``crypto/internal/fips140/sha256.blockSHANI`` or
``sync.(*Mutex).Lock``, where the application's ``main.burnCPU`` or ``main.contendedSection``
is what a reader can change. Here each sample's stack is walked from its leaf to its first own
frame (:meth:`debugcap.analysis.appcode.Code.first_own`), which gets the whole sample (pprof's
"cum" restricted to the first own frame, so nothing counts twice); a stack without one is charged
to its leaf, marked not own. A stack whose frames below its first own frame pass through the
profiler (trace buffers, profile encoding: :meth:`debugcap.analysis.appcode.Code.charge`) measures
the capture, not the target, and goes to the profiler's share instead; the application's work run
under ``pprof.Do`` or ``trace.WithRegion`` stays its own.

The goroutine dump is charged the same way, from the one parse :mod:`debugcap.analysis.goroutines`
makes of it (:func:`waiting`), so the dump's groups and these counts name the same functions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from debugcap.analysis import appcode, goroutines, model, pprof
from debugcap.formats import pprof as pprof_format

ROWS = 10

# Dump states of a goroutine queued on a lock or a channel (runtime2.go waitReason strings).
WAITING_STATES = frozenset({
    "sync.Mutex.Lock", "sync.RWMutex.Lock", "sync.RWMutex.RLock", "semacquire", "sync.WaitGroup.Wait",
    "sync.Cond.Wait", "chan send", "chan receive", "select", "chan send (nil chan)",
    "chan receive (nil chan)", "select (no cases)",
})


@dataclass
class _Sums:
    values: Counter[str] = field(default_factory=Counter)
    leaves: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    own: dict[str, bool] = field(default_factory=dict)
    profiler: Counter[str] = field(default_factory=Counter)


def code_of(profiles: Iterable[pprof_format.Profile]) -> appcode.Code:
    """One :class:`~debugcap.analysis.appcode.Code` from every function of a bundle's profiles."""
    names: list[str] = []
    files: list[str] = []
    for p in profiles:
        names += p.node_names
        files += p.node_files
    return appcode.Code.from_functions(names, files)


def _sums(profile: pprof_format.Profile, index: int, code: appcode.Code) -> _Sums:
    out = _Sums()
    frames_of = {lid: [(profile.node_names[n], profile.node_files[n]) for n in nodes]
                 for lid, nodes in profile.loc_nodes.items()}
    weights: Counter[tuple[int, ...]] = Counter()
    for stack, values in zip(profile.stacks, profile.values, strict=True):
        if values[index]:
            weights[stack] += values[index]
    for stack, w in weights.items():
        frames = [f for lid in stack for f in frames_of[lid]] or [("<unknown>", "")]
        i, hit = code.charge(frames)
        if hit is not None:
            out.profiler[hit] += w
            continue
        function = frames[0 if i is None else i][0]
        out.values[function] += w
        out.leaves[function][frames[0][0]] += w
        out.own[function] = i is not None
    return out


def _leaf(sums: _Sums, function: str) -> str:
    return max(sums.leaves[function].items(), key=lambda kv: (kv[1], kv[0]))[0]


def attribute(profile: pprof_format.Profile, code: appcode.Code, index: str | None = None,
              rows: int = ROWS) -> model.Attribution:
    """The profile's values (sample type ``index``, pprof's default when None) per own function."""
    idx = pprof.sample_index(profile, index)
    sums = _sums(profile, idx, code)
    top = sorted(sums.values.items(), key=lambda kv: (-kv[1], kv[0]))[:rows]
    st = profile.sample_types[idx]
    profiler_leaf = max(sums.profiler.items(), key=lambda kv: (kv[1], kv[0]))[0] if sums.profiler else ""
    return model.Attribution(
        sample_type=st.type, unit=st.unit, total=pprof.total(profile, idx), duration_ns=profile.duration_ns,
        profiler=sum(sums.profiler.values()), profiler_leaf=profiler_leaf,
        rows=tuple(model.OwnRow(fn, v, _leaf(sums, fn), sums.own[fn]) for fn, v in top), time_ns=profile.time_ns)


def growth(first: pprof_format.Profile, last: pprof_format.Profile, code: appcode.Code, minutes: float,
           index: str = "inuse_space", rows: int = ROWS) -> tuple[model.HeapGrowthRow, ...]:
    """What each own function holds in ``last`` minus ``first``, the largest growth first."""
    a = _sums(first, pprof.sample_index(first, index), code)
    b = _sums(last, pprof.sample_index(last, index), code)
    grew = [(fn, v - a.values.get(fn, 0)) for fn, v in b.values.items() if v > a.values.get(fn, 0)]
    grew.sort(key=lambda kv: (-kv[1], kv[0]))
    return tuple(model.HeapGrowthRow(function=fn, growth=g, per_minute=round(g / minutes) if minutes > 0 else None,
                                     leaf=_leaf(b, fn), own=b.own[fn]) for fn, g in grew[:rows])


def waiting(stacks: Iterable[goroutines.Stack], code: appcode.Code) -> tuple[model.Waiters, ...]:
    """A dump's goroutines by state and own function, with the frame they wait in as ``top``.

    ``stacks`` are one parse's records (:attr:`debugcap.analysis.goroutines.Dump.stacks`), charged
    as its groups are (:func:`debugcap.analysis.goroutines.charge`); a debug=1 dump's have state
    "" (unknown). Stacks of the profiler (its handlers waiting for their profile) are left out.
    """
    counts: Counter[tuple[str, str, str, bool]] = Counter()
    for st in stacks:
        c = goroutines.charge(st.frames, code)
        if not c.profiler:
            counts[(st.state, c.function, c.parked_in, c.own)] += st.count
    return tuple(model.Waiters(st, fn, n, top, own)
                 for (st, fn, top, own), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
