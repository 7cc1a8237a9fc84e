"""The testbed is a real cluster: pods run, exec/port-forward/logs work, S3 stores objects.

These tests go through the Python ``kubernetes`` client and debugcap's own
exec and port-forward helpers, the same paths the capture engine uses.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

from kubernetes import client as k8s
from minio import Minio

from debugcap.formats import pprof
from debugcap.kube import exec as kexec
from debugcap.kube import portforward
from debugcap.kube.client import Kube
from testbed import layout

from .conftest import GoappPod, Testbed

TWENTY_MB = 20 * 1024 * 1024


def test_status_reports_every_part_healthy(testbed: Testbed) -> None:
    res = subprocess.run([sys.executable, "-m", "testbed", "status"], cwd=layout.REPO, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    for part in ("etcd", "kube-apiserver", "kubelet", "containerd", "s3", "alertmanager", "registry", "node-ready"):
        assert f"{part}" in res.stdout


def test_alertmanager_is_ready_with_the_operator_webhook_as_receiver(testbed: Testbed) -> None:
    url = testbed.env["ALERTMANAGER_URL"]
    with urllib.request.urlopen(f"{url}/-/ready", timeout=10) as resp:
        assert resp.status == 200
    with urllib.request.urlopen(f"{url}/api/v2/status", timeout=10) as resp:
        status = json.load(resp)
    loaded = status["config"]["original"]  # as Alertmanager read it; it hides webhook URLs as <secret>
    assert "receiver: debugcap-operator" in loaded and "group_wait: 1s" in loaded
    assert f"credentials_file: {testbed.env['DEBUGCAP_TESTBED_ALERT_TOKEN_FILE']}" in loaded
    port = testbed.env["DEBUGCAP_TESTBED_ALERT_WEBHOOK_PORT"]
    assert f"http://127.0.0.1:{port}/alerts" in Path(testbed.env["DEBUGCAP_TESTBED_ALERTMANAGER_CONFIG"]).read_text()
    assert Path(testbed.env["DEBUGCAP_TESTBED_ALERT_TOKEN_FILE"]).read_text().strip()


def test_node_is_ready_and_reports_v134(core: k8s.CoreV1Api) -> None:
    node = core.read_node(layout.NODE_NAME)
    ready = {c.type: c.status for c in node.status.conditions}["Ready"]
    assert ready == "True"
    assert node.status.node_info.kubelet_version == layout.K8S_VERSION
    assert node.status.node_info.container_runtime_version.startswith("containerd://1.6")


def test_goapp_pod_runs_and_logs(goapp_pod: GoappPod, core: k8s.CoreV1Api, namespace: str) -> None:
    pod = goapp_pod()
    assert pod.status.phase == "Running"
    assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(layout.POD_SUBNET)
    logs = core.read_namespaced_pod_log(pod.metadata.name, namespace, container="app")
    assert "goapp" in logs.lower()


def test_exec_returns_20mb_byte_for_byte(goapp_pod: GoappPod, kube: Kube, namespace: str) -> None:
    pod = goapp_pod()
    prep = io.BytesIO()
    res = kexec.run(kube, namespace=namespace, pod=pod.metadata.name, container="app",
                    command=["sh", "-c", f"head -c {TWENTY_MB} /dev/urandom > /tmp/blob && sha256sum /tmp/blob"],
                    stdout=prep, stderr=io.BytesIO(), timeout=60)
    assert res.exit_code == 0, res
    expected = prep.getvalue().split()[0].decode()

    out = io.BytesIO()
    res = kexec.run(kube, namespace=namespace, pod=pod.metadata.name, container="app",
                    command=["cat", "/tmp/blob"], stdout=out, stderr=io.BytesIO(), timeout=120)
    assert res.exit_code == 0 and not res.truncated and not res.timed_out
    data = out.getvalue()
    assert len(data) == TWENTY_MB
    assert hashlib.sha256(data).hexdigest() == expected


def test_exec_keeps_streams_and_exit_code_apart(goapp_pod: GoappPod, kube: Kube, namespace: str) -> None:
    pod = goapp_pod()
    out, err = io.BytesIO(), io.BytesIO()
    res = kexec.run(kube, namespace=namespace, pod=pod.metadata.name, container="app",
                    command=["sh", "-c", "echo to-out; echo to-err >&2; exit 3"], stdout=out, stderr=err)
    assert (res.exit_code, out.getvalue(), err.getvalue()) == (3, b"to-out\n", b"to-err\n")


def test_exec_timeout_really_stops_waiting(goapp_pod: GoappPod, kube: Kube, namespace: str) -> None:
    pod = goapp_pod()
    res = kexec.run(kube, namespace=namespace, pod=pod.metadata.name, container="app",
                    command=["sleep", "300"], stdout=io.BytesIO(), stderr=io.BytesIO(), timeout=3)
    assert res.timed_out and res.exit_code is None
    assert res.duration_s < 10


def _heap_via_port_forward(kube: Kube, namespace: str, pod: str) -> bytes:
    body = io.BytesIO()
    res = portforward.get(kube, namespace=namespace, pod=pod, port=6060, path="/debug/pprof/heap", sink=body,
                          timeout=30)
    assert res.status == 200
    return body.getvalue()


def test_port_forward_reaches_pprof_on_all_interfaces_and_localhost_only(
    goapp_pod: GoappPod, kube: Kube, namespace: str
) -> None:
    wide = goapp_pod("goapp-wide")
    local = goapp_pod("goapp-local", image="goapp-localhost")
    for pod in (wide, local):
        profile = pprof.parse(_heap_via_port_forward(kube, namespace, pod.metadata.name), "heap")
        assert [t.type for t in profile.sample_types] == ["alloc_objects", "alloc_space", "inuse_objects",
                                                          "inuse_space"]


def test_localhost_only_server_is_not_reachable_on_pod_ip(goapp_pod: GoappPod, kube: Kube, namespace: str) -> None:
    """Proves the variant really binds 127.0.0.1, so the test above means something."""
    local = goapp_pod("goapp-local", image="goapp-localhost")
    out = io.BytesIO()
    res = kexec.run(kube, namespace=namespace, pod=local.metadata.name, container="app",
                    command=["sh", "-c", "netstat -tln"], stdout=out, stderr=io.BytesIO())
    assert res.exit_code == 0
    listening = out.getvalue().decode()
    assert "127.0.0.1:6060" in listening and "0.0.0.0:6060" not in listening and ":::6060" not in listening


def test_distroless_pod_has_no_shell_and_exec_says_so(goapp_pod: GoappPod, kube: Kube, namespace: str) -> None:
    pod = goapp_pod("goapp-distroless", image="goapp-distroless")
    res = kexec.run(kube, namespace=namespace, pod=pod.metadata.name, container="app",
                    command=["sh", "-c", "echo hi"], stdout=io.BytesIO(), stderr=io.BytesIO())
    assert res.exit_code != 0
    assert res.tool_missing, res
    # The Go endpoints are still there.
    assert pprof.parse(_heap_via_port_forward(kube, namespace, pod.metadata.name), "heap").sample_types


def test_s3_put_get_round_trip(testbed: Testbed) -> None:
    s3 = testbed.s3
    mc = Minio(s3["DEBUGCAP_S3_ENDPOINT"], access_key=s3["DEBUGCAP_S3_ACCESS_KEY"],
               secret_key=s3["DEBUGCAP_S3_SECRET_KEY"], secure=False)
    bucket = f"e2e-{uuid.uuid4().hex[:8]}"
    mc.make_bucket(bucket)
    payload = bytes(range(256)) * 4096
    mc.put_object(bucket, "dir/object.bin", io.BytesIO(payload), len(payload))
    resp = mc.get_object(bucket, "dir/object.bin")
    try:
        assert resp.read() == payload
    finally:
        resp.close()
        resp.release_conn()
    mc.remove_object(bucket, "dir/object.bin")
    mc.remove_bucket(bucket)
