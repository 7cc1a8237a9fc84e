"""``trace``: an execution trace over N seconds.

Cases: the trace of ``/debug/pprof/trace?seconds=N`` (default 5) is stored under trace/trace.out
with N seconds plus the grace as its time budget; a trace already running (pprof's 500) fails
with Go's words kept under errors/trace.txt; an answer without the ``go 1.NN trace`` header is
kept but partial.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.trace import TraceCollector


def test_trace_is_stored_under_the_trace_path(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/trace?seconds=1", "trace.out")
    ctx = bundle.context(http=pprof_port, params={"seconds": 1}, http_timeout_seconds=30, profile_grace_seconds=15)
    result = TraceCollector().collect(ctx)
    assert result == base.CollectorResult(base.Status.OK, "", (layout.TRACE,))
    assert bundle.files == {layout.TRACE: data("go/trace.out")}
    assert [(path, timeout) for path, timeout, _cap in pprof_port.gets] == [("/debug/pprof/trace?seconds=1", 46)]


def test_default_window_is_5_seconds(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/pprof/trace?seconds=5", "trace.out")
    assert TraceCollector().collect(bundle.context(http=pprof_port)).status is base.Status.OK


def test_trace_already_running_fails_with_gos_words_kept(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/trace?seconds=1", "trace-busy.txt")
    result = TraceCollector().collect(bundle.context(http=pprof_port, params={"seconds": 1}))
    assert result.status is base.Status.FAILED
    assert "execution tracer already enabled" in result.message
    assert bundle.files == {layout.error_path("trace"): data("go/trace-busy.txt")}


def test_answer_without_trace_header_is_kept_but_partial(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/trace?seconds=1", "cpu.pb.gz")
    result = TraceCollector().collect(bundle.context(http=pprof_port, params={"seconds": 1}))
    assert result.status is base.Status.PARTIAL and "not a Go execution trace" in result.message
    assert bundle.files == {layout.TRACE: data("go/cpu.pb.gz")}
