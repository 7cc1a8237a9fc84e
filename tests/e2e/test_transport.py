"""How Go evidence reaches debugcap: direct, pods/proxy, port-forward, and auto's choice among them.

Cases (real API server, kubelet, goapp pods; the CLI's ``create --local`` unless said otherwise):
* a ServiceAccount allowed only ``get pods`` and ``get pods/proxy`` (no exec, no port-forward)
  gets every Go collector with ``--transport proxy``, and with auto: from this host (not a pod
  of the cluster) auto starts at pods/proxy and never tries the pod IP, though it routes here;
* auto as it runs in the operator's pod (in the cluster): direct when the pod IP answers with
  the pprof index; pods/proxy, saying why, where the pod IP does not route;
* a server bound to 127.0.0.1 (goapp-localhost): auto falls back to port-forward and says why;
  ``--transport proxy`` fails the Go collectors saying the server probably listens on 127.0.0.1;
* ``--transport direct`` from the host (which routes to pod IPs) goes direct anywhere;
* the operator with ``spec.parameters.transport: proxy`` writes ``status.pods[].access.http``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client as k8s

from debugcap import capture as engine
from debugcap import templates
from debugcap.bundle import layout
from debugcap.capture import transport
from debugcap.kube import podhttp
from debugcap.kube.client import Kube, KubeTarget
from debugcap.settings import CaptureSettings

from .conftest import GoappPod, Testbed, kubectl
from .test_capture import GO_COLLECTORS, Run, create, members, read_manifest, statuses
from .test_operator import create as create_capture
from .test_operator import wait_done

FAST = {"cpu_seconds": "1", "trace_seconds": "1"}
# An address no host answers (TEST-NET-1, RFC 5737): where pod IPs do not route from here.
UNROUTED_IP = "192.0.2.1"


def go_evidence(run: Run) -> dict[str, Any]:
    """The manifest of a go-profile bundle whose Go collectors all succeeded (the template's
    newer ones, which only some programs serve, may be skipped)."""
    assert run.returncode == 0 and run.bundle is not None, run
    doc = read_manifest(members(run.bundle))
    got = statuses(doc)
    assert {name: got.get(name) for name in GO_COLLECTORS} == dict.fromkeys(GO_COLLECTORS, "ok"), \
        (doc["collectors"], doc.get("access"))
    assert set(got.values()) <= {"ok", "skipped"}, (doc["collectors"], doc.get("access"))
    return doc


# ---------------------------------------------------------------- a user with pods/proxy only


@pytest.fixture
def proxy_only_kubeconfig(testbed: Testbed, core: k8s.CoreV1Api, kube: Kube, namespace: str,
                          tmp_path: Path) -> str:
    """A kubeconfig for a ServiceAccount that may get pods and pods/proxy in ``namespace``, and
    nothing else (no pods/exec, no pods/portforward); its token from the TokenRequest API."""
    docs = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "reader", "namespace": namespace},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "reader", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
         "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]},
    ]
    kubectl(testbed, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    issued = core.create_namespaced_service_account_token(
        "reader", namespace, k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(
            audiences=[], expiration_seconds=3600)))
    token = issued.status.token  # type: ignore[union-attr]
    conf = kube.configuration
    path = tmp_path / "reader.kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "reader",
        "clusters": [{"name": "testbed", "cluster": {"server": conf.host, "certificate-authority": conf.ssl_ca_cert}}],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [{"name": "reader", "context": {"cluster": "testbed", "user": "reader", "namespace": namespace}}],
    }))
    # The RBAC authorizer reads roles from an informer: wait until the binding is in effect.
    deadline = time.monotonic() + 15
    while not can_i(testbed, str(path), "get", "pods/proxy", namespace):
        assert time.monotonic() < deadline, "the reader's RoleBinding was not in effect after 15 s"
        time.sleep(0.3)
    for verb, resource in [("create", "pods/portforward"), ("get", "pods/portforward"), ("create", "pods/exec"),
                           ("list", "events"), ("get", "pods/log")]:
        assert not can_i(testbed, str(path), verb, resource, namespace), f"the reader may {verb} {resource}"
    return str(path)


def can_i(testbed: Testbed, kubeconfig: str, verb: str, resource: str, namespace: str) -> bool:
    """``kubectl auth can-i`` as the kubeconfig's user; the part of ``resource`` after a slash is a
    subresource (kubectl alone would read ``pods/exec`` as the pod named exec)."""
    kind, _, sub = resource.partition("/")
    res = kubectl(testbed, "auth", "can-i", verb, kind, *(["--subresource", sub] if sub else []), "-n", namespace,
                  kubeconfig=kubeconfig, check=False)
    answer = res.stdout.strip()
    assert answer in ("yes", "no"), res.stderr
    return answer == "yes"


def test_a_user_with_only_pods_proxy_gets_the_go_evidence(
        testbed: Testbed, goapp_pod: GoappPod, namespace: str, tmp_path: Path, proxy_only_kubeconfig: str) -> None:
    goapp_pod("goapp")
    as_reader = {"KUBECONFIG": proxy_only_kubeconfig}
    doc = go_evidence(create(testbed, namespace, "goapp", "go-profile", tmp_path / "proxy", "--transport", "proxy",
                             params=FAST, env=as_reader))
    assert doc["access"]["http"] == "proxy" and "httpFallback" not in doc["access"]
    # auto: this host routes to pod IPs, but it is no pod of the cluster: direct is not tried.
    doc = go_evidence(create(testbed, namespace, "goapp", "go-profile", tmp_path / "auto", params=FAST,
                             env=as_reader))
    assert doc["access"] == {"http": "proxy"}, doc["access"]


def _capture_in_cluster(kube: Kube, namespace: str, pod_ip: str | None, tmp_path: Path) -> dict[str, str]:
    """The engine as the operator's pod runs it (auto's in-cluster order), the pod IP swapped
    for ``pod_ip`` when given; the bundle's access map."""
    target = engine.resolve_target(kube, namespace, "goapp")
    if pod_ip is not None:
        target = dataclasses.replace(target, pod_ip=pod_ip)
    template = templates.expand("go-profile", dict(FAST))
    tmp_path.mkdir()
    http = transport.Auto(kube, target, forwards=transport.forwards_needed(template), in_cluster=True)
    try:
        outcome = engine.capture(kube, target, template, out_dir=tmp_path, capture_name="e2e",
                                 settings=CaptureSettings(http_transport="auto"), http=http)
    finally:
        http.close()
    assert outcome.phase is engine.Phase.COMPLETED, outcome.records
    return dict(outcome.bundle.manifest.access)


def test_auto_in_the_cluster_goes_direct_and_else_through_pods_proxy(
        goapp_pod: GoappPod, namespace: str, tmp_path: Path, proxy_only_kubeconfig: str) -> None:
    """The reader's credentials (pods/proxy, no port-forward); this host routes to pod IPs as
    the operator's pod does. Where the pod IP does not answer (a NetworkPolicy, another
    network), auto moves on to pods/proxy and says why."""
    goapp_pod("goapp")
    kube = Kube.load(KubeTarget(kubeconfig=proxy_only_kubeconfig))
    try:
        access = _capture_in_cluster(kube, namespace, None, tmp_path / "direct")
        assert access == {"http": "direct"}, access
        access = _capture_in_cluster(kube, namespace, UNROUTED_IP, tmp_path / "unrouted")
    finally:
        kube.close()
    assert access["http"] == "proxy", access
    assert access["httpFallback"].startswith("direct: "), access


# ---------------------------------------------------------------- a server bound to 127.0.0.1


def test_a_server_on_localhost_only_is_reached_by_port_forward_under_auto(
        testbed: Testbed, goapp_pod: GoappPod, namespace: str, tmp_path: Path) -> None:
    goapp_pod("local", image="goapp-localhost")
    doc = go_evidence(create(testbed, namespace, "local", "go-profile", tmp_path / "auto", params=FAST))
    access = doc["access"]
    assert access["http"] == "port-forward", access
    assert "direct: " not in access["httpFallback"], access  # not tried from outside the cluster
    assert access["httpFallback"].startswith("proxy: ") and "127.0.0.1" in access["httpFallback"], access

    # Forced through pods/proxy, the Go collectors fail and say why; nothing else breaks.
    run = create(testbed, namespace, "local", "go-profile", tmp_path / "proxy", "--transport", "proxy", params=FAST)
    assert run.bundle is not None and "Traceback" not in run.stderr, run
    doc = read_manifest(members(run.bundle))
    assert set(statuses(doc).values()) == {"failed"}, doc["collectors"]
    cpu = next(c for c in doc["collectors"] if c["name"] == "pprof-cpu")
    assert "probably listens on 127.0.0.1 only" in cpu["message"], cpu


# ---------------------------------------------------------------- direct


def test_direct_reaches_the_pod_ip_from_this_host(
        testbed: Testbed, goapp_pod: GoappPod, namespace: str, tmp_path: Path) -> None:
    pod_ip = str(goapp_pod("goapp").status.pod_ip)  # type: ignore[union-attr]
    # The testbed's host routes to the pod network: the premise of this test, checked first.
    assert podhttp.reach(pod_ip, 6060, 2.0) == (podhttp.Reach.OPEN, "")
    run = create(testbed, namespace, "goapp", "go-profile", tmp_path, "--transport", "direct", params=FAST)
    doc = go_evidence(run)
    assert doc["access"]["http"] == "direct" and "httpFallback" not in doc["access"]
    assert layout.PPROF_CPU in members(run.bundle)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the operator


@pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")  # kopf's own, see test_operator.py
def test_operator_captures_through_pods_proxy_and_says_so_in_the_status(
        operator: KopfRunner, kube: Kube, goapp_pod: GoappPod, namespace: str) -> None:
    goapp_pod("api-1")
    create_capture(kube, namespace, "via-proxy", {
        "target": {"pod": "api-1"}, "template": "go-profile",
        "parameters": {"cpuSeconds": 1, "traceSeconds": 1, "transport": "proxy"}})
    status = wait_done(kube, namespace, "via-proxy")["status"]
    assert status["phase"] == "Completed", status
    [pod] = status["pods"]
    assert pod["access"]["http"] == "proxy", pod
    assert all(c["status"] == "ok" for c in pod["collectors"]), pod["collectors"]
