"""Trace profiles equal ``go tool trace -pprof``'s; the summary's numbers; traces in bundles.

What "equal" means here: the two profiles hold the same samples, a sample being its stack (for
every frame: PC, function, file, line; leaf first) and its values (count, and delay in
nanoseconds, to the nanosecond). Sample order is free (Go writes them in map order). Equal
samples make equal ``pprof -top`` rows, which is checked too.

Cases: the committed goapp trace (Go 1.26, CPU samples, network waits) and Go's own test traces
(Go 1.22 format) against ``go tool trace``'s committed output; the same live on a trace captured
now from goapp, whole and cut short (slow: builds and runs Go); a hand-written trace whose every
number is known; a cut trace reads as its complete generations; refusals; the report's trace
section and the problems and hints a bundle's trace adds.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from debugcap import errors
from debugcap.analysis import pprof, report, traces
from debugcap.analysis.bundle_reading import BundleReader, Reading
from debugcap.bundle import layout, manifest, writer
from debugcap.formats import gotrace, pprof_proto
from debugcap.formats import pprof as pprof_format
from debugcap.formats.gotrace import spec

from .test_report import write_manifest

WHEN = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
GOAPP = FIXTURES / "goapp-trace"
GO_TRACES = FIXTURES / "go-traces"
FORMATS_TESTS = Path(__file__).resolve().parents[1] / "formats"


def _module(name: str, path: Path) -> ModuleType:
    """A helper module outside this test package (by path: the fixture directory is no package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec_ = importlib.util.spec_from_file_location(name, path)
    assert spec_ is not None and spec_.loader is not None
    mod = sys.modules[name] = importlib.util.module_from_spec(spec_)  # dataclasses look themselves up there
    spec_.loader.exec_module(mod)
    return mod


REGEN = _module("goapp_trace_regenerate", GOAPP / "regenerate.py")
TRACE_BYTES = _module("gotrace_trace_bytes", FORMATS_TESTS / "trace_bytes.py")

Sample = tuple[tuple[tuple[int, str, str, int], ...], tuple[int, ...]]


def samples(data: bytes) -> Counter[Sample]:
    """A profile's samples: (frames (PC, function, file, line) leaf first, values), counted."""
    msg = pprof_proto.Profile()
    msg.ParseFromString(gzip.decompress(data))
    s = list(msg.string_table)
    funcs = {f.id: (s[f.name], s[f.filename]) for f in msg.function}
    locs = {loc.id: (loc.address, *funcs[loc.line[0].function_id], loc.line[0].line) for loc in msg.location}
    return Counter((tuple(locs[i] for i in smp.location_id), tuple(smp.value)) for smp in msg.sample)


def go_top(data: bytes) -> list[tuple[str, int, int]]:
    """pprof -top rows (function, flat, cum), nothing dropped."""
    rows = pprof.top(pprof_format.parse(data, "p"), "delay", 0.0)["rows"]
    return sorted((r["function"], r["flat"], r["cum"]) for r in rows)


def assert_equal_profiles(ours: bytes, go_tool_trace: bytes) -> None:
    assert samples(ours) == samples(go_tool_trace)
    assert go_top(ours) == go_top(go_tool_trace)


# ---- against go tool trace's committed output ----


@pytest.mark.parametrize("kind", traces.PROFILE_KINDS)
def test_goapp_trace_profiles_equal_go_tool_trace(kind: str) -> None:
    found = traces.load(GOAPP / "trace.out")
    assert_equal_profiles(found.profile_bytes(kind), (GOAPP / f"{kind}.pb.gz").read_bytes())


def test_goapp_trace_has_what_its_load_makes() -> None:
    found = traces.load(GOAPP / "trace.out")
    # Keep-alive clients: goroutines waiting on their connections; goapp's mutex and channels.
    assert "internal/poll.(*FD).Read" in {r["function"] for r in found.top("net")["rows"]}
    assert {"sync.(*Mutex).Lock", "runtime.chansend1"} <= {r["function"] for r in found.top("sync")["rows"]}
    s = found.summary
    assert s.cpu_samples > 0 and s.stw_count > 0 and s.sched_waits > 0 and s.cut is None
    assert s.go_format == "1.26" and s.gomaxprocs is not None and s.procs_seen == s.gomaxprocs


GO_TEST_TRACES = sorted({p.name.split(".")[0] for p in GO_TRACES.glob("*.sched.pb.gz")})


@pytest.mark.parametrize("name", GO_TEST_TRACES)
def test_go_test_traces_profiles_equal_go_tool_trace(name: str) -> None:
    found = traces.analyse((GO_TRACES / f"{name}.trace").read_bytes(), name)
    for kind in traces.PROFILE_KINDS:
        assert_equal_profiles(found.profile_bytes(kind), (GO_TRACES / f"{name}.{kind}.pb.gz").read_bytes())


# ---- live: a trace taken now, whole and cut ----


@pytest.fixture(scope="module")
def goapp_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """goapp, built as the testbed builds it (cached by its sources and the Go version)."""
    return Path(REGEN.build(tmp_path_factory.mktemp("goapp")))


def test_fresh_goapp_trace_profiles_equal_go_tool_trace(goapp_bin: Path, go: str, tmp_path: Path) -> None:
    with REGEN.running(goapp_bin, tmp_path) as base:
        data = REGEN.capture(base, seconds=1)
    whole, cut = tmp_path / "trace.out", tmp_path / "cut.out"
    whole.write_bytes(data)
    cut.write_bytes(data[: _middle_of_last_generation(data)])
    for path in (whole, cut):
        (out := tmp_path / path.stem).mkdir()
        want = REGEN.go_tool_trace_profiles(path, out)
        found = traces.load(path)
        assert (found.summary.cut is None) == (path == whole)
        for kind in traces.PROFILE_KINDS:
            assert_equal_profiles(found.profile_bytes(kind), want[kind].read_bytes())


def _middle_of_last_generation(data: bytes) -> int:
    reader, ends = gotrace.Reader(data), []
    for ev in reader:
        if ev.typ == spec.SYNC:
            ends.append(reader.complete_bytes)
    assert len(set(ends)) >= 2, "a trace of a second has two generations or more"
    return (sorted(set(ends))[-2] + len(data)) // 2


# ---- a trace whose every number is known ----

S = spec
STRINGS = {1: "preempted", 2: "read mem stats", 3: "chan receive", 4: "main.work", 5: "/src/main.go", 6: "main.main"}
STACKS = {1: [(0x1000, 4, 5, 10), (0x2000, 6, 5, 20)]}
# Thread 1 runs goroutine 1, which creates goroutine 2 and is preempted; 2 runs, stops the world
# for 500 ns, blocks on a channel for 160 ns, waits 300 ns to run again, makes a 400 ns syscall.
KNOWN = [(S.EV_PROC_STATUS, 0, 0, S.PROC_STATUS_RUNNING), (S.EV_GO_STATUS, 1, 1, 1, S.GO_STATUS_RUNNING),
         (S.EV_PROCS_CHANGE, 1, 4, 0), (S.EV_GO_CREATE, 8, 2, 0, 0),  # t=1010
         (S.EV_GO_STOP, 10, 1, 0), (S.EV_GO_START, 1000, 2, 1),  # t=1020, 2020
         (S.EV_STW_BEGIN, 10, 2, 0), (S.EV_STW_END, 500),  # 2030-2530
         (S.EV_GO_BLOCK, 10, 3, 1), (S.EV_GO_START, 100, 1, 1),  # 2540, 2640
         (S.EV_GO_UNBLOCK, 60, 2, 2, 1), (S.EV_GO_DESTROY, 100),  # 2700, 2800
         (S.EV_GO_START, 200, 2, 3), (S.EV_GO_SYSCALL_BEGIN, 100, 1, 1), (S.EV_GO_SYSCALL_END, 400)]  # 3000-3500


def known() -> traces.TraceAnalysis:
    gen = TRACE_BYTES.Generation(1, [(1, 1000, KNOWN)], STRINGS, STACKS)
    return traces.analyse(TRACE_BYTES.encode(26, [gen]), "known")


def test_summary_of_a_known_trace() -> None:
    s = known().summary
    assert s.as_dict() == {
        "source": "known", "go_format": "1.26", "generations": 1, "events": 17, "duration_ns": 3001,
        "cut": None, "gomaxprocs": 4, "procs_seen": 1, "goroutines_created": 1, "goroutines_at_end": 1,
        "goroutines_max": 2, "gc_count": 0, "stw_count": 1, "stw_total_ns": 500, "stw_max_ns": 500,
        # Waits: goroutine 2 from creation (1010-2020), 1 after preemption (1020-2640), 2 after
        # its unblock (2700-3000); p99 of three is the longest.
        "sched_waits": 3, "sched_latency_p99_ns": 1620, "sched_latency_max_ns": 1620,
        "sched_latency_total_ns": 1010 + 1620 + 300, "cpu_samples": 0, "heap_max_bytes": None}


def test_profiles_of_a_known_trace_follow_go_tool_trace() -> None:
    a = known()
    work = ((0x1000, "main.work", "/src/main.go", 10), (0x2000, "main.main", "/src/main.go", 20))
    # sched: goroutine 2's first wait (before it ever ran) counts for nothing, as in cmd/trace,
    # where a wait counts only within the goroutine's life from its first run; the unblock's
    # stack is the sample's.
    assert samples(a.profile_bytes("sched")) == Counter({((), (1, 1620)): 1, (work, (1, 300)): 1})
    assert samples(a.profile_bytes("sync")) == Counter({(work, (1, 160)): 1})
    assert samples(a.profile_bytes("syscall")) == Counter({(work, (1, 400)): 1})
    assert samples(a.profile_bytes("net")) == Counter()


# The goapp fixture's summary as the reader of commit 3e240b2 (before the summary-only read and
# the reader's inlined hot paths) made it: a faster reader must not change a number.
GOAPP_SUMMARY = {
    "source": "goapp", "go_format": "1.26", "generations": 3, "events": 16732, "duration_ns": 1012120193,
    "cut": None, "gomaxprocs": 2, "procs_seen": 2, "goroutines_created": 386, "goroutines_at_end": 47,
    "goroutines_max": 49, "gc_count": 0, "stw_count": 381, "stw_total_ns": 478830528, "stw_max_ns": 12443776,
    "sched_waits": 2455, "sched_latency_p99_ns": 4851456, "sched_latency_max_ns": 12592640,
    "sched_latency_total_ns": 915873536, "cpu_samples": 92, "heap_max_bytes": 6797536}


def test_the_summary_read_alone_is_the_summary_read_with_the_profiles(tmp_path: Path) -> None:
    data = (GOAPP / "trace.out").read_bytes()
    assert traces.analyse(data, "goapp").summary.as_dict() == GOAPP_SUMMARY
    assert traces.analyse(data, "goapp", profiles=False).summary.as_dict() == GOAPP_SUMMARY
    from_bundle, _ = _summary(_bundle(tmp_path / "b", data))  # bundle_summary reads it alone
    assert from_bundle is not None and {**from_bundle.as_dict(), "source": "goapp"} == GOAPP_SUMMARY
    for name, trace in [("cut", data[: len(data) * 3 // 4]),
                        *((p.name, p.read_bytes()) for p in sorted(GO_TRACES.glob("*.trace")))]:
        try:
            want = traces.analyse(trace, name).summary
        except gotrace.TraceError as exc:
            with pytest.raises(type(exc), match=f"^{re.escape(str(exc))}$"):
                traces.analyse(trace, name, profiles=False)
            continue
        assert traces.analyse(trace, name, profiles=False).summary == want, name


def test_a_summary_read_alone_has_no_profiles_to_give() -> None:
    alone = traces.analyse((GOAPP / "trace.out").read_bytes(), "goapp", profiles=False)
    with pytest.raises(errors.AnalysisError, match="^goapp: read for its summary only, without profiles"):
        alone.records("sched")


# ---- cut, broken, refused ----


def test_a_cut_trace_reads_as_its_complete_generations() -> None:
    data = (GOAPP / "trace.out").read_bytes()
    cut = traces.analyse(data[: len(data) * 3 // 4], "cut")
    complete = gotrace.Reader(data[: len(data) * 3 // 4])
    with pytest.raises(gotrace.TruncatedTraceError):
        for _ in complete:
            pass
    prefix = traces.analyse(data[: complete.complete_bytes], "prefix")
    assert cut.summary.cut is not None and "cut short" in cut.summary.cut
    assert cut.summary.generations == prefix.summary.generations == complete.generations
    assert {**cut.summary.as_dict(), "cut": None, "source": "prefix"} == prefix.summary.as_dict()
    for kind in traces.PROFILE_KINDS:
        assert samples(cut.profile_bytes(kind)) == samples(prefix.profile_bytes(kind))


def test_an_older_format_is_refused_naming_the_file(tmp_path: Path) -> None:
    old = tmp_path / "trace.out"
    old.write_bytes(b"go 1.19 trace\x00\x00\x00" + b"\x00" * 32)
    with pytest.raises(gotrace.UnsupportedTraceError, match=f"^{old}: unsupported: execution trace format of Go 1.19"):
        traces.load(old)


def test_a_trace_broken_in_its_first_generation_has_nothing_to_read() -> None:
    with pytest.raises(gotrace.TraceError, match="^b: no complete generation to read: expected a proc"):
        traces.analyse((GO_TRACES / "go122-fail-first-gen-first.trace").read_bytes(), "b")


# ---- in a bundle ----


def _bundle(root: Path, trace: bytes | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_manifest(root, [])
    if trace is not None:
        (root / "trace").mkdir()
        (root / "trace" / "trace.out").write_bytes(trace)
    return root


def _summary(root: Path) -> tuple[traces.TraceSummary | None, Reading]:
    with BundleReader(root) as reader:
        reading = Reading(reader)
        return traces.bundle_summary(reading), reading


def test_bundle_trace_summary_problems_and_hints(tmp_path: Path) -> None:
    data = (GOAPP / "trace.out").read_bytes()
    whole, reading = _summary(_bundle(tmp_path / "whole", data))
    assert whole is not None and whole.cut is None and not reading.problems and not reading.hints
    cut, reading = _summary(_bundle(tmp_path / "cut", data[: len(data) * 3 // 4]))
    assert cut is not None and cut.cut and reading.hints == [f"trace/trace.out: {cut.cut}"]
    broken, reading = _summary(_bundle(tmp_path / "broken", b"go 1.26 trace\x00\x00\x00\x07junk"))
    assert broken is None and len(reading.problems) == 1 and "trace/trace.out" in reading.problems[0]
    body, reading = _summary(_bundle(tmp_path / "body", b"Could not enable tracing: tracing already enabled\n"))
    assert body is None and "an execution trace was already running" in reading.hints[0]
    assert _summary(_bundle(tmp_path / "none", None))[0] is None


def test_report_has_the_trace_section_and_its_finding(tmp_path: Path) -> None:
    rep = report.build(_bundle(tmp_path / "b", (GOAPP / "trace.out").read_bytes()))
    assert rep.trace is not None and rep.trace.events > 0
    doc = json.loads(json.dumps(rep.as_dict()))
    assert doc["trace"] == rep.trace.as_dict()
    p99 = rep.trace.sched_latency_p99_ns
    assert p99 is not None
    assert ("sched-latency" in [f.kind for f in rep.findings]) == (p99 >= 1_000_000)


def test_a_trace_over_the_limit_is_refused_by_its_size_without_being_read(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # 8 MiB of zeros packs into a few kB: the size the checking pass counted is what refuses it.
    with writer.BundleWriter(directory=tmp_path, name=layout.bundle_name("shop", "api-7d9f", WHEN), mtime=0,
                             durable=False) as w:
        w.add_bytes(layout.TRACE, b"go 1.26 trace\x00\x00\x00" + bytes(8 << 20))
        bundle = w.finish(manifest.ManifestFields(
            capture=manifest.CaptureInfo(name="c1", template="debug-full", parameters={}),
            target=manifest.TargetInfo(namespace="shop", pod="api-7d9f", container="api"),
            started_at=WHEN, finished_at=WHEN, collectors=()))
    assert bundle.path.stat().st_size < 100_000
    with BundleReader(bundle.path) as reader:
        assert reader.size(layout.TRACE) == (8 << 20) + 16 and reader.size("nothing/here") is None

        def no_reading(rel: str) -> None:
            raise AssertionError(f"{rel} was read")

        monkeypatch.setattr(reader, "read", no_reading)
        monkeypatch.setattr(reader, "open", no_reading)
        reading = Reading(reader)
        assert traces.bundle_summary(reading, 1 << 20) is None
    assert not reading.problems and not reading.hints
    assert reading.notes == [f"{layout.TRACE} not read: 8.0 MiB, more than the 1.0 MiB this reading allows (about "
                             "a second per MiB); read it with `kubectl debugcap trace BUNDLE`"]


def test_a_trace_of_only_its_header_has_no_complete_generation() -> None:
    # It read without error and printed a summary of zeros, while a trace cut a little later failed.
    data = (GOAPP / "trace.out").read_bytes()
    with pytest.raises(gotrace.TruncatedTraceError, match=r"^h: no complete generation to read: the trace ends "
                                                          r"after its header \(16 bytes\)"):
        traces.analyse(data[:16], "h")
    with pytest.raises(gotrace.TruncatedTraceError, match="^c: no complete generation to read"):
        traces.analyse(data[:40], "c")


def _packed_with_trace(directory: Path, trace: bytes) -> Path:
    """A bundle whose trace is most of it, stored uncompressed: a cut at a fraction of the file is
    at about that fraction of the trace."""
    with writer.BundleWriter(directory=directory, name=layout.bundle_name("shop", "api-7d9f", WHEN), mtime=0,
                             compresslevel=0, durable=False) as w:
        w.add_bytes(layout.PROC_FD_COUNT, b"950\n")
        w.add_bytes(layout.TRACE, trace)
        w.add_bytes(layout.METRICS_EXPVAR, b"{}")
        bundle = w.finish(manifest.ManifestFields(
            capture=manifest.CaptureInfo(name="c1", template="debug-full", parameters={}),
            target=manifest.TargetInfo(namespace="shop", pod="api-7d9f", container="api"),
            started_at=WHEN, finished_at=WHEN, collectors=()))
    return bundle.path


def _cut_at(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def test_with_force_a_trace_the_damage_cut_is_read_up_to_its_last_generation_before_it(tmp_path: Path) -> None:
    data = (GOAPP / "trace.out").read_bytes()
    path = _packed_with_trace(tmp_path, data)
    _cut_at(path, 0.8)
    found = traces.load(path, force=True)
    assert found.summary.cut is not None
    assert found.summary.cut.startswith(f"{layout.TRACE} is the member the bundle's damage cut: ")
    assert f"of its {len(data)} bytes precede the damage; read up to its last complete generation" in found.summary.cut
    assert found.summary.generations >= 1 and found.summary.events > 0
    assert found.unverified[0].startswith("unverified (read with --force)") and layout.TRACE in found.unverified[0]


def test_with_force_a_trace_cut_in_its_first_generation_or_lost_says_so(tmp_path: Path) -> None:
    data = (GOAPP / "trace.out").read_bytes()
    path = _packed_with_trace(tmp_path / "early", data)
    _cut_at(path, 0.1)
    with pytest.raises(gotrace.TraceError, match=f"^{path}: {layout.TRACE} is the member the bundle's damage cut: "
                                                 rf"\d+ of its {len(data)} bytes precede the damage, and they hold "
                                                 "no complete generation to read"):
        traces.load(path, force=True)
    before = _packed_with_trace(tmp_path / "before", data)
    raw = before.read_bytes()
    before.write_bytes(raw[: raw.index(b"950\n") + 100])  # inside the member before the trace
    with pytest.raises(errors.AnalysisError, match=f"the bundle is damaged before its execution trace "
                                                   rf"\({layout.TRACE}\): the trace, if it had one, is lost"):
        traces.load(before, force=True)
