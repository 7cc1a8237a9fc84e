"""How a pod's health leaves the operator: gauges, their bound, and Warning Events on the pod.

Cases: a pod's capture sets its health gauges (healthy, most serious severity, readings) labelled
by namespace, pod, workload and kind; a later capture without a reading removes the old one; the
series of at most ``limit`` pods are kept, the least recently updated dropped and counted; deleting
the capture that set a pod's series drops them, unless a later capture replaced them; each listed
high-severity finding becomes one Warning Event on the pod (with its uid), none for lower ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf
import pytest
from prometheus_client import REGISTRY

from debugcap.analysis import model
from debugcap.operator import captures, health, metrics
from debugcap.operator.results import PodResult

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def _value(name: str, namespace: str, pod: str) -> float | None:
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels.get("namespace") == namespace and sample.labels["pod"] == pod:
                return float(sample.value)
    return None


def _labels(name: str, namespace: str, pod: str) -> dict[str, str] | None:
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels.get("namespace") == namespace and sample.labels["pod"] == pod:
                return dict(sample.labels)
    return None


def _record(series: metrics.PodHealthSeries, namespace: str, pod: str, capture: str = "cap-1", *,
            healthy: bool | None = True, readings: dict[str, int | float] | None = None) -> None:
    series.record(namespace, pod, workload="web", kind="Deployment", capture=capture, healthy=healthy, severity=90,
                  readings={"goroutines": 12} if readings is None else readings)


def test_a_pods_capture_sets_its_gauges_with_its_workload() -> None:
    series = metrics.PodHealthSeries(limit=10)
    _record(series, "m-set", "web-1", healthy=False, readings={"goroutines": 1500, "heapInuseBytes": 4096,
                                                               "cpuShare": 0.5, "gcCycles": 3})
    assert _labels("debugcap_pod_healthy", "m-set", "web-1") == {"namespace": "m-set", "pod": "web-1",
                                                                 "workload": "web", "kind": "Deployment"}
    assert _value("debugcap_pod_healthy", "m-set", "web-1") == 0
    assert _value("debugcap_pod_finding_severity", "m-set", "web-1") == 90
    assert _value("debugcap_pod_goroutines", "m-set", "web-1") == 1500
    assert _value("debugcap_pod_heap_inuse_bytes", "m-set", "web-1") == 4096
    assert _value("debugcap_pod_cpu_share", "m-set", "web-1") == 0.5
    assert _value("debugcap_pod_gc_cycles", "m-set", "web-1") == 3
    # The next capture read no goroutines and could not be analysed: no old figure stands in for it.
    _record(series, "m-set", "web-1", "cap-2", healthy=None, readings={})
    assert _value("debugcap_pod_goroutines", "m-set", "web-1") is None
    assert _value("debugcap_pod_healthy", "m-set", "web-1") is None


def test_at_most_limit_pods_have_series_the_least_recently_updated_go_first() -> None:
    series = metrics.PodHealthSeries(limit=2)
    evicted = metrics.POD_SERIES_EVICTED._value.get()
    _record(series, "m-cap", "a")
    _record(series, "m-cap", "b")
    _record(series, "m-cap", "a")  # a is now the fresher
    _record(series, "m-cap", "c")
    assert series.pods() == [("m-cap", "a"), ("m-cap", "c")]
    assert _value("debugcap_pod_goroutines", "m-cap", "b") is None
    assert _value("debugcap_pod_goroutines", "m-cap", "c") == 12
    assert metrics.POD_SERIES_EVICTED._value.get() == evicted + 1


def test_deleting_the_capture_that_set_a_pods_series_drops_them_unless_a_later_one_replaced_them() -> None:
    series = metrics.PodHealthSeries(limit=10)
    _record(series, "m-del", "a", "cap-1")
    _record(series, "m-del", "b", "cap-1")
    _record(series, "m-del", "b", "cap-2")
    series.forget_capture("m-del", "cap-1")
    assert series.pods() == [("m-del", "b")]
    assert _value("debugcap_pod_goroutines", "m-del", "a") is None
    assert _value("debugcap_pod_goroutines", "m-del", "b") == 12


def test_each_high_finding_is_a_warning_event_on_the_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    posted: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(kopf, "event", lambda obj, **kw: posted.append((obj, kw)))  # kopf posts only in its loop
    found = [model.Finding(100, "goroutine-leak", "main.leakWorker", "1500 goroutines parked"),
             model.Finding(85, "goroutine-growth", "goroutines", "grew"),
             model.Finding(60, "collector-failed", "logs", "forbidden")]
    assessed = health.judge(found, {"goroutines": 1500}, generation=1, now=NOW)
    body = kopf.Body({"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",
                      "metadata": {"name": "sweep-1", "namespace": "m-ev"}})
    refs = {"leaky": health.PodRef(uid="uid-7", workload="leaky", kind="Pod")}
    captures.pod_done(body, refs, PodResult(name="leaky", phase="Completed", key="k", uri="s3://b/k",
                                            health=assessed))
    on_pod = [(obj, kw) for obj, kw in posted if obj.get("kind") == "Pod"]
    assert len(posted) == 3  # and the capture's own PodCaptured
    assert [kw["reason"] for _, kw in on_pod] == ["HighSeverityFinding", "HighSeverityFinding"]
    assert all(kw["type"] == "Warning" for _, kw in on_pod)
    assert on_pod[0][0]["metadata"] == {"name": "leaky", "namespace": "m-ev", "uid": "uid-7"}
    assert on_pod[0][1]["message"] == ("debugcap capture sweep-1: goroutine-leak at main.leakWorker: "
                                       "1500 goroutines parked")
    assert _value("debugcap_pod_healthy", "m-ev", "leaky") == 0
    assert _value("debugcap_pod_finding_severity", "m-ev", "leaky") == 100
    metrics.POD_HEALTH.forget_capture("m-ev", "sweep-1")
