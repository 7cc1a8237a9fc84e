"""DebugSchedule handler's API calls, on a fake Kube that records them.

Cases: the capture of a run is named after the run's minute, labelled and owned by the schedule;
a retried tick that finds its capture made (409) does not fail; only captures this schedule owns
count as its history; deleting a capture already gone is no error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf
import operator_fakes

from debugcap import errors
from debugcap.operator import schedules

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
