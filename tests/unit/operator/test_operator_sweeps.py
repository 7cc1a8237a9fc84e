"""A DebugSchedule's lastRun: the newest finished capture's summary and the trend since the run before.

Cases: no finished run, no lastRun; the newest finished run is summarised from its status.summary
(a running one does not count, and age is creation then completion time); a run without a summary
(written before it existed) is counted from its pods; goroutines and heap in use per pod, up,
down or the same, against the newest earlier run that read them (a failed run in between is
skipped); pods new in this run have no trend; the trend is capped, largest goroutine change first.
"""

from __future__ import annotations

from typing import Any

from debugcap.operator import sweeps


def _pod(name: str, goroutines: int | None = None, heap: int | None = None, healthy: str = "True") -> dict[str, Any]:
    readings = {k: v for k, v in (("goroutines", goroutines), ("heapInuseBytes", heap)) if v is not None}
    entry: dict[str, Any] = {"name": name, "phase": "Completed", "findingsTotal": 0,
                             "conditions": [{"type": "Healthy", "status": healthy, "reason": "r", "message": "m",
                                             "lastTransitionTime": "2026-12-01T03:00:00Z"}]}
    return {**entry, "readings": readings} if readings else entry


def _capture(name: str, created: str, phase: str = "Completed", pods: list[dict[str, Any]] | None = None,
             summary: dict[str, int] | None = None, completed: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "pods": pods or []}
    if summary is not None:
        status["summary"] = summary
    if completed:
        status["completionTime"] = completed
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


SUMMARY = {"pods": 3, "captured": 3, "failed": 0, "healthy": 2, "unhealthy": 1, "withFindings": 3, "findings": 9}


def test_no_finished_run_no_last_run() -> None:
    assert sweeps.last_run([]) is None
    assert sweeps.last_run([_capture("s-1", "2026-12-01T03:00:00Z", phase="Running")]) is None


def test_the_newest_finished_run_is_summarised_and_compared_with_the_one_before() -> None:
    older = _capture("s-1", "2026-12-01T03:00:00Z", pods=[_pod("web-1", 20, 4000), _pod("leaky", 500, 8000)])
    failed = _capture("s-2", "2026-12-01T04:00:00Z", phase="Failed", pods=[{"name": "web-1", "phase": "Failed"}])
    newest = _capture("s-3", "2026-12-01T05:00:00Z", summary=SUMMARY, completed="2026-12-01T05:00:20Z",
                      pods=[_pod("web-1", 18, 4000), _pod("leaky", 1500, 9000, "False"), _pod("web-9", 20, 10)])
    running = _capture("s-4", "2026-12-01T06:00:00Z", phase="Running")
    run = sweeps.last_run([newest, running, failed, older])
    assert run == {"capture": "s-3", "phase": "Completed", **SUMMARY, "completionTime": "2026-12-01T05:00:20Z",
                   "previousCapture": "s-1", "trend": [
                       {"pod": "leaky", "goroutines": 1500, "goroutinesChange": 1000, "goroutinesTrend": "up",
                        "heapInuse": 9000, "heapInuseChange": 1000, "heapInuseTrend": "up"},
                       {"pod": "web-1", "goroutines": 18, "goroutinesChange": -2, "goroutinesTrend": "down",
                        "heapInuse": 4000, "heapInuseChange": 0, "heapInuseTrend": "same"}]}


def test_a_run_without_a_summary_is_counted_from_its_pods() -> None:
    run = sweeps.last_run([_capture("s-1", "2026-12-01T03:00:00Z", phase="PartiallyFailed",
                                    pods=[_pod("a", 1), _pod("b", 2, healthy="False"),
                                          {"name": "c", "phase": "Failed"}])])
    assert run is not None
    assert {k: run[k] for k in ("pods", "captured", "failed", "healthy", "unhealthy")} == {
        "pods": 3, "captured": 2, "failed": 1, "healthy": 1, "unhealthy": 1}
    assert "trend" not in run and "previousCapture" not in run


def test_runs_created_in_the_same_second_are_ordered_by_completion() -> None:
    a = _capture("s-b", "2026-12-01T03:00:00Z", completed="2026-12-01T03:00:30Z", summary=SUMMARY)
    b = _capture("s-a", "2026-12-01T03:00:00Z", completed="2026-12-01T03:00:50Z", summary=SUMMARY)
    run = sweeps.last_run([a, b])
    assert run is not None and run["capture"] == "s-a"


def test_the_trend_is_capped_largest_goroutine_change_first() -> None:
    count = sweeps.MAX_TREND_PODS + 5
    before = _capture("s-1", "2026-12-01T03:00:00Z", pods=[_pod(f"p{i:02}", 10) for i in range(count)])
    after = _capture("s-2", "2026-12-01T04:00:00Z", pods=[_pod(f"p{i:02}", 10 + i) for i in range(count)])
    run = sweeps.last_run([before, after])
    assert run is not None
    assert len(run["trend"]) == sweeps.MAX_TREND_PODS
    assert run["trend"][0] == {"pod": f"p{count - 1:02}", "goroutines": 10 + count - 1,
                               "goroutinesChange": count - 1, "goroutinesTrend": "up"}
