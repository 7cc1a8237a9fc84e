"""Rule sched-latency: the trace's p99 wait from runnable to running, by band, with its cause.

Cases: no trace, or a p99 under 1 ms, is no finding; the three bands; GOMAXPROCS above the
container's CPU limit is named as throttling; without a limit the message says so; the goapp
trace (tests/fixtures/goapp-trace) read as the report reads it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from debugcap.analysis import model, traces
from debugcap.analysis.findings import sched_latency

from .reports import kinds, messages, report

GOAPP_TRACE = Path(__file__).resolve().parents[3] / "fixtures" / "goapp-trace" / "trace.out"
BASE = traces.TraceSummary(
    source="trace/trace.out", go_format="1.26", generations=3, events=1000, duration_ns=10**9, cut=None,
    gomaxprocs=2, procs_seen=2, goroutines_created=10, goroutines_at_end=40, goroutines_max=45, gc_count=1,
    stw_count=2, stw_total_ns=10**5, stw_max_ns=6 * 10**4, sched_waits=2000, sched_latency_p99_ns=None,
    sched_latency_max_ns=None, sched_latency_total_ns=0, cpu_samples=0, heap_max_bytes=None)


def trace(p99_ms: float, longest_ms: float | None = None, gomaxprocs: int | None = 2) -> traces.TraceSummary:
    return dataclasses.replace(BASE, sched_latency_p99_ns=int(p99_ms * 1e6), gomaxprocs=gomaxprocs,
                               sched_latency_max_ns=int((longest_ms or p99_ms) * 1e6))


def container(cores: float | None) -> model.Container:
    return model.Container(name="api", cpu_limit=cores, memory_limit=None, uptime_seconds=None)


def test_no_trace_or_a_fast_scheduler_is_no_finding() -> None:
    assert kinds(report()) == []
    assert kinds(report(trace=BASE)) == []  # no waits seen
    assert kinds(report(trace=trace(0.9))) == []


@pytest.mark.parametrize(("p99_ms", "level"), [(1, "low"), (9.9, "low"), (10, "medium"), (49, "medium"),
                                               (50, "high"), (400, "high")])
def test_bands(p99_ms: float, level: str) -> None:
    (found,) = sched_latency.check(report(trace=trace(p99_ms)))
    assert (found.kind, found.subject, found.level) == ("sched-latency", "scheduler latency", level)
    assert (found.value, found.unit) == (round(p99_ms, 3), "ms")


def test_more_processors_than_the_limit_is_named_as_throttling() -> None:
    rep = report(trace=trace(45, 120), container=container(0.5))
    assert messages(rep) == [
        "p99 scheduler latency 45 ms (longest 120 ms of 2000 waits): CPU starvation, GOMAXPROCS 2 against a "
        "500m CPU limit (more processors than the limit: the container is throttled; set GOMAXPROCS to the limit)"]


def test_within_the_limit_or_without_one() -> None:
    assert messages(report(trace=trace(12), container=container(2))) == [
        "p99 scheduler latency 12 ms (longest 12 ms of 2000 waits): CPU starvation, GOMAXPROCS 2 against a "
        "2000m CPU limit"]
    assert messages(report(trace=trace(3, gomaxprocs=None))) == [
        "p99 scheduler latency 3 ms (longest 3 ms of 2000 waits): goroutines queue for a processor, "
        "GOMAXPROCS unknown, no CPU limit known"]


def test_on_the_goapp_trace() -> None:
    s = traces.load(GOAPP_TRACE).summary
    assert s.sched_latency_p99_ns is not None
    found = list(sched_latency.check(report(trace=s)))
    if s.sched_latency_p99_ns < sched_latency.NOTICE_NS:
        assert found == []
    else:
        assert found[0].value == round(s.sched_latency_p99_ns / 1e6, 3)
        assert f"GOMAXPROCS {s.gomaxprocs}" in found[0].message
