"""``flight-recorder``: a snapshot of the target's runtime/trace.FlightRecorder (the seconds before).

Cases, on goapp recorded with its flight recorder and goapp-nodiag without
(``data/record_go_diagnostics.sh``): the snapshot (a Go execution trace) is stored under
trace/flightrecorder.out from the settings' path, or the step's ``path``; not served (404) with
``fallback_seconds: 0`` (what templates with a trace step say) is a skip and takes no trace; not
served with a fallback takes ``/debug/pprof/trace?seconds=N`` into its own path and says why; the
deadline counts the fallback only when asked for.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import COLLECTORS, base
from debugcap.collectors.fetching import TRACE_HEADER
from debugcap.collectors.flight_recorder import FlightRecorderCollector


def test_registered_under_its_name() -> None:
    assert COLLECTORS["flight-recorder"] is FlightRecorderCollector


def test_snapshot_is_stored_as_a_trace(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/flightrecorder", "flightrecorder.out")
    result = FlightRecorderCollector().collect(bundle.context(http=pprof_port))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.TRACE_FLIGHT_RECORDER,))
    assert bundle.files == {layout.TRACE_FLIGHT_RECORDER: data("go/flightrecorder.out")}
    assert TRACE_HEADER.match(bundle.files[layout.TRACE_FLIGHT_RECORDER])
    assert [path for path, _t, _c in pprof_port.gets] == ["/debug/flightrecorder"]


def test_path_comes_from_the_step_or_the_settings(bundle, pprof_port) -> None:
    pprof_port.serve("/internal/fr", "flightrecorder.out")
    FlightRecorderCollector().collect(bundle.context(http=pprof_port, params={"path": "/internal/fr"}))
    bundle.files.clear()
    FlightRecorderCollector().collect(bundle.context(http=pprof_port, params={"path": ""},
                                                     flight_recorder_path="/internal/fr"))
    assert [path for path, _t, _c in pprof_port.gets] == ["/internal/fr", "/internal/fr"]


def test_not_served_without_fallback_is_a_skip_and_takes_no_trace(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/flightrecorder", "flightrecorder-nodiag.txt")
    result = FlightRecorderCollector().collect(bundle.context(http=pprof_port, params={"fallback_seconds": 0}))
    assert result.status is base.Status.SKIPPED
    assert result.message == ("/debug/flightrecorder not served on port 6060 (no runtime/trace.FlightRecorder "
                              "handler; see docs/go-diagnostics.md); no fallback trace asked for (set the step's "
                              "fallback_seconds to take a trace instead where the template has no trace step)")
    assert [path for path, _t, _c in pprof_port.gets] == ["/debug/flightrecorder"]
    assert bundle.files == {}


def test_not_served_with_fallback_takes_a_trace_of_its_own(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/flightrecorder", "flightrecorder-nodiag.txt")
    pprof_port.serve("/debug/pprof/trace?seconds=1", "trace.out")
    ctx = bundle.context(http=pprof_port, params={"fallback_seconds": 1}, http_timeout_seconds=30,
                         profile_grace_seconds=15)
    result = FlightRecorderCollector().collect(ctx)
    assert result.status is base.Status.OK
    assert result.files == (layout.TRACE_FLIGHT_RECORDER_FALLBACK,)
    assert "took a 1s execution trace from the capture's start instead" in result.message
    assert bundle.files == {layout.TRACE_FLIGHT_RECORDER_FALLBACK: data("go/trace.out")}
    assert [(p, t) for p, t, _c in pprof_port.gets] == [("/debug/flightrecorder", 30),
                                                         ("/debug/pprof/trace?seconds=1", 46)]


def test_fallback_trace_refused_keeps_gos_words(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/flightrecorder", "flightrecorder-nodiag.txt")
    pprof_port.serve("/debug/pprof/trace?seconds=1", "trace-busy.txt")
    result = FlightRecorderCollector().collect(bundle.context(http=pprof_port, params={"fallback_seconds": 1}))
    assert result.status is base.Status.FAILED
    assert "execution tracer already enabled" in result.message and "not served" in result.message
    assert list(bundle.files) == [layout.error_path("flight-recorder")]


def test_default_fallback_and_deadline() -> None:
    # No fallback unless asked: a template with a trace step can never take two traces by omission.
    assert FlightRecorderCollector.expected_seconds({}) == 0
    assert FlightRecorderCollector.expected_seconds({"fallback_seconds": 5}) == 5
    assert FlightRecorderCollector.expected_seconds({"fallback_seconds": "bogus"}) == 0


def test_not_served_with_the_default_takes_no_trace(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/flightrecorder", "flightrecorder-nodiag.txt")
    result = FlightRecorderCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.SKIPPED and "no fallback trace asked for" in result.message
    assert [path for path, _t, _c in pprof_port.gets] == ["/debug/flightrecorder"]


def test_relative_path_fails(bundle, pprof_port) -> None:
    result = FlightRecorderCollector().collect(bundle.context(http=pprof_port, params={"path": "fr"}))
    assert result.status is base.Status.FAILED and pprof_port.gets == []
