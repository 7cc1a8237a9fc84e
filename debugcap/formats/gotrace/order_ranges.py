"""The ordering's handlers for GC cycles, time ranges (STW, sweeps, mark assists), tasks, regions
and annotations, and the per-resource state they share with :mod:`~debugcap.formats.gotrace.order`.

Ported from the Go project's ``src/internal/trace/order.go`` (Copyright 2023 The Go Authors;
BSD-style license, https://go.dev/LICENSE).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from debugcap.formats.gotrace import spec
from debugcap.formats.gotrace.events import Event
from debugcap.formats.gotrace.wire import Table, TraceError

Ctx = tuple[int, int, int]
GC_UNDETERMINED, GC_NOT_RUNNING, GC_RUNNING = range(3)
NO_TASK = (1 << 64) - 1
_MUST_NOT, _MAY, _MUST = 0, 1, 2
_NONE = {0: spec.NO_GOROUTINE, 1: spec.NO_PROC, 2: spec.NO_THREAD}
_WHAT = {0: "goroutine", 1: "proc", 2: "thread"}


class Resource:
    """A goroutine's or proc's state: wire status, sequence (generation, number), open ranges."""

    __slots__ = ("status", "seq", "in_flight", "regions")

    def __init__(self, status: int, seq: tuple[int, int]) -> None:
        self.status = status
        self.seq = seq
        self.in_flight: list[tuple[int, Any]] = []  # (begin event type, description)
        self.regions: list[tuple[int, str]] = []  # user regions open on a goroutine: (task, name)

    def begin_range(self, rng: tuple[int, Any]) -> None:
        if rng in self.in_flight:
            raise TraceError(f"discovered event already in-flight for when starting event "
                             f"{spec.event_name(rng[0])}")
        self.in_flight.append(rng)

    def active_range(self, rng: tuple[int, Any], initial_gen: bool) -> None:
        if initial_gen:
            if rng in self.in_flight:
                raise TraceError(f"found named active range already in first gen: {spec.event_name(rng[0])}")
            self.in_flight.append(rng)
        elif rng not in self.in_flight:
            raise TraceError(f"resource is missing active range: {spec.event_name(rng[0])}")

    def end_range(self, typ: int) -> Any:
        start = spec.START_EVENT[typ]
        for i, r in enumerate(self.in_flight):
            if r[0] == start:
                self.in_flight[i] = self.in_flight[-1]
                self.in_flight.pop()
                return r[1]
        raise TraceError(f"tried to end event {spec.event_name(start)}, but not in-flight")


def range_type(typ: int, desc: Any = 0) -> tuple[int, Any]:
    return (spec.START_EVENT.get(typ, typ), desc)


def check_ctx(ctx: Ctx, m: int, p: int, g: int) -> None:
    """Go's validateCtx: each of thread, proc, goroutine must (not) be there."""
    # Every ID for "none" is -1: one test of each against the requirement, per event.
    has_m, has_p, has_g = ctx[2] != -1, ctx[1] != -1, ctx[0] != -1
    if has_m != (m == _MUST) and m != _MAY or has_p != (p == _MUST) and p != _MAY \
            or has_g != (g == _MUST) and g != _MAY:
        for i, want in ((2, m), (1, p), (0, g)):  # Go's order of checks, for its message
            if want == _MUST and ctx[i] == _NONE[i]:
                raise TraceError(f"expected a {_WHAT[i]} but didn't have one")
            if want == _MUST_NOT and ctx[i] != _NONE[i]:
                raise TraceError(f"expected no {_WHAT[i]} but had one")


def _user(ctx: Ctx) -> None:
    if ctx[0] == -1 or ctx[1] == -1 or ctx[2] == -1:
        check_ctx(ctx, _MUST, _MUST, _MUST)


Handler = Callable[[list[int], int, int, Table, int, int, Ctx], "Ctx | None"]


class RangeHandlers:
    """Half of the ordering: GC, ranges, tasks, regions; :class:`order.Ordering` is the rest."""

    queue: deque[Event]
    p_states: dict[int, Resource]

    def __init__(self) -> None:
        self.g_states: dict[int, Resource] = {}
        self.initial_gen = 0
        self.gc_seq = 0
        self.gc_state = GC_UNDETERMINED
        self.active_tasks: dict[int, tuple[str, int]] = {}  # task -> (name, parent)

    def range_dispatch(self) -> dict[int, Handler]:
        return {
            spec.EV_STW_BEGIN: self.go_range_begin, spec.EV_STW_END: self.go_range_end,
            spec.EV_GC_ACTIVE: self.gc_active, spec.EV_GC_BEGIN: self.gc_begin, spec.EV_GC_END: self.gc_end,
            spec.EV_GC_SWEEP_ACTIVE: self.gc_sweep_active, spec.EV_GC_SWEEP_BEGIN: self.gc_sweep_begin,
            spec.EV_GC_SWEEP_END: self.gc_sweep_end, spec.EV_GC_MARK_ASSIST_ACTIVE: self.go_range_active,
            spec.EV_GC_MARK_ASSIST_BEGIN: self.go_range_begin, spec.EV_GC_MARK_ASSIST_END: self.go_range_end,
            spec.EV_HEAP_ALLOC: self.heap_metric, spec.EV_HEAP_GOAL: self.heap_metric,
            spec.EV_GO_LABEL: self.annotation, spec.EV_USER_TASK_BEGIN: self.user_task_begin,
            spec.EV_USER_TASK_END: self.user_task_end, spec.EV_USER_REGION_BEGIN: self.user_region,
            spec.EV_USER_REGION_END: self.user_region, spec.EV_USER_LOG: self.annotation,
            **{t: self.alloc_free for t in range(spec.EV_SPAN, spec.EV_GOROUTINE_STACK_FREE + 1)},
        }

    def annotation(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        _user(cur)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def heap_metric(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        if cur[2] == -1 or cur[1] == -1:
            check_ctx(cur, _MUST, _MUST, _MAY)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def alloc_free(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        check_ctx(cur, _MUST, _MAY, _MAY)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    # ---- GC cycles: sequence numbers order a cycle's begin and end across threads ----

    def gc_active(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        seq = a[0]
        if gen == self.initial_gen:
            if self.gc_state != GC_UNDETERMINED:
                raise TraceError("GCActive in the first generation isn't first GC event")
            self.gc_seq, self.gc_state = seq, GC_RUNNING
            self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
            return cur
        if seq != self.gc_seq + 1:
            return None
        if self.gc_state != GC_RUNNING:
            raise TraceError("encountered GCActive while GC was not in progress")
        self.gc_seq = seq
        _user(cur)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def gc_begin(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        seq = a[0]
        if self.gc_state == GC_UNDETERMINED:
            self.gc_seq, self.gc_state = seq, GC_RUNNING
            self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
            return cur
        if seq != self.gc_seq + 1:
            return None
        if self.gc_state == GC_RUNNING:
            raise TraceError("encountered GCBegin while GC was already in progress")
        self.gc_seq, self.gc_state = seq, GC_RUNNING
        _user(cur)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def gc_end(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        seq = a[0]
        if seq != self.gc_seq + 1:
            return None
        if self.gc_state == GC_NOT_RUNNING:
            raise TraceError("encountered GCEnd when GC was not in progress")
        if self.gc_state == GC_UNDETERMINED:
            raise TraceError("encountered GCEnd when GC was in an undetermined state")
        self.gc_seq, self.gc_state = seq, GC_NOT_RUNNING
        _user(cur)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    # ---- ranges bound to a proc (sweeps) or a goroutine (STW, mark assists) ----

    def gc_sweep_begin(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int,
                       cur: Ctx) -> Ctx | None:
        if cur[2] == -1 or cur[1] == -1:
            check_ctx(cur, _MUST, _MUST, _MAY)
        self.p_states[cur[1]].begin_range(range_type(typ))
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def gc_sweep_active(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int,
                        cur: Ctx) -> Ctx | None:
        pid = spec.signed(a[0])
        ps = self.p_states.get(pid)
        if ps is None:
            raise TraceError(f"encountered GCSweepActive for unknown proc {pid}")
        ps.active_range(range_type(typ), gen == self.initial_gen)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def gc_sweep_end(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        if cur[2] == -1 or cur[1] == -1:
            check_ctx(cur, _MUST, _MUST, _MAY)
        self.p_states[cur[1]].end_range(typ)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def _current_g(self, typ: int, cur: Ctx) -> Resource:
        gs = self.g_states.get(cur[0])
        if gs is None:
            raise TraceError(f"encountered event of type {typ} without known state for current goroutine {cur[0]}")
        return gs

    def go_range_begin(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int,
                       cur: Ctx) -> Ctx | None:
        _user(cur)
        desc = a[0] if typ == spec.EV_STW_BEGIN else 0
        self._current_g(typ, cur).begin_range(range_type(typ, desc))
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def go_range_active(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int,
                        cur: Ctx) -> Ctx | None:
        gid = spec.signed(a[0])
        gs = self.g_states.get(gid)
        if gs is None:
            raise TraceError(f"uninitialized goroutine {gid} found during {spec.event_name(typ)}")
        gs.active_range(range_type(typ), gen == self.initial_gen)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def go_range_end(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        _user(cur)
        desc = self._current_g(typ, cur).end_range(typ)
        if typ == spec.EV_STW_END:
            a[0] = desc  # the STW kind's string ID, from the begin event (maybe an older generation's)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    # ---- tasks and regions ----

    def user_task_begin(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int,
                        cur: Ctx) -> Ctx | None:
        tid = a[0]
        if tid in self.active_tasks:
            raise TraceError(f"task ID conflict: {tid}")
        if a[1] == 0:  # 0 means no parent here, not the background task (only regions attach to it)
            a[1] = NO_TASK
        name = tb.strings.get(a[2]) if a[2] else ""
        if name is None:
            raise TraceError(f"invalid string ID {a[2]} for {spec.event_name(typ)} event")
        self.active_tasks[tid] = (name, a[1])
        _user(cur)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def user_task_end(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        task = self.active_tasks.pop(a[0], None)
        # The name may come from an older generation: carry it in this generation's extra strings.
        a[2], a[3] = (task[1], tb.add_extra_string(task[0])) if task else (NO_TASK, 0)
        _user(cur)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def user_region(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        _user(cur)
        name = tb.strings.get(a[1]) if a[1] else ""
        if name is None:
            raise TraceError(f"invalid string ID {a[1]} for {spec.event_name(typ)} event")
        gs = self.g_states.get(cur[0])
        if gs is None:
            raise TraceError(f"encountered {spec.event_name(typ)} without known state for current goroutine {cur[0]}")
        region = (a[0], name)
        if typ == spec.EV_USER_REGION_BEGIN:
            gs.regions.append(region)
        elif gs.regions:  # an end for a region begun before the trace started is fine
            if gs.regions[-1] != region:
                raise TraceError(f"misuse of region in goroutine {cur[0]}: region end {region} when the "
                                 f"inner-most active region start event is {gs.regions[-1]}")
            gs.regions.pop()
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur
