"""The DebugCapture a firing makes, its name, and the firings read back from captures and status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from debugcap import resources
from debugcap.operator import trigger_firing, triggering
from debugcap.operator.triggering import Crossing

T0 = datetime(2026, 12, 4, 3, 0, 0, tzinfo=UTC)
TRIGGER = {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugTrigger",
           "metadata": {"name": "api-pre-oom", "namespace": "shop", "uid": "t-1"}}


def _spec() -> triggering.TriggerSpec:
    return triggering.parse_trigger({
        "target": {"selector": {"matchLabels": {"app": "api"}}, "container": "app"},
        "when": {"memoryPercentOfLimit": 80}, "template": "go-heap",
        "captureTemplate": {"metadata": {"labels": {"team": "shop"}},
                            "spec": {"parameters": {"timeoutSeconds": 20}, "ttl": "7d"}}})


def test_the_capture_targets_the_pod_says_what_fired_and_is_owned_by_the_trigger() -> None:
    c = Crossing("api-7f9c", "memoryPercentOfLimit", 83.2, 80, "213.0 MiB of the 256.0 MiB limit (83%)", T0)
    body = trigger_firing.capture_body(TRIGGER, _spec(), c, pod_uid="pod-uid", container="app")
    assert body["spec"]["target"] == {"pod": "api-7f9c", "container": "app"}
    assert body["spec"]["template"] == "go-heap" and body["spec"]["ttl"] == "7d"
    assert body["spec"]["parameters"] == {"timeoutSeconds": 20}
    assert body["spec"]["firing"] == {"trigger": "api-pre-oom", "reason": "memoryPercentOfLimit",
                                      "value": c.value, "observed": 83.2, "threshold": 80,
                                      "time": "2026-12-04T03:00:00Z"}
    labels = body["metadata"]["labels"]
    assert labels == {"team": "shop", resources.TRIGGER_LABEL: "api-pre-oom",
                      resources.REASON_LABEL: "memoryPercentOfLimit"}
    (owner,) = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("DebugTrigger", "api-pre-oom",
                                                                                 "t-1", True)


def test_names_are_the_same_for_a_retried_check_and_differ_between_pods_and_checks() -> None:
    c = Crossing("api-1", "goroutines", 6000, 5000, "", T0)
    name = trigger_firing.capture_name("api-pre-oom", "t-1", c, "u1")
    assert name == trigger_firing.capture_name("api-pre-oom", "t-1", c, "u1")
    assert name.startswith("api-pre-oom-goroutines-") and len(name) <= 253
    other_pod = Crossing("api-2", "goroutines", 6000, 5000, "", T0)
    assert name != trigger_firing.capture_name("api-pre-oom", "t-1", other_pod, "u2")
    later = Crossing("api-1", "goroutines", 6000, 5000, "", T0 + timedelta(seconds=10))
    assert name != trigger_firing.capture_name("api-pre-oom", "t-1", later, "u1")
    # A restart's name is its restart count: every check that sees restart 2 names one capture.
    r1 = Crossing("api-1", "restarted", 2, None, "", T0)
    r2 = Crossing("api-1", "restarted", 2, None, "", T0 + timedelta(seconds=30))
    assert trigger_firing.capture_name("t", "t-1", r1, "u1") == trigger_firing.capture_name("t", "t-1", r2, "u1")


def test_a_long_trigger_name_makes_a_valid_label_and_name() -> None:
    long = "a" * 200
    assert len(trigger_firing.label_value(long)) <= 63
    assert trigger_firing.label_value(long) != trigger_firing.label_value("a" * 199 + "b")
    name = trigger_firing.capture_name(long, "t-1", Crossing("p", "alert", 1, None, "", T0), "u")
    assert len(name) <= 80


def test_past_firings_come_from_captures_and_from_status_entries_whose_capture_is_gone() -> None:
    captures = [{"metadata": {"name": "t-mem-1", "creationTimestamp": "2026-12-04T02:59:00Z"},
                 "spec": {"target": {"pod": "api-1"},
                          "firing": {"reason": "memoryPercentOfLimit", "time": "2026-12-04T02:58:58Z",
                                     "observed": 81.5}}},
                {"metadata": {"name": "hand-made", "creationTimestamp": "2026-12-04T02:59:00Z"}, "spec": {}}]
    status = [{"time": "2026-12-04T02:58:58Z", "pod": "api-1", "reason": "memoryPercentOfLimit", "capture": "t-mem-1"},
              {"time": "2026-12-04T02:30:00Z", "pod": "api-2", "reason": "goroutines", "capture": "t-gor-deleted"},
              {"time": "garbage", "pod": "api-3", "reason": "goroutines", "capture": "x"}]
    past = trigger_firing.past_firings(captures, status)
    assert [(p.pod, p.reason, p.observed) for p in past] == [("api-1", "memoryPercentOfLimit", 81.5),
                                                              ("api-2", "goroutines", None)]
    assert past[0].at == datetime(2026, 12, 4, 2, 58, 58, tzinfo=UTC)
