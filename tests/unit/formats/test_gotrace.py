"""The execution-trace reader, on bytes: Go's own reader is the reference.

Cases: every event of Go's own trace tests (Go 1.22, 1.23, 1.25 formats, converted from
``$GOROOT/src/internal/trace/testdata``) and of a goapp trace (Go 1.26, CPU samples in it) is
read as Go's reader reads it, line for line (``tests/fixtures/go-traces``); Go's failure on a
broken test trace is ours; the frontier sort breaks ties as Go's pdqsort does; ordering across
threads and the one-nanosecond bumps on hand-written traces; headers of older and newer
formats, non-traces; a trace cut short yields its complete generations, then
TruncatedTraceError; corrupt bytes only ever raise TraceError.
"""

from __future__ import annotations

import gzip
import hashlib
import random
from pathlib import Path

import pytest

from debugcap import errors
from debugcap.formats import gotrace
from debugcap.formats.gotrace import spec
from debugcap.formats.gotrace.pdqsort import sort_func
from debugcap.formats.gotrace.wire import HEADER_SIZE

from .trace_bytes import NO_THREAD, Generation, batch, encode, uvarint

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
GO_TRACES = FIXTURES / "go-traces"
GOAPP_TRACE = FIXTURES / "goapp-trace" / "trace.out"
TESTS = sorted(p.name.removesuffix(".events.gz") for p in GO_TRACES.glob("*.events.gz"))

# ---- the dump format of tests/fixtures/go-traces/tools/dump (Go's Event API, printed) ----

_KINDS = {spec.EV_CPU_SAMPLE: "StackSample", spec.SYNC: "Sync", spec.EV_GO_LABEL: "Label",
          spec.EV_USER_TASK_BEGIN: "TaskBegin", spec.EV_USER_TASK_END: "TaskEnd",
          spec.EV_USER_REGION_BEGIN: "RegionBegin", spec.EV_USER_REGION_END: "RegionEnd", spec.EV_USER_LOG: "Log",
          **dict.fromkeys((spec.EV_PROCS_CHANGE, spec.EV_HEAP_ALLOC, spec.EV_HEAP_GOAL), "Metric"),
          **dict.fromkeys((spec.EV_PROC_START, spec.EV_PROC_STOP, spec.EV_PROC_STEAL, spec.EV_PROC_STATUS,
                           *gotrace.GO_TRANSITIONS), "StateTransition"),
          **dict.fromkeys((spec.EV_STW_BEGIN, spec.EV_GC_BEGIN, spec.EV_GC_SWEEP_BEGIN,
                           spec.EV_GC_MARK_ASSIST_BEGIN), "RangeBegin"),
          **dict.fromkeys((spec.EV_STW_END, spec.EV_GC_END, spec.EV_GC_SWEEP_END, spec.EV_GC_MARK_ASSIST_END),
                          "RangeEnd"),
          **dict.fromkeys((spec.EV_GC_ACTIVE, spec.EV_GC_SWEEP_ACTIVE, spec.EV_GC_MARK_ASSIST_ACTIVE),
                          "RangeActive")}
_PROC_STATES = ("Undetermined", "NotExist", "Running", "Idle")


def _proc(ev: gotrace.Event) -> tuple[int, int, int]:
    a = ev.args
    if ev.typ == spec.EV_PROC_START:
        return spec.signed(a[0]), spec.PROC_IDLE, spec.PROC_RUNNING
    if ev.typ == spec.EV_PROC_STOP:
        return ev.p, spec.PROC_RUNNING, spec.PROC_IDLE
    if ev.typ == spec.EV_PROC_STEAL:
        before = spec.PROC_IDLE if a[3] == spec.PROC_STATUS_SYSCALL_ABANDONED else spec.PROC_RUNNING
        return spec.signed(a[0]), before, spec.PROC_IDLE
    return spec.signed(a[0]), a[2], spec.PROC_STATUS_TO_STATE[a[1]]


def _range(ev: gotrace.Event) -> str:
    if ev.typ in (spec.EV_STW_BEGIN, spec.EV_STW_END):
        assert ev.table is not None
        return f"stop-the-world ({ev.table.string(ev.args[0])})"
    if ev.typ in (spec.EV_GC_ACTIVE, spec.EV_GC_BEGIN, spec.EV_GC_END):
        return "GC concurrent mark phase"
    if ev.typ in (spec.EV_GC_SWEEP_ACTIVE, spec.EV_GC_SWEEP_BEGIN, spec.EV_GC_SWEEP_END):
        return "GC incremental sweep"
    return "GC mark assist"


def dump_line(ev: gotrace.Event) -> str:
    kind = _KINDS.get(ev.typ, "Experimental" if ev.typ >= spec.EV_SPAN else "Bad")
    line = f"{ev.time} {kind} g={ev.g} p={ev.p} m={ev.m}"
    if ev.typ in gotrace.GO_TRANSITIONS:
        t = gotrace.go_transition(ev)
        line += (f' G{t.goroutine} {spec.GO_STATE_NAMES[t.old]}->{spec.GO_STATE_NAMES[t.new]} '
                 f'"{t.reason}"')
    elif kind == "StateTransition":
        pid, old, new = _proc(ev)
        line += f" P{pid} {_PROC_STATES[old]}->{_PROC_STATES[new]}"
    if kind.startswith("Range"):
        line += f' "{_range(ev)}"'
    sid = ev.stack() if ev.typ != spec.SYNC else 0
    frames = ev.table.frames(sid) if sid and ev.table is not None else []
    return line + " [" + "".join(f" {f[0]:x}" for f in frames) + " ]"


def dump(data: bytes) -> list[str]:
    out = []
    try:
        for ev in gotrace.Reader(data):
            out.append(dump_line(ev))
    except gotrace.TraceError as exc:
        out.append(f"ERROR {exc}")
    return out


# ---- Go's reader is the reference ----


@pytest.mark.parametrize("name", TESTS)
def test_go_test_traces_read_as_go_reads_them(name: str) -> None:
    want = gzip.decompress((GO_TRACES / f"{name}.events.gz").read_bytes()).decode().splitlines()
    got = dump((GO_TRACES / f"{name}.trace").read_bytes())
    if want[-1].startswith("ERROR"):
        # Go's message may run over several lines (a dump of its state): the event lines and
        # the fact of the error must agree, and its first words.
        first = next(i for i, ln in enumerate(want) if ln.startswith("ERROR"))
        assert got[:-1] == want[:first] and got[-1].startswith("ERROR")
        assert got[-1] == want[first]
    else:
        assert got == want


def test_goapp_trace_reads_as_go_reads_it() -> None:
    # Go 1.26, a CPU profile running alongside: CPU samples interleave by time.
    digest, lines = (GO_TRACES / "goapp.events.sha256").read_text().split()
    got = dump(GOAPP_TRACE.read_bytes())
    assert not got[-1].startswith("ERROR"), got[-1]
    assert len(got) == int(lines)
    assert hashlib.sha256("".join(ln + "\n" for ln in got).encode()).hexdigest() == digest
    assert any(" StackSample " in ln for ln in got)


def test_events_are_in_time_order_between_generation_boundaries() -> None:
    evs = list(gotrace.Reader(GOAPP_TRACE.read_bytes()))
    assert evs[0].typ == spec.SYNC and evs[-1].typ == spec.SYNC
    assert all(a.time < b.time for a, b in zip(evs, evs[1:], strict=False))


# ---- Go's sort, for its tie-breaking ----

# slices.SortFunc's output (Go 1.26) for keys (i*mul) % mod, compared by key only: equal keys
# come out in pdqsort's order, which no stable sort reproduces.
GO_SORTED = {
    (13, 3, 7): [6, 3, 0, 9, 12, 1, 4, 7, 10, 2, 5, 8, 11],
    (20, 4, 5): [0, 16, 4, 12, 8, 1, 17, 5, 13, 9, 10, 6, 14, 2, 18, 11, 7, 15, 3, 19],
    (64, 5, 7): [45, 35, 60, 25, 30, 5, 55, 20, 40, 50, 10, 15, 0, 58, 18, 48, 8, 38, 53, 43, 63, 33, 13, 23,
                 28, 3, 31, 16, 26, 1, 61, 56, 6, 21, 51, 11, 36, 46, 41, 54, 34, 29, 24, 14, 44, 59, 39, 4, 19,
                 49, 9, 37, 52, 7, 27, 32, 22, 57, 47, 12, 2, 42, 62, 17],
    (60, 60, 59): [0, *range(59, 0, -1)],
}


@pytest.mark.parametrize("case", sorted(GO_SORTED))
def test_frontier_sort_leaves_ties_where_go_does(case: tuple[int, int, int]) -> None:
    n, mod, mul = case
    items = [((i * mul) % mod, i) for i in range(n)]
    sort_func(items, lambda a, b: a[0] < b[0])
    assert [i for _, i in items] == GO_SORTED[case]


# ---- hand-written traces ----

STRINGS = {1: "preempted", 2: "main.work", 3: "/src/main.go"}
STACKS = {1: [(0x1000, 2, 3, 10)]}


def _gen(threads: list[tuple[int, int, list[tuple[int, ...]]]], gen: int = 1) -> Generation:
    return Generation(gen, threads, STRINGS, STACKS)


def test_an_event_waits_for_the_thread_whose_event_must_come_first() -> None:
    # Thread 2's GoStart is earliest, but goroutine 7 is only created later on thread 1: the
    # reader must skip to thread 1 and come back, as Go's does (it sorts the frontier then).
    m1 = [(spec.EV_PROC_STATUS, 0, 0, spec.PROC_STATUS_RUNNING),
          (spec.EV_GO_STATUS, 1, 1, 1, spec.GO_STATUS_RUNNING),
          (spec.EV_GO_CREATE, 100, 7, 0, 1)]
    m2 = [(spec.EV_PROC_STATUS, 0, 1, spec.PROC_STATUS_RUNNING),
          (spec.EV_GO_START, 5, 7, 1)]
    evs = list(gotrace.Reader(encode(26, [_gen([(1, 1000, m1), (2, 1000, m2)])])))
    seen = [(e.typ, e.time, e.m) for e in evs if e.typ in (spec.EV_GO_CREATE, spec.EV_GO_START)]
    # Created at 1101; the start, stamped 1005, is pushed after it: times never go back.
    assert seen == [(spec.EV_GO_CREATE, 1101, 1), (spec.EV_GO_START, 1102, 2)]


def test_equal_times_become_one_nanosecond_apart() -> None:
    m1 = [(spec.EV_PROC_STATUS, 0, 0, spec.PROC_STATUS_RUNNING), (spec.EV_GO_STATUS, 0, 1, 1, 2),
          (spec.EV_HEAP_ALLOC, 0, 4096)]
    times = [e.time for e in gotrace.Reader(encode(26, [_gen([(1, 1000, m1)])]))]
    assert times == [500, 1000, 1001, 1002, 1003]  # sync, three events at 1000, the final sync


def test_a_wait_for_an_event_that_never_comes_is_a_broken_trace() -> None:
    m1 = [(spec.EV_PROC_STATUS, 0, 0, spec.PROC_STATUS_RUNNING), (spec.EV_GO_START, 5, 9, 1)]
    with pytest.raises(gotrace.TraceError, match="failed to advance"):
        list(gotrace.Reader(encode(26, [_gen([(1, 1000, m1)])])))


@pytest.mark.parametrize("version", [19, 21, 11])
def test_older_formats_are_refused_with_what_to_do(version: int) -> None:
    header = (b"go 1.%d trace\x00\x00\x00" % version) + b"\x00" * 64
    with pytest.raises(gotrace.UnsupportedTraceError) as info:
        gotrace.Reader(header)
    assert str(info.value) == (
        f"unsupported: execution trace format of Go 1.{version}; debugcap reads Go 1.22 and later "
        "(re-capture from a program built with Go 1.22+ or use go tool trace from that Go version)")
    assert isinstance(info.value, errors.AnalysisError)


def test_a_newer_format_and_a_non_trace_are_refused() -> None:
    with pytest.raises(gotrace.UnsupportedTraceError, match="Go 1.30; debugcap reads those of Go 1.22 to 1.26"):
        gotrace.Reader(b"go 1.30 trace\x00\x00\x00")
    with pytest.raises(gotrace.TraceError, match="not a Go execution trace"):
        gotrace.Reader(b"\x1f\x8b\x08\x00 a profile, maybe")


@pytest.mark.parametrize("version", [22, 25, 26])
def test_every_supported_format_reads(version: int) -> None:
    m1 = [(spec.EV_PROC_STATUS, 0, 0, spec.PROC_STATUS_RUNNING), (spec.EV_GO_STATUS, 1, 1, 1, 2),
          (spec.EV_GO_STOP, 10, 1, 1)]
    gens = [_gen([(1, 1000, m1)], 1), _gen([(1, 2000, [(spec.EV_PROC_STATUS, 0, 0, 1)])], 2)]
    evs = list(gotrace.Reader(encode(version, gens)))
    assert [e.typ for e in evs].count(spec.SYNC) == 3  # one per generation, one at the end
    assert [e.time for e in evs if e.typ == spec.EV_GO_STOP] == [1011]


# ---- broken and cut traces ----


def test_a_cut_trace_yields_its_complete_generations_then_says_it_was_cut() -> None:
    data = GOAPP_TRACE.read_bytes()
    complete = dump(data)
    reader = gotrace.Reader(data[: len(data) * 3 // 4])
    got = []
    with pytest.raises(gotrace.TruncatedTraceError):
        for ev in reader:
            got.append(dump_line(ev))
    assert reader.generations >= 1 and got[-1].split()[1] == "Sync"
    assert got[:-1] == complete[: len(got) - 1]  # the same events, up to where the cut generation starts


def test_a_generation_without_its_end_is_cut() -> None:
    m1 = [(spec.EV_PROC_STATUS, 0, 0, spec.PROC_STATUS_RUNNING)]
    data = encode(26, [_gen([(1, 1000, m1)], 1), _gen([(1, 2000, m1)], 2)], end=False)
    with pytest.raises(gotrace.TruncatedTraceError, match="incomplete generation"):
        list(gotrace.Reader(data))


def test_a_stack_naming_a_missing_function_name_is_broken_and_the_first_such_stack_is_named() -> None:
    # Stacks 2 and 3 share a PC whose function string does not exist; Go names the lowest stack.
    frames = {3: [(0x401000, 2, 3, 10), (0x402000, 9, 3, 11)], 2: [(0x402000, 9, 3, 11)], 1: STACKS[1][:]}
    m1 = [(spec.EV_PROC_STATUS, 0, 0, spec.PROC_STATUS_RUNNING)]
    with pytest.raises(gotrace.TraceError, match="^found invalid func string ID 9 for stack 2$"):
        list(gotrace.Reader(encode(26, [Generation(1, [(1, 1000, m1)], STRINGS, frames)])))


@pytest.mark.parametrize(("keep", "message"), [
    (14, "reading frame 2 of stack 1: unexpected end of data in a varint"),  # inside its 4-byte PC
    (19, "reading frame 2 of stack 1: unexpected end of data in a varint"),  # inside its 2-byte line
    (23, "reading a stack's size: unexpected end of data in a varint"),  # inside stack 2's size
])
def test_a_stack_table_cut_inside_a_frame_says_where(keep: int, message: str) -> None:
    frame = uvarint(0x401000) + uvarint(2) + uvarint(3) + uvarint(200)  # 4 + 1 + 1 + 2 bytes
    table = (bytes([spec.EV_STACKS, spec.EV_STACK]) + uvarint(1) + uvarint(2) + frame + frame
             + bytes([spec.EV_STACK]) + uvarint(2) + uvarint(300))
    assert len(table) == 24
    head = encode(26, [Generation(1, [], STRINGS, {})], end=False)
    data = head + batch(1, NO_THREAD, 500, table[:keep]) + bytes([spec.EV_END_OF_GENERATION])
    with pytest.raises(gotrace.TraceError, match=f"^{message}$"):
        list(gotrace.Reader(data))


def test_corrupt_bytes_only_ever_raise_trace_errors() -> None:
    data = GOAPP_TRACE.read_bytes()
    rnd = random.Random(7)
    for _ in range(40):
        b = bytearray(data)
        for _ in range(rnd.randint(1, 3)):
            b[rnd.randrange(HEADER_SIZE, len(b))] = rnd.randrange(256)
        try:
            for _ in gotrace.Reader(bytes(b)):
                pass
        except gotrace.TraceError:
            pass

