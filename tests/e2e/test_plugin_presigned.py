"""Downloads without S3 credentials: a DebugDownload, the admission policy, the in-process operator.

* the namespace user (client-certificate auth, the testbed's user kubeconfig) with no DEBUGCAP_S3_*
  downloads a capture's bundle through the URL the operator hands out, verified against the status
  and the manifest, and `report NAME` reads it the same way; the DebugDownload is gone afterwards,
  and no URL is printed or logged;
* a user allowed to create DebugDownloads but not to get the capture is refused by the API server
  (the ValidatingAdmissionPolicy of deploy/admission), naming the capture; the plugin run as that
  user is one line;
* the operator deletes what expires: a request answered with a 10 s lifetime goes after it, and one
  a dead operator left expired is deleted by the next one as soon as it starts.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client as k8s

from debugcap.kube.client import Kube, KubeTarget
from debugcap.operator import download_links
from debugcap.resources import DOWNLOAD_POLICY
from testbed import layout

from .conftest import GoappPod, Testbed, collect_runner_leftovers, kubectl, strip_finalizers
from .test_plugin_verbs import eventually, one_line_error, plugin, read, sha256

GROUP, VERSION = "debugcap.io", "v1alpha1"
POLICY = layout.REPO / "deploy" / "admission" / "debugcap-downloads.yaml"
SIGNATURE = "X-Amz-Signature"

pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")


@pytest.fixture(scope="session")
def download_policy(crds: None, testbed: Testbed) -> None:
    """The admission policy installed, as the chart or a cluster admin installs it (left in place,
    like the CRDs: it concerns DebugDownloads only)."""
    kubectl(testbed, "apply", "-f", str(POLICY))
    # The operator answers only requests made once the policy is in force (its last change + 10 s,
    # by the API server's clock): in a fresh cluster that is moments from now. Wait for it, as the
    # tests are about other things (the plugin's own retry is covered by a unit test).
    path = "/apis/admissionregistration.k8s.io/v1/validatingadmission{}/" + DOWNLOAD_POLICY
    kube = Kube.load(KubeTarget(kubeconfig=str(testbed.kubeconfig)))
    try:
        since = download_links.in_force_since(kube.get_json(path.format("policies")),
                                              kube.get_json(path.format("policybindings")))
        server_now = _server_time(kube)
    finally:
        kube.close()
    if since is not None and since > server_now:
        time.sleep(min(30.0, (since - server_now).total_seconds() + 1))


def _server_time(kube: Kube) -> datetime:
    """The API server's clock, which the policy's times and the requests' are read on: the
    creationTimestamp of an object made now (a ConfigMap, dry run: nothing is kept)."""
    made = kube.request("POST", "/api/v1/namespaces/default/configmaps", [("dryRun", "All")],
                        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "clock-"}})
    return datetime.fromisoformat(str(made["metadata"]["creationTimestamp"]).replace("Z", "+00:00"))


@contextlib.contextmanager
def operator_running(kube: Kube, namespace: str) -> Iterator[KopfRunner]:
    """The operator serving ``namespace``, as the ``operator`` fixture runs it, but in the test: its
    output (read only once it stopped) is checked for URLs."""
    try:
        with KopfRunner(["run", "--standalone", "-n", namespace, "-m", "debugcap.operator.handlers"],
                        timeout=60) as runner:
            yield runner
    finally:
        collect_runner_leftovers()
        strip_finalizers(kube, namespace)
    assert runner.exception is None, runner.output
    assert "Traceback" not in runner.output, runner.output


def no_s3() -> dict[str, str | None]:
    return {k: None for k in os.environ if k.startswith("DEBUGCAP_S3_")}


def grant(kube: Kube, namespace: str, user: str, rules: list[k8s.V1PolicyRule]) -> None:
    rbac = k8s.RbacAuthorizationV1Api(kube.core().api_client)
    rbac.create_namespaced_role(namespace, k8s.V1Role(metadata=k8s.V1ObjectMeta(name=user), rules=rules))
    rbac.create_namespaced_role_binding(namespace, k8s.V1RoleBinding(
        metadata=k8s.V1ObjectMeta(name=user),
        role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=user),
        subjects=[k8s.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")]))


def downloads(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    listed = kube.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "debugdownloads")
    items: list[dict[str, Any]] = listed["items"]
    return items


def request_yaml(capture: str) -> str:
    return yaml.safe_dump({"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugDownload",
                           "metadata": {"generateName": f"{capture}-"}, "spec": {"capture": capture}})


def test_a_user_without_s3_credentials_downloads_through_a_presigned_url_and_others_are_refused(
        crds: None, operator_env: None, download_policy: None, kube: Kube, testbed: Testbed, namespace: str,
        goapp_pod: GoappPod, tmp_path: Path) -> None:
    goapp_pod("x")
    with operator_running(kube, namespace) as operator:
        outputs = downloads_without_s3(kube, testbed, namespace, tmp_path)
    for output in [*outputs, operator.output]:
        assert SIGNATURE not in output  # a URL is a credential while it lives: never printed, never logged


def downloads_without_s3(kube: Kube, testbed: Testbed, namespace: str, tmp_path: Path) -> list[str]:
    """The download as the namespace user, the refusals of the others; what the plugin printed."""
    made = plugin(testbed, "create", "pod/x", "-t", "go-heap", "-n", namespace, "--name", "cap-1", "--wait",
                  timeout=180)
    assert made.returncode == 0, made.stderr
    [pod] = read(kube, namespace, "cap-1")["status"]["pods"]
    bundle = pod["bundle"]
    # What the chart's ClusterRole <release>-download grants, beside reading the captures.
    grant(kube, namespace, layout.PLAIN_USER, [
        k8s.V1PolicyRule(api_groups=[GROUP], resources=["debugcaptures"], verbs=["get", "list"]),
        k8s.V1PolicyRule(api_groups=[GROUP], resources=["debugdownloads"], verbs=["create", "get", "delete"])])
    # May ask, but may not read the capture: the policy, not RBAC, refuses.
    grant(kube, namespace, "e2e-downloader", [
        k8s.V1PolicyRule(api_groups=[GROUP], resources=["debugdownloads"], verbs=["create", "get", "delete"])])
    user = testbed.user_kubeconfig
    eventually(lambda: kubectl(testbed, "auth", "can-i", "create", "debugdownloads.debugcap.io", "-n", namespace,
                               kubeconfig=user, check=False).stdout.strip() == "yes", 10, "RBAC to apply")

    # A policy just created takes a moment to be enforced: until then, the request would be admitted.
    def refused_by_policy() -> str:
        res = kubectl(testbed, "create", "-n", namespace, "--as", "e2e-downloader", "-f", "-",
                      stdin=request_yaml("cap-1"), check=False)
        return res.stderr if res.returncode != 0 else ""
    refusal = eventually(refused_by_policy, 30, "the admission policy to refuse a user who may not get the capture")
    assert "ValidatingAdmissionPolicy 'debugcap-downloads'" in refusal, refusal
    assert f"you may not get debugcaptures cap-1 in namespace {namespace}, which a download of its bundles needs" \
        in refusal
    for leftover in downloads(kube, namespace):  # admitted before the policy was in force, if any
        kube.custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, "debugdownloads",
                                                      leftover["metadata"]["name"])
    line = one_line_error(plugin(testbed, "download", "cap-1", "-n", namespace, "--as", "e2e-downloader",
                                 env=no_s3()))
    assert "forbidden" in line.lower() and "debugcaptures" in line, line

    got = plugin(testbed, "download", "cap-1", "-n", namespace, "-d", str(tmp_path / "out"), kubeconfig=user,
                 env=no_s3())
    assert got.returncode == 0, got.stderr
    path = Path(got.stdout.strip())
    assert path == tmp_path / "out" / Path(bundle["key"]).name and sha256(path) == bundle["sha256"]
    assert "through a presigned URL of debugdownload/cap-1-" in got.stderr
    assert "matches the status; every file matches its manifest" in got.stderr
    verified = plugin(testbed, "verify", str(path))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    report = plugin(testbed, "report", "cap-1", "-n", namespace, kubeconfig=user, timeout=120,
                    env={**no_s3(), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert report.returncode == 0, report.stderr
    assert "through a presigned URL" in report.stderr

    # The plugin deleted its requests (the operator removes the finalizer of its expiry daemon).
    eventually(lambda: not downloads(kube, namespace), 20, "the DebugDownloads to be deleted")
    return [got.stdout, got.stderr, report.stdout, report.stderr]


def test_the_operator_deletes_expired_requests_and_those_a_dead_operator_left(
        crds: None, download_policy: None, operator_env: None, kube: Kube, namespace: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    custom = kube.custom()
    # Left by an operator that died: answered, expired, never deleted.
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "debugdownloads", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugDownload", "metadata": {"name": "left-behind"},
        "spec": {"capture": "gone"}})
    past = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "debugdownloads", "left-behind",
        {"status": {"phase": "Ready", "expiresAt": past,
                    "urls": [{"pod": "x", "key": "k", "url": "http://s3.invalid/k?X-Amz-Signature=0"}]}},
        _content_type="application/merge-patch+json")
    monkeypatch.setenv("DEBUGCAP_OPERATOR_PRESIGNED_TTL", "10s")
    with operator_running(kube, namespace):
        eventually(lambda: not [d for d in downloads(kube, namespace) if d["metadata"]["name"] == "left-behind"],
                   20, "the expired request to go")
        # A request for a capture that does not exist: answered Failed, and deleted 10 s later.
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "debugdownloads", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugDownload", "metadata": {"name": "short"},
            "spec": {"capture": "nope"}})
        answered = eventually(lambda: [d for d in downloads(kube, namespace)
                                       if (d.get("status") or {}).get("phase")], 20, "an answer")
        [status] = [d["status"] for d in answered]
        assert status["phase"] == "Failed" and status["message"].startswith('debugcapture "nope" not found')
        started = time.monotonic()
        eventually(lambda: not downloads(kube, namespace), 30, "the answered request to expire")
        assert time.monotonic() - started >= 5  # not at once: at its expiresAt
