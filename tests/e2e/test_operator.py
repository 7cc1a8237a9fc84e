"""The operator end to end: real apiserver, kubelet, goapp pods and MinIO; kopf in-process.

Cases:
* one pod -> Completed, bundle in S3 whose SHA-256 matches status; Events; spec edits not re-run
* a selector over 3 pods -> 3 bundles; a Deployment target -> its pods
* bad input -> Failed with a message naming the field: unknown template, no matching pod,
  unknown container, pod not Running, pprof port closed
* the API server rejects schema violations (two target kinds, negative maxPods, commands)
* two captures of one pod at once both complete (per-pod lock)
* a DebugCaptureTemplate's collectors, and only those, are run
* ttl: expiry deletes the bundles from S3, then the object
* a capture left Running by a dead operator is closed as Failed, not re-run; a bundle stored just
  before the crash is adopted from its uploadKey; a real SIGKILL mid-capture leaves no stray bundle
* schedules: owned runs and history pruning; Forbid skips a due run while one is active, Replace
  deletes it (and its bundle) and makes the due run
* RBAC: a user allowed DebugCaptures in namespace A reaches nothing in B and runs no commands
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from debugcap.kube.client import Kube
from debugcap.settings import S3Settings
from debugcap.storage import base as storage_base
from debugcap.storage.s3 import S3Backend

from .conftest import (
    GoappPod,
    Testbed,
    changes_within,
    collect_runner_leftovers,
    kubectl,
    strip_finalizers,
    wait_running,
)

GROUP, VERSION, PLURAL = "debugcap.io", "v1alpha1", "debugcaptures"
REPO = Path(__file__).resolve().parents[2]
TERMINAL = {"Completed", "PartiallyFailed", "Failed"}
FAST = {"cpuSeconds": 1, "traceSeconds": 1}

# kopf's aiohttp session drops (does not close) connections to the API server inside kopf's own
# thread while the operator runs, and the GC may close them in the middle of a test. That is
# kopf's, not ours: the capture engine the operator calls runs under the strict filter in
# test_capture.py. Only this exact warning is ignored here.
pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")




def create(kube: Kube, namespace: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None,
           kubeconfig_kube: Kube | None = None) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec}
    (kubeconfig_kube or kube).custom().create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def read(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = kube.custom().get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return obj


def wait_for(ok: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = ok()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def wait_done(kube: Kube, namespace: str, name: str, seconds: float = 90) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        obj = read(kube, namespace, name)
        return obj if (obj.get("status") or {}).get("phase") in TERMINAL else None

    try:
        result: dict[str, Any] = wait_for(done, seconds, f"DebugCapture {namespace}/{name} to end")
    except AssertionError:
        raise AssertionError(f"{read(kube, namespace, name).get('status')}") from None
    return result


def leave_running(kube: Kube, namespace: str, name: str, pods: list[dict[str, Any]]) -> None:
    """The status an operator that died mid-capture leaves behind."""
    kube.custom().patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name,
        {"status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z", "pods": pods}},
        _content_type="application/merge-patch+json")


def rewrites(kube: Kube, namespace: str, name: str, status: dict[str, Any], seconds: int = 3) -> list[dict[str, Any]]:
    """Statuses other than ``status`` that the capture has now or is given within ``seconds``
    (kopf's own annotation writes change the object but not its status, and are not counted)."""
    seen = changes_within(kube, GROUP, VERSION, namespace, PLURAL, name, seconds)
    return [obj.get("status") or {} for kind, obj in seen if kind == "DELETED" or obj.get("status") != status]


def restart_and_close(kube: Kube, namespace: str, name: str,
                      then: Callable[[], None] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start an operator on a capture a dead one left Running; its closing status, and every other
    status written within three seconds after it (a wrong second attempt would show there).
    ``then`` runs before it stops."""
    args = ["run", "--standalone", "-n", namespace, "-m", "debugcap.operator.handlers"]
    try:
        with KopfRunner(args, timeout=60) as runner:
            status = wait_done(kube, namespace, name, 30)["status"]
            again = rewrites(kube, namespace, name, status)
            if then is not None:
                then()
    finally:
        collect_runner_leftovers()
        strip_finalizers(kube, namespace)
    assert runner.exception is None, runner.output
    return status, again


def s3() -> S3Backend:
    settings = S3Settings.from_env()
    assert settings is not None
    return S3Backend(settings)


def assert_bundle_matches(pod_status: dict[str, Any], tmp_path: Path) -> None:
    bundle = pod_status["bundle"]
    dest = tmp_path / Path(bundle["key"]).name
    s3().get(key=bundle["key"], dest=dest)
    sha, size = storage_base.file_sha256(dest)
    assert (sha, size) == (bundle["sha256"], bundle["sizeBytes"])
    assert bundle["uri"] == f"s3://{S3Settings.from_env().bucket}/{bundle['key']}"  # type: ignore[union-attr]


def events_of(core: k8s.CoreV1Api, namespace: str, name: str) -> list[str]:
    listed = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return [e.reason for e in listed.items]


# --- one pod, selectors, workloads ----------------------------------------------------------------

def test_capture_of_one_pod_completes_with_its_bundle_in_s3(
        operator: KopfRunner, kube: Kube, core: k8s.CoreV1Api, namespace: str, goapp_pod: GoappPod,
        tmp_path: Path) -> None:
    goapp_pod("api-1")
    create(kube, namespace, "cap", {"target": {"pod": "api-1"}, "template": "go-profile", "parameters": FAST})
    obj = wait_done(kube, namespace, "cap")
    status = obj["status"]
    assert status["phase"] == "Completed", status
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["startTime"] <= status["completionTime"] < status["expiresAt"]
    [pod] = status["pods"]
    assert (pod["name"], pod["container"], pod["phase"]) == ("api-1", "app", "Completed")
    assert {c["name"] for c in pod["collectors"]} >= {"pprof-cpu", "trace", "pprof-heap"}
    assert all(c["status"] in ("ok", "skipped") for c in pod["collectors"]), pod["collectors"]
    assert_bundle_matches(pod, tmp_path)
    assert f"/{namespace}/api-1/" in pod["bundle"]["key"]
    reasons = wait_for(lambda: (r := events_of(core, namespace, "cap")) and "CaptureCompleted" in r and r, 10,
                       "events")
    assert {"CaptureStarted", "PodCaptured", "CaptureCompleted"} <= set(reasons)

    # A capture runs once: editing the spec afterwards is reported, not run.
    kube.custom().patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "cap",
                                                 {"spec": {"parameters": {"cpuSeconds": 2}}},
                                                 _content_type="application/merge-patch+json")
    edited = wait_for(lambda: (o := read(kube, namespace, "cap")) and any(
        c["type"] == "SpecChangeIgnored" for c in o["status"].get("conditions", [])) and o, 20, "SpecChangeIgnored")
    assert edited["status"]["pods"][0]["bundle"] == pod["bundle"]
    # Observed and refused: kstatus readers see Stalled of this generation (Failed), not an edit in progress.
    assert edited["status"]["observedGeneration"] == edited["metadata"]["generation"]
    stalled = next(c for c in edited["status"]["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["observedGeneration"]) == ("True", edited["metadata"]["generation"])
    assert len(s3_keys(namespace, "api-1")) == 1


def s3_keys(namespace: str, pod: str) -> list[str]:
    settings = S3Settings.from_env()
    assert settings is not None
    return list(s3().list(prefix=f"{settings.prefix}/{settings.cluster}/{namespace}/{pod}/"))



def test_plugin_create_is_carried_out_by_the_operator(operator: KopfRunner, kube: Kube, testbed: Testbed,
                                                      namespace: str, goapp_pod: GoappPod) -> None:
    """The mission's own words: `kubectl debugcap create pod/x -t debug-full`, done in the cluster."""
    goapp_pod("x")
    env = {**os.environ, "KUBECONFIG": testbed.kubeconfig}
    res = subprocess.run([str(REPO / ".venv/bin/kubectl-debugcap"), "create", "pod/x", "-t", "debug-full", "-n",
                          namespace, "--name", "from-plugin", "-p", "cpu_seconds=1", "-p", "trace_seconds=1"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    status = wait_done(kube, namespace, "from-plugin")["status"]
    assert status["phase"] == "Completed", status
    assert status["pods"][0]["bundle"]["sha256"] and status["pods"][0]["name"] == "x"

def test_selector_over_three_pods_gives_three_bundles(
        operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod, tmp_path: Path) -> None:
    for i in range(3):
        goapp_pod(f"web-{i}", labels={"tier": "web"}, wait=False)
    goapp_pod("other", labels={"tier": "db"}, wait=False)
    for name in ("web-0", "web-1", "web-2", "other"):
        wait_running(kube.core(), namespace, name)
    create(kube, namespace, "sel", {"target": {"selector": {"matchLabels": {"tier": "web"}}},
                                    "template": "go-profile", "parameters": FAST})
    status = wait_done(kube, namespace, "sel", 120)["status"]
    assert status["phase"] == "Completed", status
    assert sorted(p["name"] for p in status["pods"]) == ["web-0", "web-1", "web-2"]
    assert len({p["bundle"]["key"] for p in status["pods"]}) == 3
    for pod in status["pods"]:
        assert_bundle_matches(pod, tmp_path)


def test_deployment_target_captures_the_deployments_pods(
        operator: KopfRunner, kube: Kube, namespace: str, testbed: Testbed, tmp_path: Path) -> None:
    labels = {"app": "shop"}
    container = k8s.V1Container(name="app", image=testbed.images["goapp"], image_pull_policy="Never")
    deployment = k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="shop"),
        spec=k8s.V1DeploymentSpec(
            replicas=2, selector=k8s.V1LabelSelector(match_labels=labels),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=k8s.V1PodSpec(containers=[container], termination_grace_period_seconds=0,
                                   automount_service_account_token=False))))
    kube.apps().create_namespaced_deployment(namespace, deployment)
    wait_for(lambda: (kube.apps().read_namespaced_deployment("shop", namespace).status.ready_replicas or 0) == 2,
             90, "deployment shop ready")
    create(kube, namespace, "dep", {"target": {"workload": {"kind": "Deployment", "name": "shop"}, "maxPods": 1},
                                    "template": "go-profile", "parameters": FAST})
    status = wait_done(kube, namespace, "dep")["status"]
    assert status["phase"] == "Completed", status
    [pod] = status["pods"]
    assert pod["name"].startswith("shop-")
    assert "maxPods=1" in status["message"]
    assert_bundle_matches(pod, tmp_path)


# --- bad input -------------------------------------------------------------------------------------

BAD_INPUT = {
    # name: (spec, words the message must contain)
    "unknown-template": ({"target": {"pod": "api-1"}, "template": "go-profiel"},
                         ["spec.template", 'unknown template "go-profiel"', "go-profile"]),
    "no-pod": ({"target": {"pod": "nope"}}, ["spec.target.pod", 'no pod "nope"', "kubectl get pods"]),
    "no-match": ({"target": {"selector": {"matchLabels": {"app": "nothing"}}}},
                 ["spec.target.selector", "no pod", "app=nothing", "--show-labels"]),
    "bad-container": ({"target": {"pod": "api-1", "container": "sidecar"}},
                      ["spec.target.container", 'no container "sidecar"', "app"]),
    "not-running": ({"target": {"pod": "stuck"}}, ["spec.target.pod", "Pending, not Running"]),
    "port-closed": ({"target": {"pod": "api-1"}, "parameters": {**FAST, "pprofPort": 6061}},
                    ["spec.parameters.pprofPort", "6061"]),
    "param-not-in-template": ({"target": {"pod": "api-1"}, "template": "disk-usage", "parameters": FAST},
                              ["spec.parameters.cpuSeconds", "disk-usage"]),
}


def test_bad_input_fails_with_a_message_naming_the_field_and_fix(
        operator: KopfRunner, kube: Kube, core: k8s.CoreV1Api, namespace: str, goapp_pod: GoappPod) -> None:
    goapp_pod("api-1")
    stuck = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="stuck"), spec=k8s.V1PodSpec(
        containers=[k8s.V1Container(name="app", image="debugcap.test/goapp:dev", image_pull_policy="Never")],
        node_selector={"debugcap.io/no-such-node": "x"}))
    core.create_namespaced_pod(namespace, stuck)
    for name, (spec, _words) in BAD_INPUT.items():
        create(kube, namespace, name, spec)
    for name, (_spec, words) in BAD_INPUT.items():
        status = wait_done(kube, namespace, name)["status"]
        assert status["phase"] == "Failed", (name, status)
        for word in words:
            assert word in status["message"], (name, word, status["message"])
    assert s3_keys(namespace, "api-1") == []


@pytest.mark.parametrize("spec, complaint", [
    ({"target": {"pod": "a", "selector": {"matchLabels": {"app": "a"}}}}, "exactly one of pod, selector, workload"),
    ({"target": {}}, "exactly one of pod, selector, workload"),
    ({"target": {"pod": "a", "maxPods": -1}}, "spec.target.maxPods"),
    ({"target": {"workload": {"kind": "Job", "name": "a"}}}, "spec.target.workload.kind"),
    ({"target": {"pod": "a"}, "parameters": {"cpuSeconds": 0}}, "spec.parameters.cpuSeconds"),
    ({"target": {"pod": "a"}, "ttl": "tomorrow"}, "spec.ttl"),
    ({"target": {"pod": "a"}, "parameters": {"command": ["sh", "-c", "id"]}},
     'unknown field "spec.parameters.command"'),
    ({"target": {"pod": "a"}, "commands": ["id"]}, 'unknown field "spec.commands"'),
], ids=["two-target-kinds", "no-target", "negative-maxPods", "bad-workload-kind", "zero-cpuSeconds", "bad-ttl",
        "command-parameter", "commands-field"])
def test_api_server_rejects_schema_violations(crds: None, testbed: Testbed, namespace: str,
                                              spec: dict[str, Any], complaint: str) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture", "metadata": {"name": "bad"}, "spec": spec}
    res = kubectl(testbed, "create", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)
    assert res.returncode != 0
    assert complaint in res.stderr, res.stderr


# --- concurrency -----------------------------------------------------------------------------------

def test_two_captures_of_one_pod_at_once_both_complete(
        operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod) -> None:
    goapp_pod("api-1")
    spec = {"target": {"pod": "api-1"}, "template": "go-profile", "parameters": {"cpuSeconds": 2, "traceSeconds": 2}}
    create(kube, namespace, "first", spec)
    create(kube, namespace, "second", spec)
    first, second = (wait_done(kube, namespace, n, 120)["status"] for n in ("first", "second"))
    for status in (first, second):
        assert status["phase"] == "Completed", status
        cpu = next(c for c in status["pods"][0]["collectors"] if c["name"] == "pprof-cpu")
        assert cpu["status"] == "ok" and "already in use" not in cpu.get("message", "")
    assert len(s3_keys(namespace, "api-1")) == 2


# --- templates, ttl, restart -----------------------------------------------------------------------

def test_deadline_ends_a_pod_partially_failed_with_what_was_collected_uploaded(
        operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod, tmp_path: Path) -> None:
    goapp_pod("api-1")
    create(kube, namespace, "late", {"target": {"pod": "api-1"}, "template": "go-profile",
                                     "parameters": {"cpuSeconds": 120, "traceSeconds": 60, "deadlineSeconds": 4}})
    status = wait_done(kube, namespace, "late", 60)["status"]
    [pod] = status["pods"]
    assert (status["phase"], pod["phase"]) == ("PartiallyFailed", "PartiallyFailed"), status
    by_name = {c["name"]: c for c in pod["collectors"]}
    assert by_name["pprof-cpu"]["status"] in ("failed", "partial"), by_name["pprof-cpu"]
    assert "capture deadline of 4 s (spec.parameters.deadlineSeconds)" in by_name["pprof-cpu"]["message"]
    assert by_name["pprof-heap"]["status"] == "ok", by_name["pprof-heap"]
    assert_bundle_matches(pod, tmp_path)  # what was collected before the deadline is stored


def test_a_capture_cut_at_its_deadline_leaves_the_pods_profiler_to_the_next_capture(
        operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod) -> None:
    # Go serves one CPU profile at a time: the second capture of the pod, queued on its lock, must
    # not find the first one's abandoned profile still running.
    goapp_pod("api-1")
    create(kube, namespace, "first", {"target": {"pod": "api-1"}, "template": "go-profile",
                                      "parameters": {"cpuSeconds": 120, "traceSeconds": 60, "deadlineSeconds": 3}})
    wait_for(lambda: any(p["phase"] == "Running" for p in (read(kube, namespace, "first").get("status") or {})
                         .get("pods") or []), 30, "the first capture to start")
    create(kube, namespace, "second", {"target": {"pod": "api-1"}, "template": "go-profile", "parameters": FAST})
    first = wait_done(kube, namespace, "first", 60)["status"]
    second = wait_done(kube, namespace, "second", 60)["status"]
    assert first["phase"] == "PartiallyFailed", first
    [pod] = second["pods"]
    by_name = {c["name"]: c for c in pod["collectors"]}
    assert (by_name["pprof-cpu"]["status"], by_name["trace"]["status"]) == ("ok", "ok"), (first, second)
    assert second["startTime"] >= first["completionTime"] or pod["phase"] == "Completed", (first, second)


def test_capture_template_runs_exactly_its_collectors(
        operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod, tmp_path: Path) -> None:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    template = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCaptureTemplate", "metadata": {"name": name},
                "spec": {"description": "goroutines and logs",
                         "parameters": {"log_lines": {"type": "int", "default": 10, "min": 1}},
                         "steps": [{"collector": "pprof-goroutine", "params": {"formats": ["debug2"]}},
                                   {"collector": "logs", "params": {"lines": "${log_lines}"}}]}}
    kube.custom().create_cluster_custom_object(GROUP, VERSION, "debugcapturetemplates", template)
    try:
        checked = wait_for(lambda: kube.custom().get_cluster_custom_object(
            GROUP, VERSION, "debugcapturetemplates", name).get("status"), 20, "the template check")
        assert checked == {"valid": True, "message": "2 step(s): pprof-goroutine, logs"}
        goapp_pod("api-1")
        create(kube, namespace, "tpl", {"target": {"pod": "api-1"}, "template": name,
                                        "parameters": {"logLines": 5}})
        status = wait_done(kube, namespace, "tpl")["status"]
        assert status["phase"] == "Completed", status
        assert [c["name"] for c in status["pods"][0]["collectors"]] == ["pprof-goroutine", "logs"]
        assert_bundle_matches(status["pods"][0], tmp_path)
    finally:
        kube.custom().delete_cluster_custom_object(GROUP, VERSION, "debugcapturetemplates", name)


def test_expired_capture_deletes_its_bundles_then_itself(
        operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod) -> None:
    goapp_pod("api-1")
    create(kube, namespace, "short", {"target": {"pod": "api-1"}, "template": "go-profile", "parameters": FAST,
                                      "ttl": "10s"})
    status = wait_done(kube, namespace, "short")["status"]
    key = status["pods"][0]["bundle"]["key"]
    assert s3().exists(key=key)

    def gone() -> bool:
        try:
            read(kube, namespace, "short")
            return False
        except ApiException as exc:
            return exc.status == 404

    wait_for(gone, 40, "the expired capture to be deleted")
    assert not s3().exists(key=key)
    assert s3_keys(namespace, "api-1") == []


def test_capture_left_running_by_a_dead_operator_is_closed_not_rerun(
        crds: None, operator_env: None, kube: Kube, namespace: str, goapp_pod: GoappPod) -> None:
    goapp_pod("api-1")
    create(kube, namespace, "orphan", {"target": {"pod": "api-1"}, "parameters": FAST})
    # What a dead operator leaves: Running, one pod mid-capture, nothing stored.
    leave_running(kube, namespace, "orphan", [{"name": "api-1", "phase": "Running"}])
    status, again = restart_and_close(kube, namespace, "orphan")
    assert status["phase"] == "Failed"
    assert "operator restarted" in status["message"]
    assert "restarted" in status["pods"][0]["message"]
    assert again == []
    assert s3_keys(namespace, "api-1") == []


def test_bundle_stored_just_before_a_crash_is_adopted_and_an_unstored_one_failed(
        crds: None, operator_env: None, kube: Kube, namespace: str, goapp_pod: GoappPod, tmp_path: Path) -> None:
    """The window between the upload and the status write that lists the bundle: a dead operator
    leaves each pod Running with its uploadKey. The successor adopts what is stored (so expiry
    deletes it) and fails what is not, and re-runs nothing."""
    from debugcap import capture as engine
    from debugcap import delivering, templates
    from debugcap.collectors import COLLECTORS
    from debugcap.operator import capturing

    goapp_pod("api-1")
    goapp_pod("api-2")
    store = delivering.store_from_env()
    started = datetime.now(UTC) - timedelta(seconds=30)
    stored_key = capturing.planned_key(store, namespace, "api-1", started)
    missing_key = capturing.planned_key(store, namespace, "api-2", started)
    # api-1's bundle made and uploaded as the dead operator did, under the key its status names.
    template = templates.expand("go-profile", {"cpu_seconds": 1, "trace_seconds": 1}, collectors=COLLECTORS)
    outcome = engine.capture(kube, engine.resolve_target(kube, namespace, "api-1"), template,
                             out_dir=tmp_path, capture_name="crashed", started=started)
    delivery, _ = delivering.deliver(store, outcome.bundle, namespace=namespace, pod="api-1", when=started)
    assert delivery.stored and delivery.key == stored_key
    create(kube, namespace, "crashed", {"target": {"selector": {"matchLabels": {"app": "goapp"}}},
                                        "template": "go-profile", "parameters": FAST})
    leave_running(kube, namespace, "crashed", [{"name": "api-1", "phase": "Running", "uploadKey": stored_key},
                                                {"name": "api-2", "phase": "Running", "uploadKey": missing_key}])
    def delete_it() -> None:
        kube.custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "crashed")
        wait_for(lambda: not s3_keys(namespace, "api-1"), 30, "the adopted bundle to go with its capture")

    status, again = restart_and_close(kube, namespace, "crashed", then=delete_it)
    pods = {p["name"]: p for p in status["pods"]}
    assert status["phase"] == "PartiallyFailed", status
    assert pods["api-1"]["phase"] == "Completed", pods["api-1"]
    assert pods["api-1"]["bundle"]["key"] == stored_key
    assert pods["api-1"]["bundle"]["sha256"] == outcome.bundle.sha256
    assert {c["name"] for c in pods["api-1"]["collectors"]} >= {"pprof-cpu", "pprof-heap"}
    assert pods["api-2"]["phase"] == "Failed" and "nothing was uploaded" in pods["api-2"]["message"]
    assert "bundle" not in pods["api-2"]
    assert again == []
    assert s3_keys(namespace, "api-2") == []


def test_operator_killed_mid_capture_ends_it_on_restart_with_no_stray_bundle(
        crds: None, operator_env: None, kube: Kube, namespace: str, goapp_pod: GoappPod, tmp_path: Path) -> None:
    """SIGKILL, not a fabricated status: the real process dies while pods are being captured."""
    for name in ("api-1", "api-2", "api-3"):
        goapp_pod(name)
    env = {**os.environ, "DEBUGCAP_OPERATOR_NAMESPACES": namespace, "DEBUGCAP_OPERATOR_CONCURRENCY": "2"}
    binary = str(REPO / ".venv" / "bin" / "debugcap-operator")
    logs = []

    def start(n: int) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"operator-{n}.log").open("wb")
        logs.append(tmp_path / f"operator-{n}.log")
        proc = subprocess.Popen([binary], env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return proc

    first = start(1)
    second = None
    try:
        create(kube, namespace, "killed", {"target": {"selector": {"matchLabels": {"app": "goapp"}}},
                                           "template": "go-profile",
                                           "parameters": {"cpuSeconds": 4, "traceSeconds": 4}})
        running = wait_for(lambda: [p for p in (read(kube, namespace, "killed").get("status") or {}).get("pods") or []
                                    if p["phase"] == "Running"], 60, "a pod being captured")
        assert all(p.get("uploadKey") for p in running), running
        first.kill()
        first.wait(timeout=10)
        second = start(2)
        status = wait_done(kube, namespace, "killed", 60)["status"]
        assert rewrites(kube, namespace, "killed", status) == []  # closed once, not re-run
        listed = {p["name"]: p["bundle"]["key"] for p in status["pods"] if p.get("bundle")}
        for pod in ("api-1", "api-2", "api-3"):
            keys = s3_keys(namespace, pod)
            assert len(keys) <= 1, keys
            assert keys == ([listed[pod]] if pod in listed else []), (pod, keys, status)
        kube.custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "killed")
        wait_for(lambda: not any(s3_keys(namespace, p) for p in ("api-1", "api-2", "api-3")), 30,
                 "the capture's bundles to be deleted with it")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        strip_finalizers(kube, namespace)
    assert status["phase"] in TERMINAL
    assert all(p["phase"] in TERMINAL for p in status["pods"]), status
    assert any("restarted" in p.get("message", "") for p in status["pods"]), status
    output = logs[1].read_text()
    assert "Traceback" not in output, output


# --- RBAC ------------------------------------------------------------------------------------------

def test_user_allowed_captures_in_one_namespace_reaches_nothing_in_another(
        operator: KopfRunner, crds: None, kube: Kube, core: k8s.CoreV1Api, testbed: Testbed, namespace: str,
        goapp_pod: GoappPod) -> None:
    other = f"e2e-{uuid.uuid4().hex[:8]}"
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=other, labels={"debugcap-e2e": "1"})))
    rbac = k8s.RbacAuthorizationV1Api(kube.core().api_client)
    try:
        rbac.create_namespaced_role(namespace, k8s.V1Role(
            metadata=k8s.V1ObjectMeta(name="capturer"),
            rules=[k8s.V1PolicyRule(api_groups=[GROUP], resources=["debugcaptures"],
                                    verbs=["create", "get", "list", "watch"])]))
        rbac.create_namespaced_role_binding(namespace, k8s.V1RoleBinding(
            metadata=k8s.V1ObjectMeta(name="capturer"),
            role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="capturer"),
            subjects=[k8s.RbacV1Subject(kind="User", name="debugcap-user", api_group="rbac.authorization.k8s.io")]))
        user = testbed.user_kubeconfig
        secret_pod = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="secret-app"), spec=k8s.V1PodSpec(
            containers=[k8s.V1Container(name="app", image=testbed.images["goapp"], image_pull_policy="Never")]))
        core.create_namespaced_pod(other, secret_pod)

        def capture_doc(ns: str, name: str, spec: dict[str, Any]) -> str:
            return json.dumps({"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture",
                               "metadata": {"name": name, "namespace": ns}, "spec": spec})

        # Allowed in A, but a pod name only ever resolves in A: B's pod is out of reach.
        wait_for(lambda: kubectl(testbed, "auth", "can-i", "create", "debugcaptures.debugcap.io", "-n", namespace,
                                 kubeconfig=user, check=False).stdout.strip() == "yes", 10, "RBAC to apply")
        kubectl(testbed, "create", "-f", "-", kubeconfig=user,
                stdin=capture_doc(namespace, "reach", {"target": {"pod": "secret-app"}, "parameters": FAST}))
        status = wait_done(kube, namespace, "reach")["status"]
        assert status["phase"] == "Failed"
        assert f'no pod "secret-app" in namespace "{namespace}"' in status["message"]
        # Not allowed in B at all.
        denied = kubectl(testbed, "create", "-f", "-", kubeconfig=user, check=False,
                         stdin=capture_doc(other, "reach", {"target": {"pod": "secret-app"}}))
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
        # No command can be smuggled in: the schema has no field for one, and templates are admin-only.
        smuggled = kubectl(testbed, "create", "-f", "-", kubeconfig=user, check=False,
                           stdin=capture_doc(namespace, "cmd", {"target": {"pod": "x"},
                                                                "parameters": {"command": "id"}}))
        assert smuggled.returncode != 0 and 'unknown field "spec.parameters.command"' in smuggled.stderr
        template = json.dumps({"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCaptureTemplate",
                               "metadata": {"name": "evil"}, "spec": {"steps": [{"collector": "ps"}]}})
        forbidden = kubectl(testbed, "create", "-f", "-", kubeconfig=user, check=False, stdin=template)
        assert forbidden.returncode != 0 and "forbidden" in forbidden.stderr.lower()
    finally:
        core.delete_namespace(other, grace_period_seconds=0)


# --- schedules ---------------------------------------------------------------------------------

def test_schedule_creates_owned_captures_and_prunes_history(
        crds: None, operator_env: None, kube: Kube, namespace: str, goapp_pod: GoappPod) -> None:
    goapp_pod("api-1")
    custom = kube.custom()
    # Daily, at a time an hour ago: exactly one run is due when the operator starts, and the next
    # is a day away. An every-minute schedule would make a second run whenever the test crossed a
    # minute boundary, and with successfulHistoryLimit 1 that run rightly prunes the first.
    due = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    schedule = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "debugschedules", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugSchedule", "metadata": {"name": "nightly"},
        "spec": {"schedule": f"{due.minute} {due.hour} * * *", "successfulHistoryLimit": 1, "failedHistoryLimit": 0,
                 "captureTemplate": {"metadata": {"labels": {"team": "shop"}},
                                     "spec": {"target": {"pod": "api-1"}, "parameters": FAST}}}})
    owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugSchedule", "name": "nightly",
             "uid": schedule["metadata"]["uid"]}
    # Two earlier runs, as a previous operator would have left them: one failed, one succeeded.
    for name, phase in (("nightly-old-failed", "Failed"), ("nightly-old-ok", "Completed")):
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture",
            "metadata": {"name": name, "labels": {"debugcap.io/schedule": "nightly"}, "ownerReferences": [owner]},
            "spec": {"target": {"pod": "api-1"}}})
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name,
            {"status": {"phase": phase, "completionTime": "2026-01-01T00:00:00Z", "message": "earlier run"}},
            _content_type="application/merge-patch+json")
    # The last run was long ago, so one is due as soon as the operator looks.
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "debugschedules", "nightly",
        {"status": {"lastScheduleTime": "2026-01-01T00:00:00Z"}}, _content_type="application/merge-patch+json")

    def captures() -> dict[str, dict[str, Any]]:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        return {c["metadata"]["name"]: c for c in items}

    args = ["run", "--standalone", "-n", namespace, "-m", "debugcap.operator.handlers"]
    try:
        with KopfRunner(args, timeout=60) as runner:
            made = wait_for(lambda: [n for n in captures() if not n.startswith("nightly-old")], 20,
                            "the scheduled capture")
            [new] = made
            assert new == f"nightly-{int(due.timestamp()) // 60}"
            status = wait_done(kube, namespace, new)["status"]
            assert status["phase"] == "Completed", status
            obj = captures()[new]
            assert obj["metadata"]["ownerReferences"][0]["uid"] == owner["uid"]
            assert obj["metadata"]["labels"] == {"team": "shop", "debugcap.io/schedule": "nightly"}
            # Once the new run succeeded, the old ones go: limit 1 successful, 0 failed.
            wait_for(lambda: set(captures()) == {new}, 30, "pruning of the earlier runs")
            # The tick that prunes writes the schedule's status only when it returns, after its
            # deletes: the earlier run's completionTime can still be there for a moment.
            sched = wait_for(lambda: (s := custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "debugschedules", "nightly")["status"]).get("lastSuccessfulTime")
                == status["completionTime"] and s, 20, "schedule status naming the new run's completion")
    finally:
        collect_runner_leftovers()
        strip_finalizers(kube, namespace)
    assert runner.exception is None, runner.output
    assert sched["lastSuccessfulTime"] == status["completionTime"]
    assert sched["lastScheduleTime"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sched["active"] == []


# --- the operator as a process: metrics and liveness ------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_schedule_forbid_skips_a_run_while_one_is_active_and_replace_replaces_it(
        crds: None, operator_env: None, kube: Kube, namespace: str, goapp_pod: GoappPod) -> None:
    goapp_pod("api-1")
    custom = kube.custom()
    due = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    run_name = f"sweep-{int(due.timestamp()) // 60}"
    schedule = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "debugschedules", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugSchedule", "metadata": {"name": "sweep"},
        "spec": {"schedule": f"{due.minute} {due.hour} * * *", "concurrencyPolicy": "Forbid",
                 "successfulHistoryLimit": 5, "failedHistoryLimit": 5,
                 "captureTemplate": {"spec": {"target": {"pod": "api-1"}, "template": "go-profile",
                                              "parameters": FAST}}}})
    owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugSchedule", "name": "sweep",
             "uid": schedule["metadata"]["uid"], "controller": True}
    # An earlier run of the schedule, still capturing (a 15 s profile) when the next one is due.
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture",
        "metadata": {"name": "sweep-earlier", "labels": {"debugcap.io/schedule": "sweep"}, "ownerReferences": [owner]},
        "spec": {"target": {"pod": "api-1"}, "template": "go-profile",
                 "parameters": {"cpuSeconds": 15, "traceSeconds": 1}}})

    def make_due() -> None:
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "debugschedules", "sweep",
            {"status": {"lastScheduleTime": "2026-01-01T00:00:00Z"}}, _content_type="application/merge-patch+json")

    def schedule_status() -> dict[str, Any]:
        got: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "debugschedules", "sweep").get("status") or {}
        return got

    def names() -> set[str]:
        return {c["metadata"]["name"] for c in custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL)["items"]}

    make_due()
    args = ["run", "--standalone", "-n", namespace, "-m", "debugcap.operator.handlers"]
    try:
        with KopfRunner(args, timeout=90) as runner:
            forbid = wait_for(lambda: (s := schedule_status()).get("message", "").startswith("skipped") and s, 20,
                              "the Forbid policy to skip the due run")
            earlier = read(kube, namespace, "sweep-earlier").get("status") or {}
            assert earlier.get("phase") not in TERMINAL, earlier  # still active, so the skip was right
            assert names() == {"sweep-earlier"}
            # Replace: the due run is made, the active one deleted, and its bundle with it.
            custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "debugschedules", "sweep",
                                                  {"spec": {"concurrencyPolicy": "Replace"}},
                                                  _content_type="application/merge-patch+json")
            make_due()
            wait_for(lambda: run_name in names(), 20, "the Replace policy to create the due run")
            status = wait_done(kube, namespace, run_name, 60)["status"]
            wait_for(lambda: "sweep-earlier" not in names(), 40, "the replaced capture to be deleted")
            replaced = schedule_status()
    finally:
        collect_runner_leftovers()
        strip_finalizers(kube, namespace)
    assert runner.exception is None, runner.output
    assert forbid["lastScheduleTime"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "sweep-earlier" in forbid["message"] or forbid.get("active") == [{"name": "sweep-earlier"}], forbid
    assert status["phase"] == "Completed", status
    assert replaced["message"] == f"created {run_name}", replaced
    # Only the new run's bundle is left: the replaced capture's went with it.
    assert s3_keys(namespace, "api-1") == [status["pods"][0]["bundle"]["key"]]


def test_operator_process_serves_metrics_and_liveness(
        crds: None, operator_env: None, kube: Kube, namespace: str, goapp_pod: GoappPod, tmp_path: Path) -> None:
    import urllib.request

    goapp_pod("api-1")
    metrics_port, liveness_port = _free_port(), _free_port()
    env = {**os.environ, "DEBUGCAP_OPERATOR_NAMESPACES": namespace,
           "DEBUGCAP_OPERATOR_METRICS_PORT": str(metrics_port), "DEBUGCAP_OPERATOR_LIVENESS_PORT": str(liveness_port)}
    log = (tmp_path / "operator.log").open("w+")
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "debugcap-operator")], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        def get(port: int, path: str) -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                return str(resp.read().decode())

        def healthy() -> bool:
            try:
                return get(liveness_port, "/healthz") is not None
            except OSError:
                return False

        wait_for(healthy, 30, "the liveness endpoint")
        create(kube, namespace, "measured", {"target": {"pod": "api-1"}, "parameters": FAST})
        status = wait_done(kube, namespace, "measured")["status"]
        assert status["phase"] == "Completed"
        text = get(metrics_port, "/metrics")
        assert 'debugcap_captures_total{phase="Completed"} 1.0' in text
        assert "debugcap_capture_duration_seconds_count 1.0" in text
        assert f"debugcap_uploaded_bytes_total {float(status['pods'][0]['bundle']['sizeBytes'])}" in text
        assert "debugcap_captures_running 0.0" in text
        assert "debugcap_upload_retries_total 0.0" in text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        strip_finalizers(kube, namespace)
        log.seek(0)
        output = log.read()
        log.close()
    assert "Traceback" not in output, output
