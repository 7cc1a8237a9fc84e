"""Rule profiler-own: the capture's own share of a profile is one low line, never a subject of its own frames.

goapp's flight recorder holds a large share of its heap in trace buffers, and the tracer's reader
goroutine sleeps in the block profile; both are set apart from the application's functions.
"""

from __future__ import annotations

from debugcap.analysis import appcode, findings, model
from debugcap.analysis.findings import profiler_own

from .reports import goapp_attribution, report


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
