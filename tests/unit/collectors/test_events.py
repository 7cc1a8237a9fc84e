"""``events``: the pod's events, oldest first, reduced to what a reader needs.

Cases: the EventList of the pod's namespace, selected by the pod's name, is stored under
k8s/events.yaml with type, reason, message, count, timestamps and source; events are sorted by
time (one with only an ``eventTime``, written through events.k8s.io, by that); the source falls back
to ``reportingComponent`` for events written through events.k8s.io; an empty list is an empty
``events``; an API error is a failure storing nothing.
"""

from __future__ import annotations

import copy

import yaml

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.events import EventsCollector
from debugcap.kube.shared_reads import SharedReads

EVENTS = "/api/v1/namespaces/prod/events"


def _events(bundle) -> list[dict]:
    return yaml.safe_load(bundle.files[layout.K8S_EVENTS])["events"]


def test_pods_events_are_stored_under_the_k8s_path(bundle, api) -> None:
    api.serve_json(EVENTS, "kube/events.json")
    result = EventsCollector().collect(bundle.context(kube=api))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.K8S_EVENTS,))
    selector = "involvedObject.kind=Pod,involvedObject.name=api-7d9f8c6b5-x2x4q"
    assert api.calls == [("get_json", EVENTS, (("fieldSelector", selector), ("limit", "500")))]
    backoff = next(e for e in _events(bundle) if e["reason"] == "BackOff")
    assert backoff == {"type": "Warning", "reason": "BackOff", "message": backoff["message"], "count": 1,
                       "firstTimestamp": "2026-12-04T14:09:51Z", "lastTimestamp": "2026-12-04T14:09:51Z",
                       "source": "kubelet"}
    assert backoff["message"].startswith("Back-off restarting failed container app")


def test_events_are_sorted_oldest_first(bundle, api) -> None:
    api.serve_json(EVENTS, "kube/events.json")
    EventsCollector().collect(bundle.context(kube=api))
    assert [e["reason"] for e in _events(bundle)] == ["Scheduled", "BackOff", "Started"]


def test_event_with_only_an_event_time_is_sorted_by_it(bundle, api) -> None:
    api.serve_json(EVENTS, "kube/events.json")
    late = copy.deepcopy(next(e for e in api.objects[EVENTS]["items"] if e["reason"] == "Scheduled"))
    late.update(reason="Preempted", eventTime="2026-12-04T14:20:00.000000Z")
    api.objects[EVENTS]["items"].append(late)
    EventsCollector().collect(bundle.context(kube=api))
    assert _events(bundle)[-1]["reason"] == "Preempted"


def test_source_falls_back_to_the_reporting_component(bundle, api) -> None:
    api.serve_json(EVENTS, "kube/events.json")
    EventsCollector().collect(bundle.context(kube=api))
    scheduled = next(e for e in _events(bundle) if e["reason"] == "Scheduled")
    assert scheduled["source"] == "default-scheduler"


def test_no_events_is_an_empty_list(bundle, api) -> None:
    api.objects[EVENTS] = {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": []}
    result = EventsCollector().collect(bundle.context(kube=api))
    assert result.status is base.Status.OK
    assert _events(bundle) == []


def test_api_error_is_a_failure_storing_nothing(bundle, api) -> None:
    api.fail(EVENTS, errors.ForbiddenError('cannot list events in namespace "prod": forbidden', status=403,
                                           reason="Forbidden"))
    result = EventsCollector().collect(bundle.context(kube=api))
    assert result.status is base.Status.FAILED and "forbidden" in result.message
    assert bundle.files == {}


# ---- a sweep's pods share one LIST of the namespace's Events (issue 17) ----

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _sweep_events(api) -> None:
    """The recorded pod's Events, another pod's, and an Event about a ReplicaSet named like the pod."""
    api.serve_json(EVENTS, "kube/events.json")
    items = api.objects[EVENTS]["items"]
    other = copy.deepcopy(items[0])
    other["involvedObject"]["name"] = "api-other"
    other["reason"] = "OtherPods"
    not_a_pod = copy.deepcopy(items[0])
    not_a_pod["involvedObject"]["kind"] = "ReplicaSet"
    not_a_pod["reason"] = "ScalingReplicaSet"
    items += [other, not_a_pod]


def test_pods_of_a_sweep_share_one_list_and_each_keeps_its_own_events(bundle, api, tmp_path) -> None:
    _sweep_events(api)
    shared = SharedReads(clock=Clock())
    EventsCollector().collect(bundle.context(kube=api, shared=shared))
    other_pod = base.Target(namespace="prod", pod="api-other", container="app")
    other_bundle = type(bundle)(tmp_path)
    result = EventsCollector().collect(other_bundle.context(kube=api, shared=shared, target=other_pod))
    assert result.status is base.Status.OK
    # One LIST of the namespace's Pod Events for both.
    assert api.calls == [("get_json", EVENTS, (("fieldSelector", "involvedObject.kind=Pod"), ("limit", "500")))]
    assert [e["reason"] for e in _events(bundle)] == ["Scheduled", "BackOff", "Started"]
    assert [e["reason"] for e in yaml.safe_load(other_bundle.files[layout.K8S_EVENTS])["events"]] == ["OtherPods"]


def test_shared_list_older_than_its_age_is_listed_again(bundle, api, tmp_path) -> None:
    _sweep_events(api)
    clock = Clock()
    shared = SharedReads(clock=clock)
    EventsCollector().collect(bundle.context(kube=api, shared=shared))
    clock.now += shared.max_age
    EventsCollector().collect(type(bundle)(tmp_path).context(kube=api, shared=shared))
    assert len(api.calls) == 2


def test_shared_list_reads_every_page(bundle, api) -> None:
    _sweep_events(api)
    items = api.objects[EVENTS]["items"]
    pages = {"": {"metadata": {"continue": "p2"}, "items": items[:1]}, "p2": {"metadata": {}, "items": items[1:]}}

    class Paged:
        def get_json(self, path, query=(), *, timeout=None):
            api.calls.append(("get_json", path, tuple(query)))
            return pages[dict(query).get("continue", "")]

    EventsCollector().collect(bundle.context(kube=Paged(), shared=SharedReads(clock=Clock())))
    pods = ("fieldSelector", "involvedObject.kind=Pod")
    assert [q for _, _, q in api.calls] == [(pods, ("limit", "500")), (pods, ("limit", "500"), ("continue", "p2"))]
    assert [e["reason"] for e in _events(bundle)] == ["Scheduled", "BackOff", "Started"]


def test_failed_shared_list_is_a_failure_and_not_kept(bundle, api, tmp_path) -> None:
    api.fail(EVENTS, errors.KubeError("the server is currently unable to handle the request", status=503))
    shared = SharedReads(clock=Clock())
    result = EventsCollector().collect(bundle.context(kube=api, shared=shared))
    assert result.status is base.Status.FAILED and "unable to handle" in result.message
    _sweep_events(api)
    assert EventsCollector().collect(type(bundle)(tmp_path).context(kube=api, shared=shared)).status is base.Status.OK


def test_events_of_a_predecessor_of_the_same_name_are_left_out_by_uid(bundle, api, tmp_path) -> None:
    """A pod recreated under the same name (a StatefulSet's) must not get the old pod's Events."""
    api.serve_json(EVENTS, "kube/events.json")
    items = api.objects[EVENTS]["items"]
    for e in items:
        e["involvedObject"]["uid"] = "uid-new"
    old = copy.deepcopy(items[0])
    old["involvedObject"]["uid"] = "uid-old"
    old["reason"] = "Killing"
    no_uid = copy.deepcopy(items[0])
    no_uid["involvedObject"]["uid"] = ""  # some reporters leave it empty: the pod's by name
    no_uid["reason"] = "NoUid"
    items += [old, no_uid]
    target = base.Target(namespace="prod", pod="api-7d9f8c6b5-x2x4q", container="app", pod_uid="uid-new")
    EventsCollector().collect(bundle.context(kube=api, shared=SharedReads(clock=Clock()), target=target))
    assert "Killing" not in [e["reason"] for e in _events(bundle)] and "NoUid" in [e["reason"] for e in _events(bundle)]
    alone = type(bundle)(tmp_path)
    EventsCollector().collect(alone.context(kube=api, target=target))
    assert api.calls[-1][2][0] == ("fieldSelector", "involvedObject.kind=Pod,involvedObject.name=api-7d9f8c6b5-x2x4q")
    reasons = [e["reason"] for e in yaml.safe_load(alone.files[layout.K8S_EVENTS])["events"]]
    assert "Killing" not in reasons and "NoUid" in reasons


def test_a_failed_shared_list_sends_the_pod_to_its_own_field_selected_list(bundle, api) -> None:
    """An expired paging token (410) or any failure of the namespace LIST: the pod's own Events."""
    api.serve_json(EVENTS, "kube/events.json")

    class Expiring:
        def get_json(self, path, query=(), *, timeout=None):
            api.calls.append(("get_json", path, tuple(query)))
            if dict(query).get("fieldSelector") == "involvedObject.kind=Pod":  # the shared LIST
                raise errors.KubeError("the provided continue parameter is too old", status=410)
            return api.objects[EVENTS]

    result = EventsCollector().collect(bundle.context(kube=Expiring(), shared=SharedReads(clock=Clock())))
    assert result.status is base.Status.OK
    assert [dict(q).get("fieldSelector") for _, _, q in api.calls] == [
        "involvedObject.kind=Pod", "involvedObject.kind=Pod,involvedObject.name=api-7d9f8c6b5-x2x4q"]
    assert [e["reason"] for e in _events(bundle)] == ["Scheduled", "BackOff", "Started"]
