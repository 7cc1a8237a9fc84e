"""How a pod's health leaves the operator: gauges, their bound, and Warning Events on the pod.

Cases: a pod's capture sets its health gauges (healthy, most serious severity, readings, the GC
pause among them) labelled
by namespace, pod, workload and kind; a later capture without a reading removes the old one, and
one that could not be analysed removes healthy and severity (not a 0 that reads as "no findings");
removing series never set is no error, even where prometheus-client raises KeyError; the series of
at most ``limit`` pods are kept, the least recently updated dropped and counted; deleting the
capture that set a pod's series drops them, unless a later capture replaced them; an unhealthy pod
gets one PodUnhealthy Warning Event per capture (its most serious finding that makes it unhealthy,
the count of the others), a healthy pod none; every pod, healthy or not, gets one
HighSeverityFinding Warning Event per kind of high finding (its most serious, and how many more of
the kind), at most MAX_FINDING_EVENTS per capture, redacted and on one line; a pod adopted after
a restart is reported like any other.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kopf
import operator_fakes
import pytest
from prometheus_client import REGISTRY

from debugcap.analysis import model
from debugcap.operator import captures, health, metrics, recovery
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.results import PodResult
from debugcap.operator.status_writing import StatusWriter

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
                                                               "cpuShare": 0.5, "gcCycles": 3,
                                                               "gcPauseMaxSeconds": 0.000123622})
    assert _labels("debugcap_pod_healthy", "m-set", "web-1") == {"namespace": "m-set", "pod": "web-1",
                                                                 "workload": "web", "kind": "Deployment"}
    assert _value("debugcap_pod_healthy", "m-set", "web-1") == 0
    assert _value("debugcap_pod_finding_severity", "m-set", "web-1") == 90
    assert _value("debugcap_pod_goroutines", "m-set", "web-1") == 1500
    assert _value("debugcap_pod_heap_inuse_bytes", "m-set", "web-1") == 4096
    assert _value("debugcap_pod_cpu_share", "m-set", "web-1") == 0.5
    assert _value("debugcap_pod_gc_cycles", "m-set", "web-1") == 3
    assert _value("debugcap_pod_gc_pause_seconds", "m-set", "web-1") == 0.000123622
    assert _labels("debugcap_pod_gc_pause_seconds", "m-set", "web-1") == _labels("debugcap_pod_healthy", "m-set",
                                                                                 "web-1")
    # The next capture read no goroutines and could not be analysed: no old figure stands in for it.
    _record(series, "m-set", "web-1", "cap-2", healthy=None, readings={})
    assert _value("debugcap_pod_goroutines", "m-set", "web-1") is None
    assert _value("debugcap_pod_gc_pause_seconds", "m-set", "web-1") is None
    assert _value("debugcap_pod_healthy", "m-set", "web-1") is None
    assert _value("debugcap_pod_finding_severity", "m-set", "web-1") is None  # not 0, "no findings"
    series.forget_capture("m-set", "cap-2")


def test_removing_series_never_set_is_no_error_where_the_client_raises_key_error() -> None:
    class OldGauge:  # prometheus-client before 0.22: Gauge.remove raises KeyError for unknown labels
        def remove(self, *labels: str) -> None:
            raise KeyError(labels)

    metrics._drop(OldGauge(), ("ns", "pod", "web", "Pod"))  # type: ignore[arg-type]


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


def _body(namespace: str) -> kopf.Body:
    return kopf.Body({"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",
                      "metadata": {"name": "sweep-1", "namespace": namespace}})


def _on_pods(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    posted: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(kopf, "event", lambda obj, **kw: posted.append((obj, kw)))  # kopf posts only in its loop
    return posted


def test_an_unhealthy_pod_gets_one_warning_event_per_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    posted = _on_pods(monkeypatch)
    found = [model.Finding(100, "goroutine-leak", "main.leakWorker", "1500 goroutines parked"),
             model.Finding(85, "goroutine-growth", "goroutines", "grew"),
             model.Finding(82, "cpu-hot", "main.serve", "busy"),
             model.Finding(60, "collector-failed", "logs", "forbidden")]
    assessed = health.judge(found, {"goroutines": 1500}, generation=1, now=NOW)
    refs = {"leaky": health.PodRef(uid="uid-7", workload="leaky", kind="Pod")}
    captures.pod_done(_body("m-ev"), refs, PodResult(name="leaky", phase="Completed", key="k", uri="s3://b/k",
                                                     health=assessed))
    on_pod = [(obj, kw) for obj, kw in posted if obj.get("kind") == "Pod"]
    assert len(posted) == 1 + len(on_pod)  # and the capture's own PodCaptured
    assert [kw["reason"] for _, kw in on_pod] == ["PodUnhealthy"] + ["HighSeverityFinding"] * 3
    assert all(kw["type"] == "Warning" for _, kw in on_pod)
    assert all(obj["metadata"] == {"name": "leaky", "namespace": "m-ev", "uid": "uid-7"} for obj, _ in on_pod)
    assert on_pod[0][1]["message"] == ("debugcap capture sweep-1: goroutine-leak at main.leakWorker: 1500 goroutines "
                                       "parked (and 3 other finding(s), listed in the capture's status)")
    # Each high finding too, its kind and its line, most serious first; the medium one has none.
    assert [kw["message"] for _, kw in on_pod[1:]] == [
        "debugcap capture sweep-1: goroutine-leak: 1500 goroutines parked",
        "debugcap capture sweep-1: goroutine-growth: grew",
        "debugcap capture sweep-1: cpu-hot: busy"]
    assert _value("debugcap_pod_healthy", "m-ev", "leaky") == 0
    assert _value("debugcap_pod_finding_severity", "m-ev", "leaky") == 100
    metrics.POD_HEALTH.forget_capture("m-ev", "sweep-1")


def test_a_healthy_pod_gets_no_pod_unhealthy_event_but_one_per_kind_of_high_finding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    posted = _on_pods(monkeypatch)
    busy = health.judge([model.Finding(82, "cpu-hot", "main.serve", "main.serve spends 80% of the CPU"),
                         model.Finding(81, "heap-top", "main.cache", "big"),
                         model.Finding(80, "cpu-hot", "main.other", "main.other spends 10%"),
                         model.Finding(60, "block-delay", "main.wait", "medium: no Event")], {}, generation=1, now=NOW)
    captures.pod_done(_body("m-ok"), {"busy": health.PodRef(uid="uid-b", workload="web", kind="Deployment")},
                      PodResult(name="busy", phase="Completed", key="k", health=busy))
    assert [kw["reason"] for _, kw in posted] == ["PodCaptured", "HighSeverityFinding", "HighSeverityFinding"]
    assert [kw["message"] for _, kw in posted[1:]] == [
        "debugcap capture sweep-1: cpu-hot: main.serve spends 80% of the CPU (and 1 more cpu-hot finding(s) in "
        "the bundle)",
        "debugcap capture sweep-1: heap-top: big"]
    assert all(obj["metadata"]["uid"] == "uid-b" and kw["type"] == "Warning" for obj, kw in posted[1:])
    assert _value("debugcap_pod_healthy", "m-ok", "busy") == 1
    metrics.POD_HEALTH.forget_capture("m-ok", "sweep-1")


def test_high_finding_events_are_bounded_per_capture_and_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    posted = _on_pods(monkeypatch)
    many = [model.Finding(99 - i, f"kind-{i}", "main.f", f"line {i}") for i in range(health.MAX_FINDING_EVENTS + 3)]
    secret = model.Finding(100, "collector-failed", "logs",
                           "GET https://admin:hunter2secret@api.internal/x failed\nwith a second line")
    assessed = health.judge([*many, secret], {}, generation=1, now=NOW)
    captures.pod_done(_body("m-many"), {}, PodResult(name="p", phase="Completed", key="k", health=assessed))
    on_pod = [kw for obj, kw in posted if obj.get("kind") == "Pod"]
    assert len(on_pod) == health.MAX_FINDING_EVENTS
    assert on_pod[0]["message"].startswith("debugcap capture sweep-1: collector-failed: GET https://")
    assert "hunter2secret" not in on_pod[0]["message"] and "\n" not in on_pod[0]["message"]
    assert [kw["message"].split(": ")[1] for kw in on_pod[1:]] == [f"kind-{i}" for i in range(4)]
    # The status is as before: no new field in it.
    assert "high" not in assessed.as_status()
    metrics.POD_HEALTH.forget_capture("m-many", "sweep-1")


def test_a_pod_adopted_after_a_restart_is_reported_like_any_other(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """It was analysed by the new operator, but its gauges and Event were never set: the operator
    that captured it died first."""
    posted = _on_pods(monkeypatch)
    sick = health.judge([model.Finding(100, "goroutine-leak", "main.leakWorker", "parked")], {"goroutines": 9},
                        generation=None, now=NOW)
    adopted = PodResult(name="leaky", phase="Completed", key="k/leaky", health=sick)
    ended = PodResult(name="done", phase="Completed", key="k/done", health=sick)  # reported by the dead one
    pod = {"metadata": {"name": "leaky", "uid": "uid-9", "labels": {"pod-template-hash": "abc"},
                        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "controller": True}]}}
    kube: Any = operator_fakes.FakeKube({"/api/v1/namespaces/m-rec/pods/leaky": pod})
    entries = [{"name": "leaky", "phase": "Running", "uploadKey": "k/leaky"}, ended.as_status()]
    body = kopf.Body({"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",
                      "metadata": {"name": "sweep-1", "namespace": "m-rec", "uid": "u"}, "spec": {},
                      "status": {"phase": "Running", "pods": entries}})
    written: list[dict[str, Any]] = []
    store = SimpleNamespace(prefix="debugcap", cluster="testbed")  # only judges keys: adopt_upload is replaced
    rt: Any = SimpleNamespace(kube=kube, store=store, config=DebugcapConfig(work_dir=tmp_path))
    monkeypatch.setattr(recovery, "adopt_upload", lambda _store, entry, **_: adopted)

    async def send(status: dict[str, Any]) -> bool:
        written.append(status)
        return False

    monkeypatch.setattr(captures, "status_writer", lambda _rt, _body: StatusWriter(send, interval=0.0))
    asyncio.run(captures._close_orphan(rt, body, logging.getLogger("test")))
    assert [(obj["metadata"]["name"], kw["reason"]) for obj, kw in posted if obj.get("kind") == "Pod"] == [
        ("leaky", "PodUnhealthy"), ("leaky", "HighSeverityFinding")]
    assert [obj["metadata"]["uid"] for obj, _ in posted if obj.get("kind") == "Pod"] == ["uid-9", "uid-9"]
    assert _labels("debugcap_pod_healthy", "m-rec", "leaky") == {"namespace": "m-rec", "pod": "leaky",
                                                                 "workload": "web", "kind": "Deployment"}
    assert _value("debugcap_pod_healthy", "m-rec", "done") is None
    assert written[-1]["summary"]["unhealthy"] == 2
    metrics.POD_HEALTH.forget_capture("m-rec", "sweep-1")
