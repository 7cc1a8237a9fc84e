"""The capture's own share of a profile: a row of the report's attribution, never a finding.

goapp's flight recorder holds a large share of its heap in trace buffers, and the tracer's reader
goroutine sleeps in the block profile; both are set apart from the application's functions and
shown as the profiler's own row, with what it is. Work the application runs under pprof.Do, trace
regions, runtime.Callers or a growing stack is the application's, not the profiler's.
"""

from __future__ import annotations

import pytest

from debugcap.analysis import appcode, attribution, findings
from debugcap.analysis.rendering import text
from debugcap.formats import pprof as pprof_format

from .reports import OWNFRAMES, goapp_attribution, report, the


def test_the_flight_recorders_heap_is_a_row_of_the_attribution_and_no_finding() -> None:
    att = goapp_attribution("heap")
    assert att.profiler >= att.total // 10 and att.profiler_leaf == "runtime/trace.(*FlightRecorder).Start"
    rep = report(attribution={"heap": att})
    out = findings.evaluate(rep)
    assert not [f for f in out if "profiler" in f.kind or appcode.is_profiler(f.subject) or "profiler" in f.subject]
    row = text.attribution_rows(att)[-1]
    assert row[2] == "(the profiler's own)"
    assert row[3] == "the flight recorder's trace buffers, from runtime/trace.(*FlightRecorder).Start"


def test_the_profiler_is_charged_to_no_application_function() -> None:
    for kind in ("cpu", "heap", "block", "mutex"):
        att = goapp_attribution(kind)
        assert not any(appcode.is_profiler(r.function) for r in att.rows), kind
        assert sum(r.value for r in att.rows) + att.profiler <= att.total


@pytest.mark.parametrize("name", ["pprof-do", "regions", "callers", "stack-growth"])
def test_work_under_labels_regions_or_the_unwinder_is_the_applications(name: str) -> None:
    # Real profiles (tests/fixtures/ownframes-data): all of it was once "the profiler's own (from
    # runtime/pprof.Do)", and cpu-hot named a runtime leaf (runtime.notesleep) instead.
    profile = pprof_format.load(OWNFRAMES / f"cpu-{name}.pb.gz")
    att = attribution.attribute(profile, attribution.code_of([profile]))
    assert att.profiler < att.total // 10, (att.profiler, att.total)
    rep = report(attribution={"cpu": att}, runtime={"GOMAXPROCS": "2"})
    assert the(rep, "cpu-hot").subject.startswith("main.")
