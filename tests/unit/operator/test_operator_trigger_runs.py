"""A DebugTrigger's firings through the API, on a fake Kube that keeps what it is given.

Cases: a create that fails after another succeeded still records the one made (the next check
counts it, the status lists it); a signal held back by its cooldown costs no API call until the
last look at the captures is a minute old; alerts: one list of triggers per namespace, a temporary
API failure is an ``error`` (the receiver answers so Alertmanager retries), a refused capture is
``refused``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from operator_fakes import FakeKube

from debugcap import errors, resources
from debugcap.operator import trigger_runs, triggering, triggers
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.triggering import Crossing

NS, NAME, UID = "shop", "storm", "t-uid"
CAPTURES = f"/apis/debugcap.io/v1alpha1/namespaces/{NS}/debugcaptures"
TRIGGER = f"/apis/debugcap.io/v1alpha1/namespaces/{NS}/debugtriggers/{NAME}"
SPEC = {"target": {"selector": {"matchLabels": {"app": "api"}}}, "when": {"goroutines": 10},
        "cooldown": "20s", "maxCapturesPerHour": 6}
T0 = datetime(2026, 12, 4, 3, 0, 0, tzinfo=UTC)


class Cluster(FakeKube):
    """Captures and the trigger's status, kept; ``fail_creates`` makes the n-th create (1-based) fail."""

    def __init__(self, fail_creates: dict[int, BaseException] | None = None) -> None:
        super().__init__()
        self.captures: list[dict[str, Any]] = []
        self.status: dict[str, Any] = {}
        self.fail_creates = fail_creates or {}
        self.creates = 0

    def get_json(self, path: str, query: Any = ()) -> Any:
        self.calls.append(("GET", path, list(query)))
        if path == TRIGGER:
            return {"metadata": trigger()["metadata"], "status": dict(self.status)}
        if path.endswith("/debugcaptures"):
            return {"items": list(self.captures)}
        if path.endswith("/debugtriggers"):
            return {"items": [trigger(when={"alert": {"name": "HighHeap"}})]}
        raise errors.NotFoundError(f"no {path}", status=404, reason="NotFound", api_message="")

    def post_json(self, path: str, body: Any) -> Any:
        self.calls.append(("POST", path, body))
        if path == CAPTURES:
            self.creates += 1
            failure = self.fail_creates.get(self.creates)
            if failure is not None:
                raise failure
            self.captures.append(body)
        return body

    def merge_patch(self, path: str, body: Any) -> Any:
        self.calls.append(("PATCH", path, body))
        self.status.update(body["status"])
        return body


def trigger(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugTrigger",
            "metadata": {"name": NAME, "namespace": NS, "uid": UID, "generation": 1,
                         "creationTimestamp": "2026-12-04T02:00:00Z"},
            "spec": {**SPEC, **spec}}


@dataclass
class Rt:
    kube: Cluster
    config: DebugcapConfig
    triggers: dict[str, Any]


def runtime_of(kube: Cluster) -> Any:
    return Rt(kube, DebugcapConfig(http_transport="proxy", triggered_captures=4), {})


def crossing(pod: str, at: datetime = T0) -> Crossing:
    return Crossing(pod, "goroutines", 50, 10, "50 goroutines, threshold 10", at)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_failed_create_keeps_the_record_of_the_one_made_before_it() -> None:
    kube = Cluster(fail_creates={2: errors.KubeError("boom", status=503, reason="", api_message="")})
    rt = runtime_of(kube)
    spec = triggering.parse_trigger(SPEC)

    async def go() -> None:
        state = trigger_runs.states(rt).of(UID)
        with pytest.raises(errors.KubeError):
            await trigger_runs.fire(rt, state, trigger(), spec, [crossing("a"), crossing("b")], {})

    run(go())
    assert [c["spec"]["target"]["pod"] for c in kube.captures] == ["a"]
    assert kube.status["firedTotal"] == 1 and [f["pod"] for f in kube.status["firings"]] == ["a"]


def test_a_signal_within_its_cooldown_costs_no_api_call_until_the_look_is_a_minute_old() -> None:
    kube = Cluster()
    rt = runtime_of(kube)
    spec = triggering.parse_trigger({**SPEC, "cooldown": "15m"})

    async def go() -> list[int]:
        state = trigger_runs.states(rt).of(UID)
        counts = []
        for seconds in (0, 10, 50, 70):
            before = len(kube.calls)
            await trigger_runs.fire(rt, state, trigger(), spec, [crossing("a", T0 + timedelta(seconds=seconds))], {})
            counts.append(len([c for c in kube.calls[before:] if c[1] != "/api/v1/namespaces/shop/events"]))
        return counts

    counts = run(go())
    assert len(kube.captures) == 1
    # The first look fires; the next two are known to be in the cooldown; at 70 s the look is renewed.
    assert counts[0] > 0 and counts[1] == counts[2] == 0 and counts[3] > 0
    assert kube.status["firedTotal"] == 1


def test_capture_names_differ_between_triggers_whose_names_begin_alike() -> None:
    c = Crossing("api-1", "restarted", 2, None, "", T0, since=T0)
    one = trigger_firing_name("x" * 45 + "-a", "uid-1", c)
    two = trigger_firing_name("x" * 45 + "-b", "uid-2", c)
    assert one != two


def trigger_firing_name(name: str, uid: str, c: Crossing) -> str:
    from debugcap.operator import trigger_firing

    return trigger_firing.capture_name(name, uid, c, "pod-uid")


def test_a_409_from_a_capture_of_another_owner_is_an_error_naming_it() -> None:
    from debugcap.operator import trigger_firing

    kube = FakeKube({f"POST {CAPTURES}": errors.ConflictError("exists", status=409, reason="AlreadyExists",
                                                               api_message=""),
                     f"GET {CAPTURES}/c-1": {"metadata": {"ownerReferences": [{"uid": "someone-else"}]}}})
    body = {"metadata": {"name": "c-1", "namespace": NS, "ownerReferences": [{"uid": UID}]}}
    with pytest.raises(errors.ConfigError, match='DebugCapture "shop/c-1" already exists and was not made'):
        trigger_firing.create(kube, body)  # type: ignore[arg-type]
    kube.answers[f"GET {CAPTURES}/c-1"] = {"metadata": {"ownerReferences": [{"uid": UID}]}}
    assert trigger_firing.create(kube, body) == "c-1"  # type: ignore[arg-type]  # a retried create: the same


@dataclass(frozen=True)
class Alert:
    alertname: str
    namespace: str
    pod: str
    starts_at: str = "2026-12-04T02:59:00Z"


def test_alerts_list_a_namespaces_triggers_once_and_a_temporary_failure_is_an_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kube = Cluster()
    rt = runtime_of(kube)
    pods = SimpleNamespace(objects={"api-1": {"metadata": {"uid": "p1"}}, "api-2": {"metadata": {"uid": "p2"}}},
                           pods=("api-1", "api-2"), note="")
    finds: list[str] = []

    def find(kube: Any, namespace: str, spec: Any, *, every: bool = False) -> Any:
        finds.append(namespace)
        assert every  # an alert names one pod: maxPods does not hide it
        return pods

    monkeypatch.setattr(triggers.trigger_checks, "find", find)
    got = run(triggers.fire_for_alerts(rt, [Alert("HighHeap", NS, "api-1"), Alert("HighHeap", NS, "api-2"),
                                            Alert("Other", NS, "api-1"), Alert("HighHeap", NS, "nope")]))
    assert [o.outcome for o in got] == ["fired", "fired", "refused", "refused"]
    assert 'spec.when.alert.name "Other"' in got[2].message and "not a running pod" in got[3].message
    assert len([c for c in kube.calls if c[1].endswith("/debugtriggers")]) == 1 and len(finds) == 1
    assert {c["metadata"]["labels"][resources.REASON_LABEL] for c in kube.captures} == {"alert"}

    broken = Cluster()
    broken.get_json = lambda path, query=(): (_ for _ in ()).throw(  # type: ignore[method-assign]
        errors.KubeError("timed out", status=0, reason="", api_message=""))
    (outcome,) = run(triggers.fire_for_alerts(runtime_of(broken), [Alert("HighHeap", NS, "api-1")]))
    assert outcome.outcome == "error" and "timed out" in outcome.message
