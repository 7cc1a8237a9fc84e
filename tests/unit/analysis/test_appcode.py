"""appcode: which frames are the target's own code, on the (function, file) pairs Go writes.

The pairs are as real profiles carry them: the goapp fixture built with ``-trimpath`` (module
``debugcap.test/goapp``), and the same program's shapes without it (absolute paths, a module cache).
Which frames are the capture's own (each entry point, and the APIs of the same packages that are
not), and that only frames between the leaf and the first own frame can make a stack the
profiler's; then real CPU profiles of the ownframes fixture whose work runs under ``pprof.Do``,
trace regions, ``runtime.Callers`` and stack growth, charged to the application's functions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from debugcap.analysis import appcode, attribution, model
from debugcap.analysis.appcode import Code
from debugcap.formats import pprof as pprof_format

# From a real CPU and heap profile of goapp (go build -trimpath).
TRIMPATH = [
    ("crypto/internal/fips140/sha256.blockSHANI", "crypto/internal/fips140/sha256/sha256block_amd64.s"),
    ("crypto/sha256.Sum256", "crypto/sha256/sha256.go"),
    ("main.burnCPU", "debugcap.test/goapp/main.go"),
    ("main.main.func2", "debugcap.test/goapp/main.go"),
    ("runtime.goexit", "runtime/asm_amd64.s"),
]


def test_trimpath_program_infers_its_module_and_skips_the_standard_library() -> None:
    code = Code.from_functions(*zip(*TRIMPATH, strict=True))
    assert code.module == "debugcap.test/goapp"
    assert [code.is_own(f, p) for f, p in TRIMPATH] == [False, False, True, True, False]
    assert code.first_own(TRIMPATH) == 2


def test_dependencies_and_vendored_frames_are_not_own_but_sibling_packages_are() -> None:
    frames = [
        ("github.com/lib/pq.(*conn).query", "github.com/lib/pq@v1.10.9/conn.go"),
        ("github.com/acme/shop/internal/store.(*DB).Get", "github.com/acme/shop/internal/store/db.go"),
        ("main.handler", "github.com/acme/shop/cmd/api/main.go"),
        ("github.com/acme/other.F", "github.com/acme/other/f.go"),  # a local replace: not the module
        ("golang.org/x/net/http2.(*Framer).ReadFrame", "vendor/golang.org/x/net/http2/frame.go"),
    ]
    code = Code.from_functions(*zip(*frames, strict=True))
    assert code.module == "github.com/acme/shop"
    assert [code.is_own(f, p) for f, p in frames] == [False, True, True, True, False]
    assert code.first_own(frames) == 1
    # Without a file, only the module path can tell: a package under it is own, another is not.
    assert code.is_own("github.com/acme/shop/internal/store.Open")
    assert not code.is_own("github.com/lib/pq.Open")


def test_a_dotless_module_is_told_from_the_standard_library() -> None:
    frames = [("net/http.(*conn).serve", "net/http/server.go"), ("myservice/db.Query", "myservice/db/q.go"),
              ("main.main", "myservice/cmd/server/main.go")]
    code = Code.from_functions(*zip(*frames, strict=True))
    assert code.module == "myservice"
    assert [code.is_own(f, p) for f, p in frames] == [False, True, True]


def test_absolute_paths_use_the_go_root_and_the_module_cache() -> None:
    frames = [
        ("runtime.mallocgc", "/usr/local/go/src/runtime/malloc.go"),
        ("net/http.(*conn).serve", "/usr/local/go/src/net/http/server.go"),
        ("github.com/lib/pq.(*conn).query", "/home/builder/go/pkg/mod/github.com/lib/pq@v1.10.9/conn.go"),
        ("myservice/db.Query", "/src/db/q.go"),
        ("main.main", "/src/main.go"),
    ]
    code = Code.from_functions(*zip(*frames, strict=True))
    assert (code.module, code.goroot) == ("", "/usr/local/go/src/")
    assert [code.is_own(f, p) for f, p in frames] == [False, False, False, True, True]


def test_a_given_module_overrides_inference() -> None:
    code = Code.from_functions(["main.main"], ["/src/main.go"], module="example.com/svc")
    assert code.is_own("example.com/svc/pkg.F") and not code.is_own("example.com/other.F")


def test_a_stack_without_own_code_has_no_first_own_frame() -> None:
    code = Code()
    assert code.first_own([("runtime.gcBgMarkWorker", "runtime/mgc.go")]) is None
    assert code.first_own([]) is None


@pytest.mark.parametrize(("function", "package"), [
    ("net/http.(*conn).serve", "net/http"),
    ("main.(*growingCache).add", "main"),
    ("gopkg.in/yaml%2ev3.(*parser).parse", "gopkg.in/yaml%2ev3"),
    ("main.Map[go.shape.struct { github.com/x/y.T }].Get", "main"),
    ("github.com/a/b/c.F.func1", "github.com/a/b/c"),
])
def test_package_of_a_function(function: str, package: str) -> None:
    assert appcode.package(function) == package


# Go 1.26's names and files (-trimpath) for the capture's machinery, by entry point.
PROFILER_FRAMES = [
    ("runtime/pprof.(*profileBuilder).build", "runtime/pprof/proto.go"),
    ("runtime/pprof.(*profileBuilder).addCPUData", "runtime/pprof/proto.go"),
    ("runtime/pprof.(*protobuf).varint", "runtime/pprof/protobuf.go"),
    ("runtime/pprof.writeHeapProto", "runtime/pprof/protomem.go"),
    ("runtime/pprof.writeGoroutineStacks", "runtime/pprof/pprof.go"),
    ("runtime/pprof.printCountProfile", "runtime/pprof/pprof.go"),
    ("runtime/pprof.(*Profile).WriteTo", "runtime/pprof/pprof.go"),
    ("runtime/pprof.StartCPUProfile", "runtime/pprof/pprof.go"),
    ("runtime/pprof.profileWriter", "runtime/pprof/pprof.go"),
    ("runtime/pprof.readProfile", "runtime/cpuprof.go"),
    ("net/http/pprof.Profile", "net/http/pprof/pprof.go"),
    ("net/http/pprof.Index", "net/http/pprof/pprof.go"),
    ("net/http/pprof.handler.serveDeltaProfile", "net/http/pprof/pprof.go"),
    ("runtime/trace.Start", "runtime/trace/trace.go"),
    ("runtime/trace.(*FlightRecorder).Start", "runtime/trace/flightrecorder.go"),
    ("runtime/trace.(*traceMultiplexer).startLocked", "runtime/trace/subscribe.go"),
    ("runtime/trace.(*traceMultiplexer).startLocked.func1", "runtime/trace/subscribe.go"),
    ("runtime/trace.(*recorder).Write", "runtime/trace/recorder.go"),
    ("internal/trace/tracev2.(*Spec).Name", "internal/trace/tracev2/spec.go"),
    ("runtime.StartTrace", "runtime/trace.go"),
    ("runtime.ReadTrace", "runtime/trace.go"),
    ("runtime.traceAdvance", "runtime/trace.go"),
    ("runtime.traceReader", "runtime/trace.go"),
    ("runtime.(*traceAdvancerState).start.func1", "runtime/trace.go"),
    ("runtime.(*wakeableSleep).sleep", "runtime/trace.go"),
    ("runtime.traceLocker.GoPark", "runtime/traceruntime.go"),
    ("runtime.traceEventWriter.event", "runtime/traceevent.go"),
    ("runtime.(*traceStackTable).dump", "runtime/tracestack.go"),
    ("runtime.dumpStacksRec", "/usr/local/go/src/runtime/tracestack.go"),
    ("runtime.(*cpuProfile).add", "runtime/cpuprof.go"),
    ("runtime.(*profBuf).write", "runtime/profbuf.go"),
    ("runtime.setcpuprofilerate", "runtime/proc.go"),
]
# The same packages' APIs a program calls for its own work, and the runtime's unwinder.
NOT_PROFILER_FRAMES = [
    ("runtime/pprof.Do", "runtime/pprof/runtime.go"),
    ("runtime/pprof.SetGoroutineLabels", "runtime/pprof/runtime.go"),
    ("runtime/pprof.WithLabels", "runtime/pprof/label.go"),
    ("runtime/pprof.Labels", "runtime/pprof/label.go"),
    ("runtime/pprof.runtime_setProfLabel", "runtime/proflabel.go"),
    ("runtime/trace.WithRegion", "runtime/trace/annotation.go"),
    ("runtime/trace.StartRegion", "runtime/trace/annotation.go"),
    ("runtime/trace.(*Region).End", "runtime/trace/annotation.go"),
    ("runtime/trace.NewTask", "runtime/trace/annotation.go"),
    ("runtime/trace.(*Task).End", "runtime/trace/annotation.go"),
    ("runtime/trace.Log", "runtime/trace/annotation.go"),
    ("runtime/trace.Logf", "runtime/trace/annotation.go"),
    ("runtime/trace.userRegion", "runtime/traceruntime.go"),
    ("runtime/trace.userLog", "runtime/traceruntime.go"),
    ("runtime.traceback2", "runtime/traceback.go"),
    ("runtime.tracebackPCs", "runtime/traceback.go"),
    ("runtime.tracebackothers", "runtime/traceback.go"),
    ("runtime.(*unwinder).next", "runtime/traceback.go"),
    ("runtime.(*unwinder).resolveInternal", "/usr/local/go/src/runtime/traceback.go"),
    ("runtime.callers", "runtime/traceback.go"),
    ("runtime.callers.func1", "runtime/traceback.go"),
    ("runtime.Callers", "runtime/extern.go"),
    ("runtime.copystack", "runtime/stack.go"),
    ("runtime.scanstack", "runtime/mgcmark.go"),
    ("runtime.mallocgc", "runtime/malloc.go"),
    ("main.startFlightRecorder", "debugcap.test/goapp/flightrecorder.go"),
]


@pytest.mark.parametrize(("function", "file"), PROFILER_FRAMES, ids=[f for f, _ in PROFILER_FRAMES])
def test_the_captures_machinery_is_the_profilers(function: str, file: str) -> None:
    assert appcode.is_profiler(function, file)


@pytest.mark.parametrize(("function", "file"), NOT_PROFILER_FRAMES, ids=[f for f, _ in NOT_PROFILER_FRAMES])
def test_the_apis_a_program_calls_and_the_unwinder_are_not_the_profilers(function: str, file: str) -> None:
    assert not appcode.is_profiler(function, file)
    assert not appcode.is_profiler(function)


GOAPP_FILE = "debugcap.test/goapp/main.go"
CODE = Code("debugcap.test/goapp")


@pytest.mark.parametrize(("frames", "charged"), [
    # Work under labels: pprof.Do is above the own frame, and not the profiler's anyway.
    ([("crypto/sha256.Sum256", "crypto/sha256/sha256.go"), ("main.hashWork", GOAPP_FILE),
      ("main.labelledWork.func1", GOAPP_FILE), ("runtime/pprof.Do", "runtime/pprof/runtime.go"),
      ("main.labelledWork", GOAPP_FILE)], (1, None)),
    # The app's own writer under a pprof handler: the handler is above the first own frame.
    ([("compress/flate.(*compressor).deflate", "compress/flate/deflate.go"), ("main.(*gzipWriter).Write", GOAPP_FILE),
      ("runtime/pprof.(*profileBuilder).flush", "runtime/pprof/proto.go"),
      ("net/http/pprof.Profile", "net/http/pprof/pprof.go"), ("main.countRequests.func1", GOAPP_FILE)], (1, None)),
    # A pprof handler under the app's middleware: below the own frame, the outermost names it.
    ([("runtime.selectgo", "runtime/select.go"),
      ("net/http/pprof.handler.serveDeltaProfile", "net/http/pprof/pprof.go"),
      ("net/http/pprof.handler.ServeHTTP", "net/http/pprof/pprof.go"),
      ("net/http/pprof.Index", "net/http/pprof/pprof.go"),
      ("net/http.HandlerFunc.ServeHTTP", "net/http/server.go"), ("main.countRequests.func1", GOAPP_FILE)],
     (5, "net/http/pprof.Index")),
    ([("runtime.mallocgc", "runtime/malloc.go"),
      ("runtime/trace.(*FlightRecorder).Start", "runtime/trace/flightrecorder.go"),
      ("main.startFlightRecorder", GOAPP_FILE)], (2, "runtime/trace.(*FlightRecorder).Start")),
    # The tracer's cost per event, in the application's goroutine while a trace runs.
    ([("runtime.(*traceStackTable).put", "runtime/tracestack.go"),
      ("runtime.traceLocker.GoPark", "runtime/traceruntime.go"), ("runtime.gopark", "runtime/proc.go"),
      ("runtime.chanrecv", "runtime/chan.go"), ("main.consume", GOAPP_FILE)],
     (4, "runtime.traceLocker.GoPark")),
    # No own frame: the whole stack decides. The GC scanning stacks uses the unwinder...
    ([("runtime.pcvalue", "runtime/symtab.go"), ("runtime.(*unwinder).next", "runtime/traceback.go"),
      ("runtime.scanstack", "runtime/mgcmark.go"), ("runtime.gcDrain", "runtime/mgcmark.go"),
      ("runtime.gcBgMarkWorker", "runtime/mgc.go")], (None, None)),
    # ...the CPU profile's reader goroutine is the profiler's.
    ([("runtime/pprof.readProfile", "runtime/cpuprof.go"), ("runtime/pprof.profileWriter", "runtime/pprof/pprof.go")],
     (None, "runtime/pprof.profileWriter")),
], ids=["pprof-do", "own-writer-under-handler", "handler-under-middleware", "flight-recorder", "tracer-per-event",
        "gc-scan", "cpu-profile-reader"])
def test_only_frames_below_the_first_own_frame_make_a_stack_the_profilers(
        frames: list[appcode.Frame], charged: tuple[int | None, str | None]) -> None:
    assert CODE.charge(frames) == charged


def test_code_from_a_real_goapp_profile() -> None:
    profile = pprof_format.load(Path(__file__).resolve().parents[2] / "fixtures" / "goapp-profiles" / "heap.pb.gz")
    code = Code.from_profile(profile)
    assert code.module == "debugcap.test/goapp"
    own = {n for n, f in zip(profile.node_names, profile.node_files, strict=True) if code.is_own(n, f)}
    assert "main.(*growingCache).add" in own
    assert all(n.startswith("main.") for n in own), own


# ---- real programs' CPU profiles (tests/fixtures/ownframes-data) ----

OWNFRAMES = Path(__file__).resolve().parents[2] / "fixtures" / "ownframes-data"


def _attribution(name: str) -> model.Attribution:
    profile = pprof_format.load(OWNFRAMES / f"cpu-{name}.pb.gz")
    return attribution.attribute(profile, attribution.code_of([profile]))


@pytest.mark.parametrize(("name", "function"), [
    ("pprof-do", "main.hashWork"),  # under pprof.Do: was 99% "the profiler's own (from runtime/pprof.Do)"
    ("callers", "main.callerInfo"),  # runtime.Callers' unwinding (traceback.go): was ~20% the profiler's
    ("regions", "main.hashWork"),  # under trace.NewTask and WithRegion, traced: was 100% the profiler's
    ("stack-growth", "main.deep"),  # copystack walks the stack with the unwinder: was ~20% the profiler's
])
def test_the_applications_work_under_profiling_apis_is_its_own(name: str, function: str) -> None:
    att = _attribution(name)
    assert att.rows[0].function == function and att.rows[0].own
    assert att.rows[0].value > att.total / 2
    # What is left to the profiler is the tracer's own cost, a sliver (none without a trace running).
    assert att.profiler < att.total / 10
    assert att.profiler == 0 or appcode.is_profiler(att.profiler_leaf)


def test_the_unwinders_time_under_runtime_callers_is_the_callers() -> None:
    profile = pprof_format.load(OWNFRAMES / "cpu-callers.pb.gz")
    names = [{profile.node_names[n] for loc in stack for n in profile.loc_nodes[loc]} for stack in profile.stacks]
    unwinding = sum(v[1] for frames, v in zip(names, profile.values, strict=True) if "runtime.tracebackPCs" in frames)
    row = _attribution("callers").rows[0]
    assert unwinding > 0 and row.value >= unwinding
