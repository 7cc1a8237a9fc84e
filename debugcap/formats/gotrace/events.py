"""The events the reader yields, and what they mean: state transitions, stacks, ranges.

Ported from the Go project's ``src/internal/trace/event.go`` (Copyright 2023 The Go Authors;
BSD-style license, https://go.dev/LICENSE): the same event, with the same context (the
goroutine, proc and thread *before* the event) and the same view of its arguments, so an
analysis written against Go's ``trace.Event`` API reads the same here.
"""

from __future__ import annotations

from typing import NamedTuple

from debugcap.formats.gotrace import spec
from debugcap.formats.gotrace.wire import Table


class Event:
    """One event in trace order. ``args`` are the wire arguments after the timestamp delta, with
    what the ordering learnt smuggled into the spare slots, as Go's reader does."""

    __slots__ = ("typ", "time", "g", "p", "m", "args", "table")

    def __init__(self, typ: int, time: int, g: int, p: int, m: int, args: list[int], table: Table | None) -> None:
        self.typ = typ
        self.time = time  # nanoseconds, strictly increasing along the trace
        self.g = g  # goroutine running when the event happened, before it (-1: none)
        self.p = p
        self.m = m
        self.args = args
        self.table = table

    def __repr__(self) -> str:
        return (f"Event({spec.event_name(self.typ) if self.typ != spec.SYNC else 'Sync'} t={self.time} "
                f"g={self.g} p={self.p} m={self.m} args={self.args})")

    def stack(self) -> int:
        """The ID of the stack of the event's own execution context (0: none), Go's ``Event.Stack``."""
        if self.typ == spec.EV_CPU_SAMPLE:
            return self.args[0]
        i = spec.STACK_ARG[self.typ]
        return 0 if i < 0 else self.args[i]


class GoTransition(NamedTuple):
    """A goroutine's state change (Go's ``StateTransition`` for a goroutine resource)."""

    goroutine: int
    old: int  # spec.GO_* state
    new: int
    reason: str  # why it stopped or blocked ("chan receive", "network", ...); "" otherwise


def make_event(table: Table | None, ctx: tuple[int, int, int], typ: int, time: int, *args: int) -> Event:
    a = [0] * spec.MAX_ARGS
    a[:len(args)] = args
    return Event(typ, time, ctx[0], ctx[1], ctx[2], a, table)


def sync_event(table: Table | None, time: int, n: int) -> Event:
    return make_event(table, (spec.NO_GOROUTINE, spec.NO_PROC, spec.NO_THREAD), spec.SYNC, time, n)


_CREATED = {spec.EV_GO_CREATE: spec.GO_RUNNABLE, spec.EV_GO_CREATE_BLOCKED: spec.GO_WAITING,
            spec.EV_GO_CREATE_SYSCALL: spec.GO_SYSCALL}
# Transitions of the goroutine running the event: (old, new).
_OWN = {spec.EV_GO_DESTROY: (spec.GO_RUNNING, spec.GO_NOT_EXIST),
        spec.EV_GO_DESTROY_SYSCALL: (spec.GO_SYSCALL, spec.GO_NOT_EXIST),
        spec.EV_GO_STOP: (spec.GO_RUNNING, spec.GO_RUNNABLE),
        spec.EV_GO_BLOCK: (spec.GO_RUNNING, spec.GO_WAITING),
        spec.EV_GO_SYSCALL_BEGIN: (spec.GO_RUNNING, spec.GO_SYSCALL),
        spec.EV_GO_SYSCALL_END: (spec.GO_SYSCALL, spec.GO_RUNNING),
        spec.EV_GO_SYSCALL_END_BLOCKED: (spec.GO_SYSCALL, spec.GO_RUNNABLE)}
_UNBLOCKS = frozenset({spec.EV_GO_UNBLOCK, spec.EV_GO_SWITCH, spec.EV_GO_SWITCH_DESTROY})
GO_TRANSITIONS = frozenset({*_CREATED, *_OWN, *_UNBLOCKS, spec.EV_GO_START, spec.EV_GO_STATUS,
                            spec.EV_GO_STATUS_STACK})


def go_transition(ev: Event) -> GoTransition:
    """The goroutine state change of an event whose type is in :data:`GO_TRANSITIONS`."""
    gid, old, new = go_states(ev)
    reason = ""
    if (ev.typ == spec.EV_GO_STOP or ev.typ == spec.EV_GO_BLOCK) and ev.table is not None:
        reason = ev.table.string(ev.args[0])
    return GoTransition(gid, old, new, reason)


def go_states(ev: Event) -> tuple[int, int, int]:
    """:func:`go_transition` without the reason, which costs a string look-up: (goroutine, old, new)."""
    typ, a = ev.typ, ev.args
    own = _OWN.get(typ)
    if own is not None:
        return ev.g, own[0], own[1]
    if typ == spec.EV_GO_START:
        return spec.signed(a[0]), spec.GO_RUNNABLE, spec.GO_RUNNING
    if typ in _UNBLOCKS:
        return spec.signed(a[0]), spec.GO_WAITING, spec.GO_RUNNABLE
    if typ in _CREATED:
        return spec.signed(a[0]), spec.GO_NOT_EXIST, _CREATED[typ]
    # GoStatus: the ordering packed the state before into the upper half of the status.
    packed = a[2]
    return spec.signed(a[0]), packed >> 32, spec.GO_STATUS_TO_STATE[packed & 0xFFFFFFFF]
