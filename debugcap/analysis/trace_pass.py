"""One pass over a trace's events: what ``go tool trace -pprof`` counts, and the summary's numbers.

Callers: :mod:`debugcap.analysis.traces` (the public side: summary, profiles, bundles).

The profiles follow ``cmd/trace/pprof.go`` (``makeComputePprofFunc``, ``pprofMatchingGoroutines``)
and the goroutine lifetimes it filters by follow ``internal/trace/summary.go`` (Go's
``Summarizer``: StartTime, EndTime) from the Go project (Copyright 2014, 2023 The Go Authors;
BSD-style license, https://go.dev/LICENSE). In particular, as there:

- a goroutine is tracked from the transition *into* the state (for net and sync only when the
  transition's reason matches) until its next transition to another state, and the sample's
  stack is the stack of the event that began the wait (for sched: the unblocking or creating
  event's, for net/sync: the blocking goroutine's, for syscall: the syscall's);
- a wait counts only where it overlaps the goroutine's lifetime, [first time it ran, exit or
  trace end], so a new goroutine's first wait before it ever ran counts for nothing;
- only events up to the last generation boundary count when the trace breaks inside a
  generation, but the lifetimes come from every event read, as in ``cmd/trace``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from debugcap.formats.gotrace import GO_TRANSITIONS, Event, Table, go_states, go_transition, spec

PROFILE_KINDS = ("sched", "net", "sync", "syscall")

# cmd/trace's computePprof{Sched,IO,Block,Syscall}: the state tracked, and which reasons count.
_TRACKED: dict[str, tuple[int, Callable[[str], bool]]] = {
    "sched": (spec.GO_RUNNABLE, lambda _reason: True),
    "net": (spec.GO_WAITING, lambda reason: reason == "network"),
    "sync": (spec.GO_WAITING, lambda reason: "chan" in reason or "sync" in reason or "select" in reason),
    "syscall": (spec.GO_SYSCALL, lambda _reason: True),
}


@dataclass
class Record:
    """One stack's share of a profile (Go's ``traceviewer.ProfileRecord``)."""

    count: int
    time_ns: int
    table: Table | None  # the generation of the last stack counted here, which names the frames
    stack: int


# A wait that ended: (goroutine, start, end, the start event's generation table and stack ID).
_Wait = tuple[int, int, int, "Table | None", int]


@dataclass
class _Tracker:
    state: int
    counts: Callable[[str], bool]
    open: dict[int, tuple[int, Table | None, int]] = field(default_factory=dict)
    pending: list[_Wait] = field(default_factory=list)  # ended since the last generation boundary
    done: list[_Wait] = field(default_factory=list)


@dataclass
class Stats:
    """The summary's counters; :meth:`TracePass.rollback` restores them to a generation boundary."""

    events: int = 0
    first_ns: int = 0
    end_ns: int = 0
    gomaxprocs: int | None = None
    procs: set[int] = field(default_factory=set)
    created: int = 0
    alive: set[int] = field(default_factory=set)
    alive_max: int = 0
    gc_count: int = 0
    stw_ns: list[int] = field(default_factory=list)
    sched_ns: list[int] = field(default_factory=list)
    cpu_samples: int = 0
    heap_max: int | None = None

    def snapshot(self) -> Stats:
        """A copy as of now; its lists are cut to today's length only by :meth:`TracePass.final`,
        since copying them at every generation would cost as much as the pass."""
        return Stats(self.events, self.first_ns, self.end_ns, self.gomaxprocs, set(self.procs), self.created,
                     set(self.alive), self.alive_max, self.gc_count, self.stw_ns, self.sched_ns,
                     self.cpu_samples, self.heap_max)


class TracePass:
    """Feed it the events of one trace in order with :meth:`run`, then read :meth:`profile` and
    :meth:`final` (the stats up to the last generation boundary). Without ``profiles``, only the
    stats: no waits tracked, no lifetimes, no wait reasons looked up (a third of the pass)."""

    def __init__(self, *, profiles: bool = True) -> None:
        self.profiles = profiles
        self.trackers = {kind: _Tracker(*_TRACKED[kind]) for kind in PROFILE_KINDS}
        self._each = tuple(self.trackers.values())
        # Go's Summarizer, reduced to what the profiles need: when each goroutine first ran and ended.
        self.started: dict[int, int] = {}
        self.ended: dict[int, int] = {}
        self.stats = Stats()
        self._kept = Stats()
        self._kept_lens = (0, 0)
        self.syncs = 0  # generation boundaries seen
        self._runnable: dict[int, int] = {}
        self._stw: dict[int, int] = {}
        self._other: dict[int, Callable[[Event], None]] = {
            spec.EV_GC_BEGIN: self._gc, spec.EV_STW_BEGIN: self._stw_begin, spec.EV_STW_END: self._stw_end,
            spec.EV_PROCS_CHANGE: self._procs_change, spec.EV_PROC_START: self._proc,
            spec.EV_PROC_STATUS: self._proc, spec.EV_PROC_STEAL: self._proc, spec.EV_CPU_SAMPLE: self._cpu,
        }

    def run(self, events: Iterable[Event]) -> None:
        stats, other, transitions = self.stats, self._other, GO_TRANSITIONS
        full, count, sync, heap = self.profiles, self._count, spec.SYNC, spec.EV_HEAP_ALLOC
        for ev in events:
            if not stats.events:
                stats.first_ns = ev.time
            stats.events += 1
            typ = ev.typ
            if typ in transitions:
                if full:
                    self._transition(ev)
                else:
                    gid, old, new = go_states(ev)
                    if old != new:
                        count(gid, old, new, ev.time)
            elif typ == heap:  # a third of all events: inline
                value, top = ev.args[0], stats.heap_max
                if top is None or value > top:
                    stats.heap_max = value
            elif typ == sync:
                self._commit(ev.time)
            elif typ in other:
                other[typ](ev)

    def _commit(self, time: int) -> None:
        self.syncs += 1
        self.stats.end_ns = time
        for t in self.trackers.values():
            t.done.extend(t.pending)
            t.pending.clear()
        self._kept = self.stats.snapshot()
        self._kept_lens = (len(self.stats.stw_ns), len(self.stats.sched_ns))

    def final(self) -> Stats:
        """The stats up to the last generation boundary: all of them unless the trace broke."""
        kept = self._kept
        kept.stw_ns = kept.stw_ns[:self._kept_lens[0]]
        kept.sched_ns = kept.sched_ns[:self._kept_lens[1]]
        return kept

    def _transition(self, ev: Event) -> None:
        gid, old, new, reason = go_transition(ev)
        t = ev.time
        if old != new:
            self._lifetime(gid, old, new, reason, t)
            self._count(gid, old, new, t)
        for tr in self._each:
            opened = tr.open
            if gid in opened:
                if new != tr.state:
                    start, table, stack = opened.pop(gid)
                    tr.pending.append((gid, start, t, table, stack))
            elif new == tr.state and tr.counts(reason):
                opened[gid] = (t, ev.table, ev.stack())

    def _lifetime(self, gid: int, old: int, new: int, reason: str, t: int) -> None:
        if old in (spec.GO_UNDETERMINED, spec.GO_NOT_EXIST):
            self.started[gid] = 0
            self.ended.pop(gid, None)
        if new == spec.GO_RUNNING:
            if not self.started.get(gid):
                self.started[gid] = t
        elif new == spec.GO_NOT_EXIST or (new == spec.GO_WAITING and reason == "forever"):
            self.ended[gid] = t  # Go's summarizer takes "blocked forever" as an exit

    def _count(self, gid: int, old: int, new: int, t: int) -> None:
        s = self.stats
        if old == spec.GO_NOT_EXIST:
            s.created += 1
        if old in (spec.GO_UNDETERMINED, spec.GO_NOT_EXIST):
            s.alive.add(gid)
            s.alive_max = max(s.alive_max, len(s.alive))
        elif new == spec.GO_NOT_EXIST:
            s.alive.discard(gid)
        if new == spec.GO_RUNNABLE and old != spec.GO_UNDETERMINED:
            self._runnable[gid] = t  # a wait whose start we saw (not one under way when tracing began)
        elif old == spec.GO_RUNNABLE:
            since = self._runnable.pop(gid, None)
            if since is not None and new == spec.GO_RUNNING:
                s.sched_ns.append(t - since)

    def _gc(self, ev: Event) -> None:
        self.stats.gc_count += 1

    def _stw_begin(self, ev: Event) -> None:
        self._stw[ev.g] = ev.time

    def _stw_end(self, ev: Event) -> None:
        start = self._stw.pop(ev.g, None)
        if start is not None:
            self.stats.stw_ns.append(ev.time - start)

    def _procs_change(self, ev: Event) -> None:
        self.stats.gomaxprocs = ev.args[0]

    def _proc(self, ev: Event) -> None:
        self.stats.procs.add(spec.signed(ev.args[0]))

    def _cpu(self, ev: Event) -> None:
        self.stats.cpu_samples += 1

    def profile(self, kind: str) -> list[Record]:
        """``go tool trace -pprof=KIND``'s records: one per distinct stack (its PCs), in the order
        stacks were first counted."""
        if not self.profiles:
            raise ValueError("TracePass(profiles=False) tracks no waits: it has no profiles")
        end = self._kept.end_ns  # the trace's end: the last event kept, as cmd/trace's endTime
        by_stack: dict[tuple[int, ...], Record] = {}
        for gid, start, stop, table, stack in self.trackers[kind].done:
            if gid not in self.started:
                continue  # no lifetime: Go gives it no interval, so nothing overlaps
            lo, hi = self.started[gid], self.ended.get(gid) or end
            if hi < start or stop < lo:
                continue
            overlap = min(hi, stop) - max(lo, start)
            if overlap <= 0:
                continue
            key = _pcs_key(table.stacks.get(stack, ()) if table is not None and stack else ())
            rec = by_stack.get(key)
            if rec is None:
                rec = by_stack[key] = Record(0, 0, table, stack)
            rec.count += 1
            rec.time_ns += overlap
            rec.table, rec.stack = table, stack  # Go keeps the newest stack handle for the record
        return list(by_stack.values())


def _pcs_key(pcs: tuple[int, ...]) -> tuple[int, ...]:
    """Go's deduplication key: the first 128 PCs, zero-padded, so a stack of PC-0 frames (the
    runtime writes some) is the same as no stack at all."""
    end = min(len(pcs), spec.MAX_FRAMES_PER_STACK)
    while end and pcs[end - 1] == 0:
        end -= 1
    return pcs if end == len(pcs) else pcs[:end]
