"""DebugCapture handlers' seams: status writes, bundle keys for deletion, the runtime in memo.

Cases: a status write answered with a deletionTimestamp, or a 404, says the capture is being
deleted; the write goes to the status subresource as a merge patch; the keys deleted with a
capture include those only named by an uploadKey; deletion waits for the handler while bundles
may still come; handlers before start-up retry instead of failing; a pod's Event names its bundle.
"""

from __future__ import annotations

from typing import Any

import kopf
import operator_fakes
import pytest

from debugcap.operator import captures, runtime
from debugcap.operator.results import PodResult

STATUS = "/apis/debugcap.io/v1alpha1/namespaces/ns/debugcaptures/cap/status"


@pytest.mark.parametrize(("answer", "deleted"), [
    ({"metadata": {"name": "cap", "deletionTimestamp": "2026-12-01T10:00:00Z"}}, True),
    ({"metadata": {"name": "cap"}}, False),
    (operator_fakes.not_found("debugcaptures/status"), True),
], ids=["being-deleted", "alive", "gone"])
def test_a_status_write_says_whether_the_capture_is_being_deleted(answer: Any, deleted: bool) -> None:
    kube: Any = operator_fakes.FakeKube({STATUS: answer})
    assert captures.patch_status(kube, "ns", "cap", {"phase": "Running"}) is deleted
    assert kube.calls == [("PATCH", STATUS, {"status": {"phase": "Running"}})]


def test_expiry_deletes_stored_bundles_and_ones_that_may_still_arrive_from_the_spool() -> None:
    status = {"pods": [{"name": "a", "phase": "Completed", "bundle": {"key": "k/a.tar.gz"}},
                       {"name": "b", "phase": "PartiallyFailed", "uploadKey": "k/b.tar.gz"},
                       {"name": "c", "phase": "Failed", "message": "no pprof"}]}
    assert captures.bundle_keys(status) == ["k/a.tar.gz", "k/b.tar.gz"]
    assert captures.has_bundles({**status, "phase": "PartiallyFailed"}) is True  # type: ignore[arg-type]
    # Ended with nothing stored: no cleanup to wait for. Not ended yet: bundles may still come.
    assert captures.has_bundles({"phase": "Failed", "pods": [status["pods"][2]]}) is False  # type: ignore[arg-type]
    assert captures.has_bundles({"phase": "Running", "pods": []}) is True  # type: ignore[arg-type]
    assert captures.has_bundles({}) is True  # type: ignore[arg-type]


def test_a_handler_called_before_start_up_finished_is_retried() -> None:
    with pytest.raises(kopf.TemporaryError, match="not finished starting"):
        runtime.of(kopf.Memo())
    rt: Any = runtime.Runtime(config=None, kube=None, store=None, executor=None, pods=None)  # type: ignore[arg-type]
    assert runtime.of(kopf.Memo(runtime=rt)) is rt


def test_a_pods_event_names_its_bundle_and_the_pod_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from debugcap.operator import metrics

    posted: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "event", lambda body, **kw: posted.append(kw))  # kopf posts only inside its loop
    before = metrics.POD_CAPTURES.labels("Completed")._value.get()
    body: Any = {"metadata": {"name": "cap"}}
    captures.pod_done(body, {}, PodResult(name="api-1", phase="Completed", key="k", uri="s3://b/k",
                                      duration_seconds=3.2))
    assert posted == [{"type": "Normal", "reason": "PodCaptured", "message": "pod api-1: Completed in 3s, bundle s3://b/k"}]
    assert metrics.POD_CAPTURES.labels("Completed")._value.get() == before + 1
