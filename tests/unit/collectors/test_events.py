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

EVENTS = "/api/v1/namespaces/prod/events"


def _events(bundle) -> list[dict]:
    return yaml.safe_load(bundle.files[layout.K8S_EVENTS])["events"]


def test_pods_events_are_stored_under_the_k8s_path(bundle, api) -> None:
    api.serve_json(EVENTS, "kube/events.json")
    result = EventsCollector().collect(bundle.context(kube=api))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.K8S_EVENTS,))
    assert api.calls == [("get_json", EVENTS, (("fieldSelector", "involvedObject.name=api-7d9f8c6b5-x2x4q"),))]
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
