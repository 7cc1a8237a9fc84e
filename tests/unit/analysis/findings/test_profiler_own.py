"""Rule profiler-own: the capture's own share of a profile is one low line, never a subject of its own frames.

goapp's flight recorder holds a large share of its heap in trace buffers, and the tracer's reader
goroutine sleeps in the block profile; both are set apart from the application's functions. Work
the application runs under pprof.Do, trace regions, runtime.Callers or a growing stack is not.
"""

from __future__ import annotations

import pytest

from debugcap.analysis import appcode, attribution, findings, model
from debugcap.analysis.findings import profiler_own
from debugcap.formats import pprof as pprof_format

from .reports import OWNFRAMES, goapp_attribution, report, the


def test_the_flight_recorders_heap_is_reported_as_the_profilers_own() -> None:
    att = goapp_attribution("heap")
    assert att.profiler >= profiler_own.MIN_SHARE * att.total
    rep = report(attribution={"heap": att})
    own = [f for f in findings.evaluate(rep) if f.kind == "profiler-own"]
    assert len(own) == 1 and own[0].level == "low"
    assert own[0].leaf == "runtime/trace.(*FlightRecorder).Start"
    assert "of the in-use heap" in own[0].message and "the flight recorder's trace buffers" in own[0].message
    assert not any(appcode.is_profiler(f.subject) for f in findings.evaluate(rep))


def test_the_profiler_is_charged_to_no_application_function() -> None:
    for kind in ("cpu", "heap", "block", "mutex"):
        att = goapp_attribution(kind)
        assert not any(appcode.is_profiler(r.function) for r in att.rows), kind
        assert sum(r.value for r in att.rows) + att.profiler <= att.total


def test_a_small_share_is_not_reported() -> None:
    att = goapp_attribution("heap")
    small = model.Attribution(att.sample_type, att.unit, att.total, 0, att.total // 20, att.profiler_leaf, att.rows)
    assert [f for f in findings.evaluate(report(attribution={"heap": small})) if f.kind == "profiler-own"] == []


@pytest.mark.parametrize("name", ["pprof-do", "regions", "callers", "stack-growth"])
def test_work_under_labels_regions_or_the_unwinder_is_the_applications(name: str) -> None:
    # Real profiles (tests/fixtures/ownframes-data): all of it was once "the profiler's own (from
    # runtime/pprof.Do)", and cpu-hot named a runtime leaf (runtime.notesleep) instead.
    profile = pprof_format.load(OWNFRAMES / f"cpu-{name}.pb.gz")
    rep = report(attribution={"cpu": attribution.attribute(profile, attribution.code_of([profile]))},
                 runtime={"GOMAXPROCS": "2"})
    assert [f for f in findings.evaluate(rep) if f.kind == "profiler-own"] == []
    assert the(rep, "cpu-hot").subject.startswith("main.")
