"""The scheduler state machine that validates events and puts them in order across threads.

Each thread's events are in order on the wire; across threads, sequence numbers on goroutines
and procs (and the GC's) say which event can come next. :meth:`Ordering.advance` is asked
whether one thread's next event can happen now; if it can, the event (and any the ordering
makes up, as for a coroutine switch) goes to :attr:`Ordering.queue`. Ported handler by handler
from the Go project's ``src/internal/trace/order.go`` (Copyright 2023 The Go Authors;
BSD-style license, https://go.dev/LICENSE): an event advances here exactly when it advances
in Go's reader, so events come out in the same order. The GC, range and annotation handlers
are in :mod:`~debugcap.formats.gotrace.order_ranges`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from debugcap.formats.gotrace import spec
from debugcap.formats.gotrace.events import Event, make_event
from debugcap.formats.gotrace.order_ranges import RangeHandlers, Resource
from debugcap.formats.gotrace.order_ranges import check_ctx as _check
from debugcap.formats.gotrace.wire import Table, TraceError

Ctx = tuple[int, int, int]  # (goroutine, proc, thread)
Handler = Callable[[list[int], int, int, Table, int, int, Ctx], "Ctx | None"]

MUST_NOT, MAY, MUST = 0, 1, 2
NO_G, NO_P, NO_M = spec.NO_GOROUTINE, spec.NO_PROC, spec.NO_THREAD


class Ordering(RangeHandlers):
    """Go's ``ordering``: goroutine, proc and thread states, and the queue of ordered events.
    Handlers queue their event themselves and test a context before calling :func:`_check` (which
    finds the message): a call less per event is a tenth of the ordering's time."""

    def __init__(self, version: int) -> None:
        super().__init__()
        self.version = version
        self.p_states: dict[int, Resource] = {}
        self.m_states: dict[int, list[int]] = {}  # thread -> [goroutine, proc] bound to it
        self.queue: deque[Event] = deque()
        self.dispatch: dict[int, Handler] = {
            spec.EV_PROCS_CHANGE: self.annotation, spec.EV_PROC_START: self.proc_start,
            spec.EV_PROC_STOP: self.proc_stop, spec.EV_PROC_STEAL: self.proc_steal,
            spec.EV_PROC_STATUS: self.proc_status, spec.EV_GO_CREATE: self.go_create,
            spec.EV_GO_CREATE_SYSCALL: self.go_create_syscall, spec.EV_GO_START: self.go_start,
            spec.EV_GO_DESTROY: self.go_stop_exec, spec.EV_GO_DESTROY_SYSCALL: self.go_destroy_syscall,
            spec.EV_GO_STOP: self.go_stop_exec, spec.EV_GO_BLOCK: self.go_stop_exec,
            spec.EV_GO_UNBLOCK: self.go_unblock, spec.EV_GO_SYSCALL_BEGIN: self.go_syscall_begin,
            spec.EV_GO_SYSCALL_END: self.go_syscall_end,
            spec.EV_GO_SYSCALL_END_BLOCKED: self.go_syscall_end_blocked, spec.EV_GO_STATUS: self.go_status,
            spec.EV_GO_SWITCH: self.go_switch, spec.EV_GO_SWITCH_DESTROY: self.go_switch,
            spec.EV_GO_CREATE_BLOCKED: self.go_create, spec.EV_GO_STATUS_STACK: self.go_status,
            **self.range_dispatch(),
        }

    def advance(self, typ: int, args: list[int], time: int, table: Table, m: int, gen: int) -> bool:
        """Whether thread ``m``'s next event can happen now; if so it (and any it implies) is queued."""
        if self.initial_gen == 0:
            self.initial_gen = gen
        ms = None
        if m == NO_M:
            cur = (NO_G, NO_P, m)
        else:
            ms = self.m_states.get(m)
            if ms is None:
                ms = self.m_states[m] = [NO_G, NO_P]
            cur = (ms[0], ms[1], m)
        handler = self.dispatch.get(typ)
        if handler is None:
            raise TraceError(f"bad event type found while ordering: {typ}")
        new = handler(args, typ, time, table, m, gen, cur)
        if new is None:
            return False
        if ms is not None:
            ms[0], ms[1] = new[0], new[1]
        return True

    def name(self, typ: int) -> str:
        return spec.event_name(typ)

    # ---- procs ----

    def proc_status(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        pid, status = spec.signed(a[0]), a[1]
        if status >= len(spec.PROC_STATUS_TO_STATE):
            raise TraceError(f"invalid status for proc {pid}: {status}")
        old = spec.PROC_STATUS_TO_STATE[status]
        s = self.p_states.get(pid)
        if s is not None:
            if status == spec.PROC_STATUS_SYSCALL_ABANDONED and s.status == spec.PROC_STATUS_SYSCALL:
                # Nothing was lost: the proc was known to be in a syscall. Promote it.
                old = spec.PROC_RUNNING
                a[1] = spec.PROC_STATUS_SYSCALL
            elif status == spec.PROC_STATUS_SYSCALL_ABANDONED and s.status == spec.PROC_STATUS_SYSCALL_ABANDONED:
                old = spec.PROC_IDLE
                a[1] = spec.PROC_STATUS_SYSCALL_ABANDONED
            elif s.status != status:
                raise TraceError(f"inconsistent status for proc {pid}: old {s.status} vs. new {status}")
            s.seq = (gen, 0)
        else:
            self.p_states[pid] = Resource(status, (gen, 0))
            old = spec.PROC_UNDETERMINED if gen == self.initial_gen else spec.PROC_NOT_EXIST
        a[2] = old  # smuggled for the state transition
        new = cur
        if status in (spec.PROC_STATUS_RUNNING, spec.PROC_STATUS_SYSCALL):
            new = (cur[0], pid, cur[2])
        if status == spec.PROC_STATUS_SYSCALL_ABANDONED and old == spec.PROC_RUNNING:
            # About to be stolen, and reported by another thread: emit it where it is bound.
            found = False
            for mid, ms in self.m_states.items():
                if ms[1] == pid:
                    cur = (ms[0], pid, mid)
                    found = True
            if not found:
                raise TraceError(f"failed to find sched context for proc {pid} that's about to be stolen")
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return new

    def proc_start(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        pid, seq = spec.signed(a[0]), (gen, a[1])
        s = self.p_states.get(pid)
        if s is None or s.status != spec.PROC_STATUS_IDLE or not _succeeds(seq, s.seq) or cur[1] != NO_P:
            return None  # not yet: another thread's events must come first
        _check(cur, MUST, MUST_NOT, MAY)
        s.status, s.seq = spec.PROC_STATUS_RUNNING, seq
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return (cur[0], pid, cur[2])

    def proc_stop(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        s = self.p_states.get(cur[1])
        if s is None:
            raise TraceError(f"event {self.name(typ)} for proc ({cur[1]}) that doesn't exist")
        if s.status not in (spec.PROC_STATUS_RUNNING, spec.PROC_STATUS_SYSCALL):
            raise TraceError(f"{self.name(typ)} event for proc that's not Running or Syscall")
        if cur[2] == -1 or cur[1] == -1:
            _check(cur, MUST, MUST, MAY)
        s.status = spec.PROC_STATUS_IDLE
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return (cur[0], NO_P, cur[2])

    def proc_steal(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        pid, seq = spec.signed(a[0]), (gen, a[1])
        s = self.p_states.get(pid)
        if s is None or s.status not in (spec.PROC_STATUS_SYSCALL, spec.PROC_STATUS_SYSCALL_ABANDONED) \
                or not _succeeds(seq, s.seq):
            return None
        _check(cur, MUST, MAY, MAY)
        old_status = s.status
        a[3] = old_status  # smuggled: the transition is Idle -> Idle after an abandoned syscall
        s.status, s.seq = spec.PROC_STATUS_IDLE, seq
        if old_status == spec.PROC_STATUS_SYSCALL_ABANDONED:
            self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
            return cur
        mid = spec.signed(a[2])
        if mid == cur[2]:
            if cur[1] != pid:
                raise TraceError(f"tried to self-steal proc {pid} (thread {mid}), but got proc {cur[1]} instead")
            self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
            return (cur[0], NO_P, cur[2])
        ms = self.m_states.get(mid)
        if ms is None:
            raise TraceError(f"stole proc from non-existent thread {mid}")
        if ms[1] != pid:
            raise TraceError(f"tried to steal proc {pid} from thread {mid}, but got proc {ms[1]} instead")
        ms[1] = NO_P  # that thread is leaving its syscall and can go on without the proc
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    # ---- goroutines ----

    def go_status(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        gid, mid, status = spec.signed(a[0]), spec.signed(a[1]), a[2]
        if status >= len(spec.GO_STATUS_TO_STATE):
            raise TraceError(f"invalid status for goroutine {gid}: {status}")
        old = spec.GO_STATUS_TO_STATE[status]
        s = self.g_states.get(gid)
        if s is not None:
            if s.status != status:
                raise TraceError(f"inconsistent status for goroutine {gid}: old {s.status} vs. new {status}")
            s.seq = (gen, 0)
        elif gen == self.initial_gen:
            self.g_states[gid] = Resource(status, (gen, 0))
            old = spec.GO_UNDETERMINED
        else:
            raise TraceError(f"found goroutine status for new goroutine after the first generation: "
                             f"id={gid} status={status}")
        a[2] = old << 32 | status  # smuggled for the state transition
        new = cur
        if status == spec.GO_STATUS_RUNNING:
            new = (gid, cur[1], cur[2])
        elif status == spec.GO_STATUS_SYSCALL:
            if mid == NO_M:
                raise TraceError(f"found goroutine {gid} in syscall without a thread")
            if mid == cur[2]:
                if gen != self.initial_gen and cur[0] != gid:
                    raise TraceError(f"inconsistent thread for syscalling goroutine {gid}: "
                                     f"thread has goroutine {cur[0]}")
                new = (gid, cur[1], cur[2])
            else:
                ms = self.m_states.get(mid)
                if ms is not None:
                    if ms[0] != gid:
                        raise TraceError(f"inconsistent thread for syscalling goroutine {gid}: "
                                         f"thread has goroutine {ms[0]}")
                    cur = (ms[0], cur[1], cur[2])
                else:
                    self.m_states[mid] = [gid, NO_P]
                cur = (cur[0], cur[1], mid)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return new

    def go_create(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        if cur[2] == -1 or cur[1] == -1:
            _check(cur, MUST, MUST, MAY)
        s = self.g_states.get(cur[0])
        if s is not None and s.status != spec.GO_STATUS_RUNNING:
            raise TraceError(f"{self.name(typ)} event for goroutine that's not Running")
        new_gid = spec.signed(a[0])
        if new_gid in self.g_states:
            raise TraceError(f"tried to create goroutine ({new_gid}) that already exists")
        status = spec.GO_STATUS_WAITING if typ == spec.EV_GO_CREATE_BLOCKED else spec.GO_STATUS_RUNNABLE
        self.g_states[new_gid] = Resource(status, (gen, 0))
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def _running(self, typ: int, cur: Ctx, want: int = spec.GO_STATUS_RUNNING) -> Resource:
        s = self.g_states.get(cur[0])
        if s is None:
            raise TraceError(f"event {self.name(typ)} for goroutine ({cur[0]}) that doesn't exist")
        if s.status != want:
            raise TraceError(f"{self.name(typ)} event for goroutine that's not in state {want}")
        return s

    def go_stop_exec(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        if -1 in cur:
            _check(cur, MUST, MUST, MUST)
        s = self._running(typ, cur)
        if typ == spec.EV_GO_DESTROY:
            del self.g_states[cur[0]]
        elif typ == spec.EV_GO_STOP:
            s.status = spec.GO_STATUS_RUNNABLE
        else:
            s.status = spec.GO_STATUS_WAITING
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return (NO_G, cur[1], cur[2])

    def go_start(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        gid, seq = spec.signed(a[0]), (gen, a[1])
        s = self.g_states.get(gid)
        if s is None or s.status != spec.GO_STATUS_RUNNABLE or not _succeeds(seq, s.seq):
            return None
        if cur[2] == -1 or cur[1] == -1 or cur[0] != -1:
            _check(cur, MUST, MUST, MUST_NOT)
        s.status, s.seq = spec.GO_STATUS_RUNNING, seq
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return (gid, cur[1], cur[2])

    def go_unblock(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        gid, seq = spec.signed(a[0]), (gen, a[1])
        s = self.g_states.get(gid)
        if s is None or s.status != spec.GO_STATUS_WAITING or not _succeeds(seq, s.seq):
            return None
        s.status, s.seq = spec.GO_STATUS_RUNNABLE, seq
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def go_switch(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        # A coroutine switch is an unblock of the next goroutine, a block (or exit) of this one,
        # and a start of the next: three events, as Go's reader makes them.
        if -1 in cur:
            _check(cur, MUST, MUST, MUST)
        s = self._running(typ, cur)
        nxt, seq = spec.signed(a[0]), (gen, a[1])
        ns = self.g_states.get(nxt)
        if ns is None or ns.status != spec.GO_STATUS_WAITING or not _succeeds(seq, ns.seq):
            return None
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        if typ == spec.EV_GO_SWITCH:
            s.status = spec.GO_STATUS_WAITING
            self.queue.append(make_event(tb, cur, spec.EV_GO_BLOCK, t, 0, 0))
        else:
            del self.g_states[cur[0]]
            self.queue.append(make_event(tb, cur, spec.EV_GO_DESTROY, t))
        ns.status, ns.seq = spec.GO_STATUS_RUNNING, seq
        self.queue.append(make_event(tb, (NO_G, cur[1], cur[2]), spec.EV_GO_START, t, nxt & (1 << 64) - 1, a[1]))
        return (nxt, cur[1], cur[2])

    def go_syscall_begin(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int,
                         cur: Ctx) -> Ctx | None:
        if -1 in cur:
            _check(cur, MUST, MUST, MUST)
        s = self._running(typ, cur)
        s.status = spec.GO_STATUS_SYSCALL
        ps = self.p_states.get(cur[1])
        if ps is None:
            raise TraceError(f"uninitialized proc {cur[1]} found during {self.name(typ)}")
        ps.status = spec.PROC_STATUS_SYSCALL
        pseq = (gen, a[0])
        if not _succeeds(pseq, ps.seq):
            raise TraceError(f"failed to advance {self.name(typ)}: can't make sequence: {ps.seq} -> {pseq}")
        ps.seq = pseq
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def go_syscall_end(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int, cur: Ctx) -> Ctx | None:
        if -1 in cur:
            _check(cur, MUST, MUST, MUST)
        s = self._running(typ, cur, spec.GO_STATUS_SYSCALL)
        s.status = spec.GO_STATUS_RUNNING
        ps = self.p_states.get(cur[1])
        if ps is None:
            raise TraceError(f"uninitialized proc {cur[1]} found during {self.name(typ)}")
        if ps.status != spec.PROC_STATUS_SYSCALL:
            raise TraceError(f"expected proc {cur[1]} in state Syscall, but got {ps.status} instead")
        ps.status = spec.PROC_STATUS_RUNNING
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return cur

    def go_syscall_end_blocked(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int,
                               cur: Ctx) -> Ctx | None:
        # Only once this thread's proc has left the syscall state (stopped or stolen).
        if cur[1] != NO_P:
            ps = self.p_states.get(cur[1])
            if ps is None:
                raise TraceError(f"uninitialized proc {cur[1]} found during {self.name(typ)}")
            if ps.status == spec.PROC_STATUS_SYSCALL:
                return None
        _check(cur, MUST, MAY, MUST)
        s = self._running(typ, cur, spec.GO_STATUS_SYSCALL)
        s.status = spec.GO_STATUS_RUNNABLE
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return (NO_G, cur[1], cur[2])

    def go_create_syscall(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int,
                          cur: Ctx) -> Ctx | None:
        _check(cur, MUST, MAY, MUST_NOT)
        new_gid = spec.signed(a[0])
        if new_gid in self.g_states:
            raise TraceError(f"tried to create goroutine ({new_gid}) in syscall that already exists")
        self.g_states[new_gid] = Resource(spec.GO_STATUS_SYSCALL, (gen, 0))
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return (new_gid, cur[1], cur[2])

    def go_destroy_syscall(self, a: list[int], typ: int, t: int, tb: Table, m: int, gen: int,
                           cur: Ctx) -> Ctx | None:
        _check(cur, MUST, MAY, MUST)
        self._running(typ, cur, spec.GO_STATUS_SYSCALL)
        del self.g_states[cur[0]]
        new = (NO_G, cur[1], cur[2])
        if cur[1] != NO_P:
            # The thread ID may be reused: let the proc go now, with a self-steal, as Go does.
            ps = self.p_states.get(cur[1])
            if ps is None:
                raise TraceError(f"found invalid proc {cur[1]} during {self.name(typ)}")
            if ps.status != spec.PROC_STATUS_SYSCALL:
                raise TraceError(f"proc {cur[1]} in unexpected state {ps.status} during {self.name(typ)}")
            ps.status = spec.PROC_STATUS_SYSCALL_ABANDONED
            new = (NO_G, NO_P, cur[2])
            steal = make_event(tb, cur, spec.EV_PROC_STEAL, t, cur[1] & (1 << 64) - 1)
            steal.args[3] = spec.PROC_STATUS_SYSCALL
            self.queue.append(steal)
        self.queue.append(Event(typ, t, cur[0], cur[1], cur[2], a, tb))
        return new


def _succeeds(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] == b[0] and a[1] == b[1] + 1
