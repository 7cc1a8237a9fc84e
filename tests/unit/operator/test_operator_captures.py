"""DebugCapture handlers' seams: status writes, bundle keys for deletion, the runtime in memo.

Cases: a status write answered with a deletionTimestamp, or a 404, says the capture is being
deleted; the write goes to the status subresource as a merge patch; the keys deleted with a
capture include those only named by an uploadKey; deletion waits for the handler while bundles
may still come; handlers before start-up retry instead of failing; a pod's Event names its bundle;
a capture fired on memory runs its template cut to the quick steps on the pod scheduler's urgent
path, and writes status.firing with its Running status; other captures take the regular path, and
so does a memory firing's capture not made by its DebugTrigger (no owner reference to it, or not
its label), though its steps are cut the same way; a heap added to a template without one is said
in the Running message; a pod that ended Failed is not counted "captured and stored" even when its
bundle was stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import operator_fakes
import pytest

from debugcap import templates
from debugcap.collectors import COLLECTORS
from debugcap.operator import captures, runtime, targets, templating
from debugcap.operator.config import DebugcapConfig
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


class Pods:
    """The pod scheduler as the create handler sees it: notes how each pod was handed over."""

    def __init__(self, result: PodResult | None = None) -> None:
        self.calls: list[tuple[str, bool, tuple[str, ...]]] = []
        self.result = result

    async def capture(self, run: Any, namespace: str, pod: str, work: Any, *, urgent: bool = False,
                      **_: Any) -> PodResult:
        ran = tuple(s.collector for s in work.template.steps if not s.skipped)
        self.calls.append((pod, urgent, ran))
        return self.result or PodResult(name=pod, phase="Completed", key=f"k/{pod}.tar.gz")


OWNER = {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugTrigger", "name": "api-pre-oom", "uid": "t1",
         "controller": True, "blockOwnerDeletion": True}
BY_TRIGGER = {"ownerReferences": [OWNER], "labels": {"debugcap.io/trigger": "api-pre-oom"}}


def run_capture(monkeypatch: pytest.MonkeyPatch, reason: str | None, *, metadata: dict[str, Any] | None = None,
                template: str = "debug-full", pods: Pods | None = None) -> tuple[Pods, list[dict[str, Any]]]:
    """Run the create handler on a capture of pod api-1; the pod scheduler's calls and the status writes."""
    kube: Any = operator_fakes.FakeKube({STATUS: {"metadata": {"name": "cap"}}})
    pods = pods or Pods()
    rt: Any = runtime.Runtime(config=DebugcapConfig(), kube=kube, store=None, executor=None,  # type: ignore[arg-type]
                              pods=pods)  # type: ignore[arg-type]
    monkeypatch.setattr(kopf, "event", lambda *_a, **_kw: None)  # kopf posts only inside its loop
    monkeypatch.setattr(templating, "expand_template",
                        lambda _kube, request: templates.expand(request.template, collectors=COLLECTORS))
    monkeypatch.setattr(targets, "find_pods", lambda _kube, _ns, request: targets.PodSelection(pods=("api-1",)))
    firing = {"trigger": "api-pre-oom", "reason": reason, "value": "83% of the limit", "observed": 83.0,
              "time": "2026-12-04T21:00:00Z"}
    spec = {"target": {"pod": "api-1"}, "template": template, **({"firing": firing} if reason else {})}
    meta = {"name": "cap", "namespace": "ns", "uid": "u1", "generation": 1,
            **(BY_TRIGGER if metadata is None else metadata)}
    body = kopf.Body({"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",  # type: ignore[typeddict-item]
                      "metadata": meta, "spec": spec})
    asyncio.run(captures._run_capture(rt, body))
    return pods, [call[2]["status"] for call in kube.calls if call[0] == "PATCH"]


@pytest.mark.parametrize(("reason", "urgent"), [("memoryPercentOfLimit", True), ("restarted", False), (None, False)],
                         ids=["memory", "restart", "not-fired"])
def test_a_memory_firing_takes_the_urgent_path_with_its_quick_steps_and_the_status_says_what_fired(
        monkeypatch: pytest.MonkeyPatch, reason: str | None, urgent: bool) -> None:
    pods, written = run_capture(monkeypatch, reason)
    [(pod, taken, ran)] = pods.calls
    assert (pod, taken) == ("api-1", urgent)
    assert ("pprof-cpu" in ran) is not urgent and ran[0] == ("pprof-heap" if urgent else "pod-yaml")
    firing = {"trigger": "api-pre-oom", "value": "83% of the limit", "observed": 83.0, "time": "2026-12-04T21:00:00Z"}
    running = next(w for w in written if w.get("phase") == "Running")
    assert running.get("firing") == ({**firing, "reason": reason} if reason else None)
    if reason:
        assert f"fired by DebugTrigger api-pre-oom ({reason})" in running["message"]
        assert written[-1]["firing"] == running["firing"] and written[-1]["phase"] == "Completed"


@pytest.mark.parametrize("metadata", [
    {},  # made by hand
    {"labels": {"debugcap.io/trigger": "api-pre-oom"}},  # the label alone
    {"ownerReferences": [OWNER]},  # the owner alone
    {**BY_TRIGGER, "ownerReferences": [{**OWNER, "name": "other"}]},  # another trigger than spec.firing's
    {**BY_TRIGGER, "ownerReferences": [{**OWNER, "kind": "DebugSchedule"}]},
    {**BY_TRIGGER, "ownerReferences": [{**OWNER, "apiVersion": "debugcap.io/v1beta9"}]},
    {**BY_TRIGGER, "labels": {"debugcap.io/trigger": "other"}},
], ids=["by-hand", "label-only", "owner-only", "other-trigger", "other-kind", "other-version", "other-label"])
def test_a_memory_firing_not_made_by_its_trigger_takes_the_regular_path_with_the_same_steps(
        monkeypatch: pytest.MonkeyPatch, metadata: dict[str, Any]) -> None:
    pods, _written = run_capture(monkeypatch, "memoryPercentOfLimit", metadata=metadata)
    [(_pod, taken, ran)] = pods.calls
    assert not taken  # the pod lock and a slot, like any capture
    assert ran[0] == "pprof-heap" and "pprof-cpu" not in ran  # still cut to the quick steps


def test_a_heap_added_to_a_template_without_one_is_said_in_the_running_message(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pods, written = run_capture(monkeypatch, "memoryPercentOfLimit", template="network-trace")
    [(_pod, taken, ran)] = pods.calls
    assert taken and ran == ("pprof-heap",)
    running = next(w for w in written if w.get("phase") == "Running")
    assert running["message"].endswith('; pprof-heap added: template "network-trace" takes no heap profile, which is '
                                       "what a memory trigger's capture is for")


def test_a_failed_pod_is_not_counted_captured_and_stored_even_with_a_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    failed = PodResult(name="api-1", phase="Failed", key="k/api-1.tar.gz",
                       message="nothing was collected: ps: a memory trigger's capture runs no commands")
    _pods, written = run_capture(monkeypatch, None, pods=Pods(failed))
    assert written[-1]["phase"] == "Failed"
    assert written[-1]["message"].startswith("0 of 1 pod(s) captured and stored; api-1: nothing was collected")


def test_a_sweep_posts_events_for_its_pods_that_did_not_complete_only(monkeypatch: pytest.MonkeyPatch) -> None:
    posted: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "event", lambda body, **kw: posted.append(kw))
    body: Any = {"metadata": {"name": "sweep"}}
    many = captures.POD_EVENTS_MAX + 1
    captures.pod_done(body, {}, PodResult(name="api-1", phase="Completed", key="k", uri="s3://b/k"), pods=many)
    captures.pod_done(body, {}, PodResult(name="api-2", phase="Failed", message="pod api-2 is gone"), pods=many)
    captures.pod_done(body, {}, PodResult(name="api-3", phase="PartiallyFailed", key="k3", uri="s3://b/k3"),
                      pods=many)
    assert [(p["reason"], p["message"].split(":")[0]) for p in posted] == [
        ("PodCaptureFailed", "pod api-2"), ("PodCaptured", "pod api-3")]
    captures.pod_done(body, {}, PodResult(name="api-1", phase="Completed", key="k", uri="s3://b/k"),
                      pods=captures.POD_EVENTS_MAX)
    assert posted[-1]["reason"] == "PodCaptured"
