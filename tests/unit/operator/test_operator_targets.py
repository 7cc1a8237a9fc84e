"""Which pods a DebugCapture targets, from raw JSON answers of a fake Kube.

Cases: a workload's selector is read from its raw JSON (matchLabels and matchExpressions); a
missing pod, or workload, names the spec field and the command to list them; a selector the API
server rejects is a ConfigError naming the field; pods not Running and over maxPods are skipped
and noted.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import operator_fakes
import pytest

from debugcap import errors
from debugcap.operator import targets
from debugcap.operator.requests import parse_spec

PODS = "/api/v1/namespaces/shop/pods"


def _pod(name: str, phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "app"}]}, "status": {"phase": phase}}


def test_a_workloads_pods_are_found_through_its_selector() -> None:
    deployment = {"spec": {"selector": {"matchLabels": {"app": "api"},
                                        "matchExpressions": [{"key": "tier", "operator": "In",
                                                              "values": ["web"]}]}}}
    kube: Any = operator_fakes.FakeKube({"/apis/apps/v1/namespaces/shop/deployments/api": deployment,
                                         PODS: {"items": [_pod("api-2"), _pod("api-1")]}})
    request = parse_spec({"target": {"workload": {"kind": "Deployment", "name": "api"}}})
    selection = targets.find_pods(kube, "shop", request)
    assert selection.pods == ("api-1", "api-2")
    assert kube.calls[-1] == ("GET", PODS, [("labelSelector", "app=api,tier in (web)")])
    assert selection.fresh("api-1") == _pod("api-1")


@pytest.mark.parametrize(("spec", "path", "message"), [
    ({"pod": "api-9"}, f"{PODS}/api-9", 'spec.target.pod: no pod "api-9" in namespace "shop"'),
    ({"workload": {"kind": "StatefulSet", "name": "db"}}, "/apis/apps/v1/namespaces/shop/statefulsets/db",
     'spec.target.workload: no StatefulSet "db" in namespace "shop"; list them with: kubectl get statefulsets'),
], ids=["pod", "workload"])
def test_a_missing_target_names_the_field_and_how_to_list(spec: dict[str, Any], path: str, message: str) -> None:
    kube: Any = operator_fakes.FakeKube({path: operator_fakes.not_found()})
    with pytest.raises(errors.TargetError, match=message):
        targets.find_pods(kube, "shop", parse_spec({"target": spec}))


def test_a_selector_the_api_server_rejects_names_the_field() -> None:
    invalid = errors.InvalidError("cannot list pods", status=400, api_message="unable to parse requirement")
    kube: Any = operator_fakes.FakeKube({PODS: invalid})
    with pytest.raises(errors.ConfigError, match="spec.target.selector: .* unable to parse requirement"):
        targets.find_pods(kube, "shop", parse_spec({"target": {"selector": {"matchLabels": {"app": "x"}}}}))


def test_pods_not_running_and_over_max_pods_are_skipped_and_noted() -> None:
    kube: Any = operator_fakes.FakeKube({PODS: {"items": [_pod("a"), _pod("b", "Pending"), _pod("c"), _pod("d")]}})
    selection = targets.find_pods(kube, "shop", parse_spec(
        {"target": {"selector": {"matchLabels": {"app": "x"}}, "maxPods": 2}}))
    assert selection.pods == ("a", "c")
    assert selection.note == ("1 matching pod(s) not Running were skipped; "
                              "1 running pod(s) over spec.target.maxPods=2 were skipped")


def test_a_stale_selection_lists_its_pods_again_once_for_all_of_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # A sweep's pods queued behind the concurrency limit start after the first read went stale:
    # one LIST reads them all again, instead of one GET each; a pod the list lacks (deleted
    # meanwhile) or a list that fails is None, so the caller reads that pod on its own.
    now = [100.0]
    monkeypatch.setattr(targets.time, "monotonic", lambda: now[0])
    listed = [{"items": [_pod("a"), _pod("b"), _pod("c")]}]
    kube: Any = operator_fakes.FakeKube({PODS: lambda _query: listed[-1]})
    selection = targets.find_pods(kube, "shop", parse_spec({"target": {"selector": {"matchLabels": {"app": "x"}}}}))
    assert selection.fresh("a") == _pod("a") and len(kube.calls) == 1  # the first read stands
    now[0] += targets.POD_READ_FRESH_SECONDS
    listed.append({"items": [{**_pod("a"), "status": {"phase": "Running", "podIP": "10.0.0.9"}}, _pod("c"),
                             _pod("z")]})
    assert selection.fresh("a") == {**_pod("a"), "status": {"phase": "Running", "podIP": "10.0.0.9"}}
    assert selection.fresh("b") is None  # gone from the new list: read on its own
    assert selection.fresh("c") == _pod("c") and selection.fresh("z") is None  # not one of the selection's
    assert kube.calls == [("GET", PODS, [("labelSelector", "app=x")])] * 2  # one LIST for all of them
    now[0] += targets.POD_READ_FRESH_SECONDS
    listed.append(errors.KubeError("connection refused"))  # type: ignore[arg-type]
    kube.answers[PODS] = listed[-1]
    assert selection.fresh("a") is None and len(kube.calls) == 3


def test_a_single_pods_stale_read_is_not_listed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(targets.time, "monotonic", lambda: now[0])
    kube: Any = operator_fakes.FakeKube({f"{PODS}/a": _pod("a")})
    selection = targets.find_pods(kube, "shop", parse_spec({"target": {"pod": "a"}}))
    now[0] += targets.POD_READ_FRESH_SECONDS
    assert selection.fresh("a") is None and len(kube.calls) == 1


def test_a_failed_relist_is_remembered_for_its_window_and_the_relist_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A LIST that failed counts as a read with no pods: every pod of the window reads itself, and
    # none tries the LIST again (each try could wait out the request timeout, one after another).
    now = [100.0]
    monkeypatch.setattr(targets.time, "monotonic", lambda: now[0])
    kube: Any = operator_fakes.FakeKube({PODS: {"items": [_pod("a"), _pod("b")]}})
    selection = targets.find_pods(kube, "shop", parse_spec({"target": {"selector": {"matchLabels": {"app": "x"}}}}))
    now[0] += targets.POD_READ_FRESH_SECONDS
    kube.answers[PODS] = errors.KubeError("timed out")
    assert selection.fresh("a") is None and selection.fresh("b") is None
    assert len(kube.calls) == 2 and kube.timeouts == [targets.RELIST_TIMEOUT_SECONDS]
    now[0] += targets.POD_READ_FRESH_SECONDS  # the window is over: listed again
    kube.answers[PODS] = {"items": [_pod("a"), _pod("b")]}
    assert selection.fresh("b") == _pod("b") and len(kube.calls) == 3


def test_threads_waiting_for_a_relist_share_its_one_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(targets.time, "monotonic", lambda: now[0])
    entered, release = threading.Event(), threading.Event()
    lists: list[int] = []

    def slow_list(_query: Any) -> Any:
        lists.append(1)
        entered.set()
        assert release.wait(30)
        return {"items": [_pod("a"), _pod("b")]}

    kube: Any = operator_fakes.FakeKube({PODS: {"items": [_pod("a"), _pod("b")]}})
    selection = targets.find_pods(kube, "shop", parse_spec({"target": {"selector": {"matchLabels": {"app": "x"}}}}))
    kube.answers[PODS] = slow_list
    now[0] += targets.POD_READ_FRESH_SECONDS
    seen: dict[str, Any] = {}
    first = threading.Thread(target=lambda: seen.update(a=selection.fresh("a")))
    first.start()
    assert entered.wait(30)
    # The second reader finds the LIST in flight and waits for its answer instead of listing too.
    second = threading.Thread(target=lambda: seen.update(b=selection.fresh("b")))
    second.start()
    time.sleep(0.2)  # its chance to ask while the LIST is out (its absence cannot fail the test)
    release.set()
    first.join(30)
    second.join(30)
    assert seen == {"a": _pod("a"), "b": _pod("b")} and lists == [1]


def test_a_relist_that_raises_something_unforeseen_does_not_leave_later_reads_waiting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Only DebugcapError was caught once: anything else left the LIST marked in flight for good, and
    # every later read of the selection waited RELIST_TIMEOUT_SECONDS for it, then read on its own.
    now = [100.0]
    monkeypatch.setattr(targets.time, "monotonic", lambda: now[0])
    kube: Any = operator_fakes.FakeKube({PODS: {"items": [_pod("a"), _pod("b")]}})
    selection = targets.find_pods(kube, "shop", parse_spec({"target": {"selector": {"matchLabels": {"app": "x"}}}}))
    now[0] += targets.POD_READ_FRESH_SECONDS
    kube.answers[PODS] = ValueError("a bug in the answer's decoding")
    assert selection.fresh("a") is None  # the pod is read on its own, and meets the error there
    assert selection.fresh("b") is None and len(kube.calls) == 2  # counted as a failed LIST for its window
    now[0] += targets.POD_READ_FRESH_SECONDS
    kube.answers[PODS] = {"items": [_pod("a"), _pod("b")]}
    assert selection.fresh("a") == _pod("a") and len(kube.calls) == 3


def test_fresh_read_says_when_the_pod_was_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The time is the read's, not the asking's: a sweep's pod-yaml step keeps the pod as read only
    while that read is younger than 5 s (kube.shared_reads)."""
    now = [100.0]
    monkeypatch.setattr(targets.time, "monotonic", lambda: now[0])
    listed = [{"items": [_pod("a")]}]
    kube: Any = operator_fakes.FakeKube({PODS: lambda _query: listed[-1]})
    selection = targets.find_pods(kube, "shop", parse_spec({"target": {"selector": {"matchLabels": {"app": "x"}}}}))
    now[0] += 2.0
    assert selection.fresh_read("a") == (_pod("a"), 100.0)
    assert selection.fresh_read("z") == (None, 0.0)
    now[0] += targets.POD_READ_FRESH_SECONDS  # stale: listed again, and that read's time
    assert selection.fresh_read("a") == (_pod("a"), 107.0)
