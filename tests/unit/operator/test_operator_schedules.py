"""DebugSchedule handler's API calls, on a fake Kube that records them.

Cases: the capture of a run is named after the run's minute, labelled and owned by the schedule;
a retried tick that finds its capture made (409) does not fail; only captures this schedule owns
count as its history; deleting a capture already gone is no error; a failed run pruned in the tick
that sees it end is the schedule's lastRun, then and on the ticks after, while an older success
still there does not replace it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import kopf
import operator_fakes

from debugcap import errors
from debugcap.operator import runtime, schedules

CAPTURES = "/apis/debugcap.io/v1alpha1/namespaces/shop/debugcaptures"
WHEN = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def _schedule() -> kopf.Body:
    return kopf.Body({"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugSchedule",
                      "metadata": {"name": "nightly", "namespace": "shop", "uid": "u-1"},
                      "spec": {"captureTemplate": {"metadata": {"labels": {"team": "shop"}},
                                                   "spec": {"target": {"pod": "api-1"}}}}})


def test_a_runs_capture_is_named_after_its_minute_labelled_and_owned_by_the_schedule() -> None:
    body = schedules.scheduled_capture(_schedule(), WHEN)
    assert body["metadata"]["name"] == f"nightly-{int(WHEN.timestamp()) // 60}"
    assert body["metadata"]["labels"] == {"team": "shop", "debugcap.io/schedule": "nightly"}
    [owner] = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("DebugSchedule", "nightly", "u-1")
    assert owner["controller"] is True
    assert body["spec"] == {"target": {"pod": "api-1"}}


def test_a_retried_tick_finds_its_capture_made_and_does_not_fail() -> None:
    kube: Any = operator_fakes.FakeKube({f"POST {CAPTURES}": errors.ConflictError("exists", status=409)})
    name = schedules.create_scheduled_capture(kube, _schedule(), WHEN)
    assert name == f"nightly-{int(WHEN.timestamp()) // 60}"
    assert [(m, p) for m, p, _ in kube.calls] == [("POST", CAPTURES)]


def test_only_captures_the_schedule_owns_are_its_history() -> None:
    def item(name: str, uid: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "ownerReferences": [{"uid": uid}]}}

    kube: Any = operator_fakes.FakeKube({f"GET {CAPTURES}": {"items": [item("nightly-1", "u-1"),
                                                                       item("nightly-2", "u-old")]}})
    owned = schedules.owned_captures(kube, "shop", "nightly", "u-1")
    assert [c["metadata"]["name"] for c in owned] == ["nightly-1"]
    assert kube.calls == [("GET", CAPTURES, [("labelSelector", "debugcap.io/schedule=nightly")])]


def test_deleting_a_capture_already_gone_is_no_error() -> None:
    kube: Any = operator_fakes.FakeKube({f"{CAPTURES}/nightly-1": operator_fakes.not_found()})
    schedules.delete_capture(kube, "shop", "nightly-1")
    assert kube.calls == [("DELETE", f"{CAPTURES}/nightly-1", None)]


def _run(name: str, created: str, phase: str, completed: str, goroutines: int | None = None) -> dict[str, Any]:
    pods = [{"name": "api-1", "phase": phase, "readings": {"goroutines": goroutines}}] if goroutines else []
    return {"metadata": {"name": name, "creationTimestamp": created, "ownerReferences": [{"uid": "u-1"}]},
            "status": {"phase": phase, "completionTime": completed, "pods": pods,
                       "summary": {"pods": 1, "captured": int(phase != "Failed"), "failed": int(phase == "Failed"),
                                   "healthy": 0, "unhealthy": 0, "withFindings": 0, "findings": 0}}}


def _tick(owned: list[dict[str, Any]], status: dict[str, Any]) -> tuple[kopf.Patch, list[Any]]:
    """One tick of a suspended schedule (nothing is created, whatever the time) keeping no failed run."""
    kube: Any = operator_fakes.FakeKube({f"GET {CAPTURES}": {"items": owned}})
    body = _schedule()
    spec = {"schedule": "0 3 * * *", "suspend": True, "failedHistoryLimit": 0, "successfulHistoryLimit": 3}
    body = kopf.Body({**body, "metadata": {**body["metadata"], "creationTimestamp": "2026-11-30T00:00:00Z"},
                      "spec": spec, "status": status})
    patch = kopf.Patch()
    rt: Any = runtime.Runtime(config=None, kube=kube, store=None, executor=None, pods=None)  # type: ignore[arg-type]
    memo = kopf.Memo(runtime=rt)
    asyncio.run(schedules.tick_schedule(body=body, spec=body.spec, status=body.status, patch=patch, memo=memo,
                                        logger=logging.getLogger("test")))
    return patch, kube.calls


def test_a_failed_run_pruned_in_the_same_tick_is_the_last_run_and_stays_it() -> None:
    older = _run("nightly-1", "2026-12-01T03:00:00Z", "Completed", "2026-12-01T03:00:30Z", goroutines=20)
    ok = _run("nightly-2", "2026-12-02T03:00:00Z", "Completed", "2026-12-02T03:00:30Z", goroutines=25)
    failed = _run("nightly-3", "2026-12-03T03:00:00Z", "Failed", "2026-12-03T03:00:30Z")
    patch, calls = _tick([older, ok, failed], {})
    assert ("DELETE", f"{CAPTURES}/nightly-3", None) in calls  # failedHistoryLimit 0: pruned at once
    last = patch.status["lastRun"]
    assert (last["capture"], last["phase"], last["failed"]) == ("nightly-3", "Failed", 1)
    assert last["previousCapture"] == "nightly-2"  # a baseline still there
    # The next tick no longer lists it: the older success must not take its place.
    patch, _ = _tick([older, ok], {"lastRun": dict(last)})
    assert "lastRun" not in patch.status
    # A newer run does.
    newer = _run("nightly-4", "2026-12-04T03:00:00Z", "Completed", "2026-12-04T03:00:40Z", goroutines=30)
    patch, _ = _tick([older, ok, newer], {"lastRun": dict(last)})
    assert (patch.status["lastRun"]["capture"], patch.status["lastRun"]["previousCapture"]) == ("nightly-4",
                                                                                                "nightly-2")
