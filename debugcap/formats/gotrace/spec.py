"""The wire-format tables of Go's execution trace since Go 1.22: event types, their arguments, states.

Transcribed from the Go project's ``src/internal/trace/tracev2/events.go`` and
``src/internal/trace/resources.go`` (Copyright 2023 The Go Authors; BSD-style license,
https://go.dev/LICENSE). The numbering is cumulative: a Go 1.22 trace uses a prefix of the
Go 1.26 table, so one table serves every version, as in Go's own reader.
"""

from __future__ import annotations

from typing import Final

# ---- event types (tracev2.EventType) ----

EV_EVENT_BATCH: Final = 1
EV_STACKS: Final = 2
EV_STACK: Final = 3
EV_STRINGS: Final = 4
EV_STRING: Final = 5
EV_CPU_SAMPLES: Final = 6
EV_CPU_SAMPLE: Final = 7
EV_FREQUENCY: Final = 8
EV_PROCS_CHANGE: Final = 9
EV_PROC_START: Final = 10
EV_PROC_STOP: Final = 11
EV_PROC_STEAL: Final = 12
EV_PROC_STATUS: Final = 13
EV_GO_CREATE: Final = 14
EV_GO_CREATE_SYSCALL: Final = 15
EV_GO_START: Final = 16
EV_GO_DESTROY: Final = 17
EV_GO_DESTROY_SYSCALL: Final = 18
EV_GO_STOP: Final = 19
EV_GO_BLOCK: Final = 20
EV_GO_UNBLOCK: Final = 21
EV_GO_SYSCALL_BEGIN: Final = 22
EV_GO_SYSCALL_END: Final = 23
EV_GO_SYSCALL_END_BLOCKED: Final = 24
EV_GO_STATUS: Final = 25
EV_STW_BEGIN: Final = 26
EV_STW_END: Final = 27
EV_GC_ACTIVE: Final = 28
EV_GC_BEGIN: Final = 29
EV_GC_END: Final = 30
EV_GC_SWEEP_ACTIVE: Final = 31
EV_GC_SWEEP_BEGIN: Final = 32
EV_GC_SWEEP_END: Final = 33
EV_GC_MARK_ASSIST_ACTIVE: Final = 34
EV_GC_MARK_ASSIST_BEGIN: Final = 35
EV_GC_MARK_ASSIST_END: Final = 36
EV_HEAP_ALLOC: Final = 37
EV_HEAP_GOAL: Final = 38
EV_GO_LABEL: Final = 39
EV_USER_TASK_BEGIN: Final = 40
EV_USER_TASK_END: Final = 41
EV_USER_REGION_BEGIN: Final = 42
EV_USER_REGION_END: Final = 43
EV_USER_LOG: Final = 44
EV_GO_SWITCH: Final = 45  # Go 1.23
EV_GO_SWITCH_DESTROY: Final = 46
EV_GO_CREATE_BLOCKED: Final = 47
EV_GO_STATUS_STACK: Final = 48
EV_EXPERIMENTAL_BATCH: Final = 49
EV_SYNC: Final = 50  # Go 1.25
EV_CLOCK_SNAPSHOT: Final = 51
EV_END_OF_GENERATION: Final = 52  # Go 1.26
# Experimental events (the AllocFree experiment), found only in experimental batches.
EV_SPAN: Final = 128
EV_GOROUTINE_STACK_FREE: Final = 136

# The reader's own event for a generation boundary; never on the wire (Go's evSync).
SYNC: Final = 255

# ---- per-type argument layout ----

# (name, number of arguments counting the timestamp delta, argument indices (timestamp
# delta = 0) holding stack IDs, main stack first, and indices holding string IDs).
_TIMED: dict[int, tuple[str, int, tuple[int, ...], tuple[int, ...]]] = {
    EV_PROCS_CHANGE: ("ProcsChange", 3, (2,), ()),
    EV_PROC_START: ("ProcStart", 3, (), ()),
    EV_PROC_STOP: ("ProcStop", 1, (), ()),
    EV_PROC_STEAL: ("ProcSteal", 4, (), ()),
    EV_PROC_STATUS: ("ProcStatus", 3, (), ()),
    EV_GO_CREATE: ("GoCreate", 4, (3, 2), ()),
    EV_GO_CREATE_SYSCALL: ("GoCreateSyscall", 2, (), ()),
    EV_GO_START: ("GoStart", 3, (), ()),
    EV_GO_DESTROY: ("GoDestroy", 1, (), ()),
    EV_GO_DESTROY_SYSCALL: ("GoDestroySyscall", 1, (), ()),
    EV_GO_STOP: ("GoStop", 3, (2,), (1,)),
    EV_GO_BLOCK: ("GoBlock", 3, (2,), (1,)),
    EV_GO_UNBLOCK: ("GoUnblock", 4, (3,), ()),
    EV_GO_SYSCALL_BEGIN: ("GoSyscallBegin", 3, (2,), ()),
    EV_GO_SYSCALL_END: ("GoSyscallEnd", 1, (), ()),
    EV_GO_SYSCALL_END_BLOCKED: ("GoSyscallEndBlocked", 1, (), ()),
    EV_GO_STATUS: ("GoStatus", 4, (), ()),
    EV_STW_BEGIN: ("STWBegin", 3, (2,), (1,)),
    EV_STW_END: ("STWEnd", 1, (), ()),
    EV_GC_ACTIVE: ("GCActive", 2, (), ()),
    EV_GC_BEGIN: ("GCBegin", 3, (2,), ()),
    EV_GC_END: ("GCEnd", 2, (), ()),
    EV_GC_SWEEP_ACTIVE: ("GCSweepActive", 2, (), ()),
    EV_GC_SWEEP_BEGIN: ("GCSweepBegin", 2, (1,), ()),
    EV_GC_SWEEP_END: ("GCSweepEnd", 3, (), ()),
    EV_GC_MARK_ASSIST_ACTIVE: ("GCMarkAssistActive", 2, (), ()),
    EV_GC_MARK_ASSIST_BEGIN: ("GCMarkAssistBegin", 2, (1,), ()),
    EV_GC_MARK_ASSIST_END: ("GCMarkAssistEnd", 1, (), ()),
    EV_HEAP_ALLOC: ("HeapAlloc", 2, (), ()),
    EV_HEAP_GOAL: ("HeapGoal", 2, (), ()),
    EV_GO_LABEL: ("GoLabel", 2, (), (1,)),
    EV_USER_TASK_BEGIN: ("UserTaskBegin", 5, (4,), (3,)),
    EV_USER_TASK_END: ("UserTaskEnd", 3, (2,), ()),
    EV_USER_REGION_BEGIN: ("UserRegionBegin", 4, (3,), (2,)),
    EV_USER_REGION_END: ("UserRegionEnd", 4, (3,), (2,)),
    EV_USER_LOG: ("UserLog", 5, (4,), (2, 3)),
    EV_GO_SWITCH: ("GoSwitch", 3, (), ()),
    EV_GO_SWITCH_DESTROY: ("GoSwitchDestroy", 3, (), ()),
    EV_GO_CREATE_BLOCKED: ("GoCreateBlocked", 4, (3, 2), ()),
    EV_GO_STATUS_STACK: ("GoStatusStack", 5, (4,), ()),
    EV_CLOCK_SNAPSHOT: ("ClockSnapshot", 4, (), ()),
    128: ("Span", 4, (), ()),
    129: ("SpanAlloc", 4, (), ()),
    130: ("SpanFree", 2, (), ()),
    131: ("HeapObject", 3, (), ()),
    132: ("HeapObjectAlloc", 3, (), ()),
    133: ("HeapObjectFree", 2, (), ()),
    134: ("GoroutineStack", 3, (), ()),
    135: ("GoroutineStackAlloc", 3, (), ()),
    136: ("GoroutineStackFree", 2, (), ()),
}
_STRUCTURAL = {EV_EVENT_BATCH: "EventBatch", EV_STACKS: "Stacks", EV_STACK: "Stack", EV_STRINGS: "Strings",
               EV_STRING: "String", EV_CPU_SAMPLES: "CPUSamples", EV_CPU_SAMPLE: "CPUSample",
               EV_FREQUENCY: "Frequency", EV_EXPERIMENTAL_BATCH: "ExperimentalBatch", EV_SYNC: "Sync",
               EV_END_OF_GENERATION: "EndOfGeneration"}

# Go's len(tracev2.Specs()): types at or past it are invalid, below it without a timestamp
# (structural, or unused) they cannot appear in an event batch.
NUM_SPECS: Final = EV_GOROUTINE_STACK_FREE + 1
MAX_ARGS: Final = 4  # tracev2.MaxTimedEventArgs - 1: arguments after the timestamp delta

# Arguments after the timestamp delta: -1 for a type Go rejects as invalid, -2 for one it rejects
# as having no timestamp, else the count.
ARG_COUNT: Final = [(_TIMED[t][1] - 1 if t in _TIMED else -2) if t < NUM_SPECS else -1 for t in range(256)]
# Index into the arguments (timestamp delta removed) of the event's own stack, or -1.
STACK_ARG: Final = [(_TIMED[t][2][0] - 1 if t in _TIMED and _TIMED[t][2] else -1) for t in range(256)]
# Every stack-ID and string-ID argument (timestamp delta removed): checked against the tables.
STACK_ARGS: Final = [tuple(i - 1 for i in _TIMED[t][2]) if t in _TIMED else () for t in range(256)]
STRING_ARGS: Final = [tuple(i - 1 for i in _TIMED[t][3]) if t in _TIMED else () for t in range(256)]

# The "begin" event a range's "end" or "active" event belongs to (tracev2 StartEv).
START_EVENT: Final = {
    EV_GO_SYSCALL_END: EV_GO_SYSCALL_BEGIN, EV_GO_SYSCALL_END_BLOCKED: EV_GO_SYSCALL_BEGIN,
    EV_STW_END: EV_STW_BEGIN, EV_GC_ACTIVE: EV_GC_BEGIN, EV_GC_END: EV_GC_BEGIN,
    EV_GC_SWEEP_ACTIVE: EV_GC_SWEEP_BEGIN, EV_GC_SWEEP_END: EV_GC_SWEEP_BEGIN,
    EV_GC_MARK_ASSIST_ACTIVE: EV_GC_MARK_ASSIST_BEGIN, EV_GC_MARK_ASSIST_END: EV_GC_MARK_ASSIST_BEGIN,
    EV_USER_REGION_END: EV_USER_REGION_BEGIN,
}


def event_name(typ: int) -> str:
    if typ in _TIMED:
        return _TIMED[typ][0]
    return _STRUCTURAL.get(typ, f"Invalid({typ})")


# ---- limits (tracev2/events.go) ----

MAX_BATCH_SIZE: Final = 64 << 10
MAX_FRAMES_PER_STACK: Final = 128
MAX_STRING_SIZE: Final = 1 << 10

# ---- IDs: Go's int64 IDs with -1 for "none" ----

NO_THREAD: Final = -1
NO_PROC: Final = -1
NO_GOROUTINE: Final = -1

# ---- wire statuses (tracev2.GoStatus, tracev2.ProcStatus) ----

GO_BAD, GO_STATUS_RUNNABLE, GO_STATUS_RUNNING, GO_STATUS_SYSCALL, GO_STATUS_WAITING = range(5)
PROC_BAD, PROC_STATUS_RUNNING, PROC_STATUS_IDLE, PROC_STATUS_SYSCALL, PROC_STATUS_SYSCALL_ABANDONED = range(5)

# ---- reader states (trace.GoState, trace.ProcState) ----

GO_UNDETERMINED, GO_NOT_EXIST, GO_RUNNABLE, GO_RUNNING, GO_WAITING, GO_SYSCALL = range(6)
GO_STATE_NAMES: Final = ("Undetermined", "NotExist", "Runnable", "Running", "Waiting", "Syscall")
PROC_UNDETERMINED, PROC_NOT_EXIST, PROC_RUNNING, PROC_IDLE = range(4)

# tracev2GoStatus2GoState and tracev2ProcStatus2ProcState (index 0, the bad status, maps to 0).
GO_STATUS_TO_STATE: Final = (GO_UNDETERMINED, GO_RUNNABLE, GO_RUNNING, GO_SYSCALL, GO_WAITING)
PROC_STATUS_TO_STATE: Final = (PROC_UNDETERMINED, PROC_RUNNING, PROC_IDLE, PROC_RUNNING, PROC_IDLE)


def signed(value: int) -> int:
    """A wire uint64 as Go's int64 ID types see it: all ones is -1 (NoThread, NoProc...)."""
    return value - (1 << 64) if value >= 1 << 63 else value
