"""Flight recorder: a snapshot of the target's Go 1.25 ``runtime/trace.FlightRecorder``.

An execution trace from ``/debug/pprof/trace?seconds=N`` covers the N seconds *after* the capture
starts; by then the stall someone noticed is often over. A flight recorder keeps the last seconds
of trace in memory all the time, and its snapshot covers the seconds *before* the capture: the
moment that matters. Go ships no HTTP handler for it, so debugcap defines one: ``GET
/debug/flightrecorder`` (``CaptureSettings.flight_recorder_path``, or this step's ``path``) answers
``fr.WriteTo(w)``; docs/go-diagnostics.md has the ten lines a service adds. The snapshot is a
regular execution trace (``go tool trace``), stored under ``trace/flightrecorder.out``.

When the target does not serve it (404), the step's ``fallback_seconds`` decides:

- 0 (the default): skipped with a note. The built-in templates that list this step also have a
  ``trace`` step in their profile window: that trace already covers the capture, and a second one
  would be refused anyway (Go runs one ``trace.Start`` at a time: "execution tracer already
  enabled"), or, retried, would double the trace's cost for the same seconds. The default is 0 so
  that a template with both steps can never take two traces by forgetting to say so.
- N > 0: ``/debug/pprof/trace?seconds=N``, stored under ``trace/flightrecorder-fallback.out`` so it
  never collides with a ``trace`` step's file. For templates without a trace step (an admin's
  ``DebugCaptureTemplate`` says ``fallback_seconds: 5``). The step is not in the profile window: it
  starts with the capture, when the snapshot would have been taken.

The fallback is the step's own decision, made from its parameters, so a capture never takes two
traces behind the template's back, and the capture engine needs no knowledge of this collector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from debugcap.bundle import layout
from debugcap.collectors import base, fetching

DEFAULT_FALLBACK_SECONDS = 0


class FlightRecorderCollector(base.Collector):
    name = "flight-recorder"
    kind = base.Kind.GO
    description = ("snapshot of the Go 1.25+ flight recorder (the seconds before the capture); "
                   "an execution trace when not served")

    @classmethod
    def expected_seconds(cls, params: Mapping[str, Any]) -> float:
        # Only the fallback lasts; the deadline must allow for it when it is asked for.
        return float(_fallback_seconds(params))

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        path = str(ctx.param("path", "") or ctx.settings.flight_recorder_path)
        if not path.startswith("/"):
            return base.CollectorResult(base.Status.FAILED, f"path {path!r} must start with /")
        snapshot = fetching.fetch(ctx, self.name, path, layout.TRACE_FLIGHT_RECORDER, fetching.Body.TRACE,
                                  missing_is_skip=True)
        if snapshot.status is not base.Status.SKIPPED:
            return snapshot
        fallback = _fallback_seconds(ctx.params)
        not_served = (f"{path} not served on port {ctx.target.pprof_port} (no runtime/trace.FlightRecorder "
                      "handler; see docs/go-diagnostics.md)")
        if fallback <= 0:
            return base.CollectorResult(base.Status.SKIPPED, f"{not_served}; no fallback trace asked for "
                                        "(set the step's fallback_seconds to take a trace instead where the "
                                        "template has no trace step)")
        trace = fetching.fetch(ctx, self.name, f"/debug/pprof/trace?seconds={fallback}",
                               layout.TRACE_FLIGHT_RECORDER_FALLBACK, fetching.Body.TRACE, seconds=fallback)
        note = f"{not_served}; took a {fallback}s execution trace from the capture's start instead"
        return base.CollectorResult(trace.status, f"{note}: {trace.message}" if trace.message else note,
                                    trace.files)


def _fallback_seconds(params: Mapping[str, Any]) -> int:
    value = params.get("fallback_seconds")
    try:
        return max(int(DEFAULT_FALLBACK_SECONDS if value is None else value), 0)
    except (TypeError, ValueError):
        return DEFAULT_FALLBACK_SECONDS
