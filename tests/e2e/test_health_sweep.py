"""Sweeps report health, end to end: real apiserver, kubelet, containerd, goapp pods and MinIO.

A DebugSchedule sweeps three goapp pods (a Deployment's two, and one pod leaking goroutines) with a
light template, through the in-process operator serving /metrics. One test, because the pods and
the runs are the expensive part and every check reads the same objects:
* the sweep's capture: the leaking pod has the goroutine-leak finding and Healthy=False, the
  Deployment's pods Healthy=True; the capture is Ready and Healthy=False, `kubectl wait` returns on
  both, `kubectl get dcap` shows the Healthy column, the summary counts the pods;
* the leaking pod has one Warning PodUnhealthy Event for the run, the others none, and a
  HighSeverityFinding Event for its goroutine-leak finding; /metrics has each
  pod's health gauges
  labelled with its workload (the Deployment, or the pod itself);
* a second run: the schedule's lastRun summarises it, and the leaking pod's goroutines went up;
* deleting the schedules and captures deletes every bundle and every pod's health series;
* Argo CD's health.lua and Flux's healthCheckExprs on the live objects: a capture in progress, a
  healthy one, the unhealthy sweep, a failed one; the schedule while its first run captures and
  after its runs, and a healthy schedule (of the Deployment alone), then suspended.

With DEBUGCAP_HEALTH_TESTDATA=DIR the live objects are also written to DIR as Argo CD test inputs
(that is where deploy/argocd/.../testdata came from).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from debugcap.kube.client import Kube
from debugcap.settings import S3Settings
from debugcap.storage.s3 import S3Backend
from testbed import builds

from .conftest import REPO, GoappPod, Testbed, kubectl

GROUP, VERSION = "debugcap.io", "v1alpha1"
TERMINAL = {"Completed", "PartiallyFailed", "Failed"}
LABELS = {"sweep": "health"}

pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")

_spec = importlib.util.spec_from_file_location("healthcheck_runners",
                                               REPO / "tests" / "fixtures" / "healthchecks" / "runners.py")
assert _spec is not None and _spec.loader is not None
runners = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runners)


@pytest.fixture
def operator_env(operator_env: None, monkeypatch: pytest.MonkeyPatch) -> int:
    """The conftest's environment, with /metrics served on a free port (which this returns)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    monkeypatch.setenv("DEBUGCAP_OPERATOR_METRICS_PORT", str(port))
    return port


def wait_for(ok: Callable[[], Any], seconds: float, what: str, every: float = 0.3) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = ok()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


class Objects:
    """This test's DebugCaptures and DebugSchedules, read as raw JSON."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.custom, self.namespace = kube.custom(), namespace

    def capture(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                                       "debugcaptures", name)
        return got

    def schedule(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                                       "debugschedules", name)
        return got

    def create_schedule(self, name: str, schedule: str, spec: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "debugschedules", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugSchedule", "metadata": {"name": name},
            "spec": {"schedule": schedule, "successfulHistoryLimit": 3, "captureTemplate": {"spec": spec}}})
        # As if its last run was long ago: a run earlier today is due at once (runs before a
        # schedule's creation never are), and the next a day away.
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, "debugschedules", name,
            {"status": {"lastScheduleTime": "2026-01-01T00:00:00Z"}}, _content_type="application/merge-patch+json")

    def create_capture(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "debugcaptures", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture", "metadata": {"name": name}, "spec": spec})

    def done(self, name: str, seconds: float = 120) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            try:
                obj = self.capture(name)
            except k8s.ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            return obj if (obj.get("status") or {}).get("phase") in TERMINAL else None

        result: dict[str, Any] = wait_for(ended, seconds, f"DebugCapture {name} to end")
        return result


def light_template(kube: Kube) -> str:
    """A cluster DebugCaptureTemplate with only what the health rules read: a 1 s CPU profile,
    the goroutine dump, the heap profile and expvar's memstats."""
    name = f"e2e-health-{uuid.uuid4().hex[:8]}"
    kube.custom().create_cluster_custom_object(GROUP, VERSION, "debugcapturetemplates", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCaptureTemplate", "metadata": {"name": name},
        "spec": {"description": "health sweep", "parameters": {"cpu_seconds": {"type": "int", "default": 1, "min": 1}},
                 "steps": [{"collector": "pprof-cpu", "params": {"seconds": "${cpu_seconds}"}, "window": "profile"},
                           {"collector": "pprof-goroutine", "params": {"formats": ["debug2"]}, "window": "profile"},
                           {"collector": "pprof-heap", "params": {"gc": False}},
                           {"collector": "expvar"}]}})
    return name


def web_deployment(kube: Kube, testbed: Testbed, namespace: str) -> list[str]:
    labels = {"app": "web", **LABELS}
    container = k8s.V1Container(name="app", image=testbed.images["goapp"], image_pull_policy="Never")
    kube.apps().create_namespaced_deployment(namespace, k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="web"),
        spec=k8s.V1DeploymentSpec(replicas=2, selector=k8s.V1LabelSelector(match_labels=labels),
                                  template=k8s.V1PodTemplateSpec(
                                      metadata=k8s.V1ObjectMeta(labels=labels),
                                      spec=k8s.V1PodSpec(containers=[container], termination_grace_period_seconds=0,
                                                         automount_service_account_token=False)))))
    wait_for(lambda: (kube.apps().read_namespaced_deployment("web", namespace).status.ready_replicas or 0) == 2,
             90, "deployment web ready", every=0.5)
    pods = kube.core().list_namespaced_pod(namespace, label_selector="app=web").items
    return sorted(p.metadata.name for p in pods)


def daily_at(when: datetime) -> str:
    return f"{when.minute} {when.hour} * * *"


def pod_entries(capture: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in capture["status"]["pods"]}


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    [found] = [c for c in obj["status"].get("conditions") or [] if c["type"] == kind]
    return found


def gauges(port: int, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(metric, pod) -> {value, labels} of this namespace's samples on /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, s.labels["pod"]): {"value": s.value, "labels": s.labels}
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.labels.get("namespace") == namespace and "pod" in s.labels}


def dump(objects: dict[str, dict[str, Any]]) -> None:
    target = os.environ.get("DEBUGCAP_HEALTH_TESTDATA")
    if not target:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    for name, obj in objects.items():
        (Path(target) / f"{name}.yaml").write_text(yaml.safe_dump(runners.as_testdata(obj), sort_keys=False))


def test_a_sweep_reports_each_pods_health(operator_env: int, operator: KopfRunner, kube: Kube, testbed: Testbed,
                                          core: k8s.CoreV1Api, namespace: str, goapp_pod: GoappPod,
                                          tmp_path: Path) -> None:
    lua, cel = runners.build(tmp_path)
    objects = Objects(kube, namespace)
    template = light_template(kube)
    live: dict[str, dict[str, Any]] = {}
    try:
        # 30 goroutines a second parked forever in main.leakWorker: over the analysis' 50 within
        # two seconds, and still growing (goapp stops at 5000) long after the second run.
        goapp_pod("leaky", env={"GOAPP_LEAK_GOROUTINES": "30"}, labels=LABELS)
        web = web_deployment(kube, testbed, namespace)

        # A capture of the Deployment that runs long enough to be read while in progress.
        objects.create_capture("probe", {"target": {"workload": {"kind": "Deployment", "name": "web"}},
                                         "template": template, "parameters": {"cpuSeconds": 6}})
        live["capture-progressing"] = wait_for(
            lambda: (o := objects.capture("probe")).get("status", {}).get("phase") == "Running" and o, 30,
            "the probe capture to run")
        objects.create_capture("failed", {"target": {"pod": "no-such-pod"}})

        due = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
        # The sweep of all three pods, and one of the Deployment alone (a healthy schedule).
        for name, target in (("sweep", {"selector": {"matchLabels": LABELS}}),
                             ("web-sweep", {"workload": {"kind": "Deployment", "name": "web"}})):
            objects.create_schedule(name, daily_at(due), {"target": target, "template": template,
                                                          "parameters": {"cpuSeconds": 1}})
        first = f"sweep-{int(due.timestamp()) // 60}"
        live["schedule-progressing"] = wait_for(
            lambda: (s := objects.schedule("sweep")).get("status", {}).get("active") == [{"name": first}]
            and "lastRun" not in s["status"] and s, 30, "the schedule's first run to start")
        # Started while the run captures: it must wait for Ready, and then return.
        waiting = subprocess.Popen(
            [str(builds.binary("kubernetes", "kubectl")), "wait", "--for=condition=Ready", f"dcap/{first}",
             "-n", namespace, "--timeout=120s"],
            env={**os.environ, "KUBECONFIG": testbed.kubeconfig}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        run = objects.done(first)
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, err
        assert f"debugcapture.debugcap.io/{first} condition met" in out

        _check_the_sweep(run, web)
        unhealthy = kubectl(testbed, "wait", "--for=condition=Healthy=False", f"dcap/{first}", "-n", namespace,
                            "--timeout=10s")
        assert "condition met" in unhealthy.stdout
        listed = kubectl(testbed, "get", "dcap", first, "-n", namespace).stdout.splitlines()
        assert listed[0].split()[:4] == ["NAME", "PHASE", "HEALTHY", "UNHEALTHY"], listed
        assert listed[1].split()[:4] == [first, "Completed", "False", "1"], listed

        wait_for(lambda: core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=leaky,reason=PodUnhealthy").items, 20,
            "the Warning Event on the leaking pod")
        events = core.list_namespaced_event(namespace, field_selector="reason=PodUnhealthy").items
        assert [e.involved_object.name for e in events] == ["leaky"], [e.message for e in events]  # one per run
        assert events[0].type == "Warning" and events[0].involved_object.kind == "Pod"
        assert events[0].involved_object.uid == core.read_namespaced_pod("leaky", namespace).metadata.uid
        assert first in events[0].message and "leakWorker" in events[0].message
        high = wait_for(lambda: [e for e in core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=leaky,reason=HighSeverityFinding").items
            if f"debugcap capture {first}: goroutine-leak: " in e.message], 20, "the leak's HighSeverityFinding Event")
        assert high[0].type == "Warning" and high[0].involved_object.uid == events[0].involved_object.uid

        _check_metrics(operator_env, namespace, web)

        # A second run, half an hour after the first in the schedule's terms: due at once.
        kube.custom().patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "debugschedules", "sweep",
            {"spec": {"schedule": daily_at(due + timedelta(minutes=30))}},
            _content_type="application/merge-patch+json")
        second = f"sweep-{int((due + timedelta(minutes=30)).timestamp()) // 60}"
        wait_for(lambda: objects.done(second, 60), 90, "the second run")
        schedule = wait_for(lambda: (s := objects.schedule("sweep")).get("status", {}).get(
            "lastRun", {}).get("capture") == second and s, 30, "the schedule's lastRun to name the second run")
        _check_last_run(schedule["status"]["lastRun"], first, web)
        header, row = kubectl(testbed, "get", "dsched", "sweep", "-n", namespace).stdout.splitlines()
        assert header.split()[-5:-1] == ["LAST", "RUN", "HEALTHY", "UNHEALTHY"], header
        assert row.split()[-4:-1] == [second, "2", "1"], row

        web_sweep = wait_for(lambda: (s := objects.schedule("web-sweep")).get("status", {}).get("lastRun") and s, 30,
                             "the Deployment's sweep to end")
        assert (web_sweep["status"]["lastRun"]["healthy"], web_sweep["status"]["lastRun"]["unhealthy"]) == (2, 0)
        kube.custom().patch_namespaced_custom_object(GROUP, VERSION, namespace, "debugschedules", "web-sweep",
                                                     {"spec": {"suspend": True}},
                                                     _content_type="application/merge-patch+json")
        live["schedule-suspended"] = objects.schedule("web-sweep")
        live.update({"capture-healthy": objects.done("probe"), "capture-unhealthy": objects.capture(first),
                     "capture-failed": objects.done("failed"), "schedule-unhealthy": schedule,
                     "schedule-healthy": web_sweep})
        dump(live)
        _check_health_tools(lua, cel, live, tmp_path)
        _check_cleanup(kube, operator_env, namespace)
    finally:
        kube.custom().delete_cluster_custom_object(GROUP, VERSION, "debugcapturetemplates", template)
        _leave_no_bundles(kube, namespace)


def _check_the_sweep(run: dict[str, Any], web: list[str]) -> None:
    status = run["status"]
    assert status["phase"] == "Completed", status
    assert status["observedGeneration"] == run["metadata"]["generation"]
    kstatus = {c["type"]: c["status"] for c in status["conditions"]}
    assert {k: kstatus[k] for k in ("Ready", "Reconciling", "Stalled", "Healthy")} == {
        "Ready": "True", "Reconciling": "False", "Stalled": "False", "Healthy": "False"}
    assert all(c["observedGeneration"] == run["metadata"]["generation"] for c in status["conditions"])
    pods = pod_entries(run)
    assert sorted(pods) == sorted(["leaky", *web])
    leaky = pods["leaky"]
    assert condition({"status": leaky}, "Healthy")["status"] == "False"
    top = leaky["findings"][0]
    assert top["kind"].startswith("goroutine-leak") and "leakWorker" in top["subject"], leaky["findings"]
    assert top["level"] == "high" and top["severity"] >= 80
    assert 1 <= len(leaky["findings"]) <= 5 and leaky["findingsTotal"] >= len(leaky["findings"])
    assert leaky["readings"]["goroutines"] > 50, leaky["readings"]  # the healthy pods have 10
    for name in web:
        healthy = condition({"status": pods[name]}, "Healthy")
        assert healthy["status"] == "True", pods[name]
        assert pods[name]["readings"]["goroutines"] < 50
        assert pods[name]["readings"]["heapInuseBytes"] > 0 and "cpuShare" in pods[name]["readings"]
    assert status["summary"] == {"pods": 3, "captured": 3, "failed": 0, "healthy": 2, "unhealthy": 1,
                                 "withFindings": status["summary"]["withFindings"],
                                 "findings": status["summary"]["findings"]}
    assert status["summary"]["withFindings"] >= 1


def _check_metrics(port: int, namespace: str, web: list[str]) -> None:
    seen = gauges(port, namespace)
    leaky = seen[("debugcap_pod_healthy", "leaky")]
    assert leaky["value"] == 0
    assert leaky["labels"] == {"namespace": namespace, "pod": "leaky", "workload": "leaky", "kind": "Pod"}
    assert seen[("debugcap_pod_finding_severity", "leaky")]["value"] >= 80
    assert seen[("debugcap_pod_goroutines", "leaky")]["value"] > 50
    for name in web:
        healthy = seen[("debugcap_pod_healthy", name)]
        assert healthy["value"] == 1
        assert (healthy["labels"]["workload"], healthy["labels"]["kind"]) == ("web", "Deployment")
        assert seen[("debugcap_pod_heap_inuse_bytes", name)]["value"] > 0
    # expvar's memstats are in the template: every pod has its longest recent GC pause (0 before a first GC).
    for name in ("leaky", *web):
        assert 0 <= seen[("debugcap_pod_gc_pause_seconds", name)]["value"] < 1


def _check_last_run(last: dict[str, Any], first: str, web: list[str]) -> None:
    assert {k: last[k] for k in ("phase", "pods", "captured", "failed", "healthy", "unhealthy")} == {
        "phase": "Completed", "pods": 3, "captured": 3, "failed": 0, "healthy": 2, "unhealthy": 1}
    assert last["previousCapture"] == first
    trend = {t["pod"]: t for t in last["trend"]}
    assert sorted(trend) == sorted(["leaky", *web])
    assert trend["leaky"]["goroutinesTrend"] == "up" and trend["leaky"]["goroutinesChange"] > 0, trend["leaky"]
    assert trend["leaky"]["heapInuseTrend"] in ("up", "down", "same")


def _check_cleanup(kube: Kube, port: int, namespace: str) -> None:
    """Deleting the schedules deletes their runs (owner references); each deleted capture takes its
    bundles, and the health series it set last, with it."""
    custom = kube.custom()
    for plural, name in (("debugschedules", "sweep"), ("debugschedules", "web-sweep"), ("debugcaptures", "probe"),
                         ("debugcaptures", "failed")):
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    wait_for(lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "debugcaptures")["items"],
             90, "every capture to be deleted", every=0.5)
    assert not [key for key in gauges(port, namespace) if key[0].startswith("debugcap_pod_")]
    settings = S3Settings.from_env()
    assert settings is not None
    assert list(S3Backend(settings).list(prefix=f"{settings.prefix}/{settings.cluster}/{namespace}/")) == []


def _leave_no_bundles(kube: Kube, namespace: str) -> None:
    """After a failure too, delete what the test made while the operator still runs, so it deletes
    their bundles: the operator fixture's teardown strips finalizers, and they would stay in S3."""
    custom = kube.custom()
    for plural in ("debugschedules", "debugcaptures"):
        for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]:
            try:
                custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, item["metadata"]["name"])
            except k8s.ApiException:
                pass  # already gone
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "debugcaptures")["items"]:
        time.sleep(0.5)


def _check_health_tools(lua: Path, cel: Path, live: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    names = ["capture-progressing", "capture-healthy", "capture-unhealthy", "capture-failed"]
    argocd = runners.argocd_health(lua, "DebugCapture", [live[n] for n in names])
    assert [h["status"] for h in argocd] == ["Progressing", "Healthy", "Degraded", "Degraded"], argocd
    assert "capturing 2 pod(s)" in argocd[0]["message"]
    assert argocd[2]["message"].startswith("1 of 3 pod(s) unhealthy: leaky (goroutine-leak"), argocd
    assert "no-such-pod" in argocd[3]["message"]
    flux = runners.flux_health(cel, "DebugCapture", [live[n] for n in names], tmp_path)
    assert flux == ["InProgress", "Current", "Failed", "Failed"]

    schedules = [live[f"schedule-{n}"] for n in ("progressing", "healthy", "unhealthy", "suspended")]
    argocd = runners.argocd_health(lua, "DebugSchedule", schedules)
    assert [h["status"] for h in argocd] == ["Progressing", "Healthy", "Degraded", "Suspended"], argocd
    assert argocd[1]["message"].endswith(": 2 of 2 pod(s) healthy"), argocd
    assert argocd[2]["message"].endswith(": 1 of 3 pod(s) unhealthy"), argocd
    assert runners.flux_health(cel, "DebugSchedule", schedules, tmp_path) == ["Current", "Current", "Failed",
                                                                              "Current"]
