"""The Helm chart of the operator (charts/debugcap) against the testbed's helm and API server.

Cases:
* the packaged chart carries the repository's crds/ (its crds/ is a link to them)
* ``helm lint --strict`` passes; ``helm template`` renders the objects each mode needs
  (all namespaces, asked for with serveKubeSystem: ClusterRoles; a list, the default: a Role per
  namespace), with a non-root Deployment, S3 credentials from a Secret and a liveness probe
* no rule grants secrets, wildcards, or anything outside the operator's list
* presigned downloads (on by default) render the admission policy and its binding, named after the
  release, the users' ClusterRole <release>-download and the operator's settings; off, none of them
* every rendered manifest passes ``kubectl apply --dry-run=server``
* with the ServiceAccount and its RBAC applied for real, ``kubectl auth can-i`` as the
  ServiceAccount allows what captures need and refuses secrets, deleting pods, deployments

* the Deployment itself, running the operator image ``make image`` builds from the repository's
  Dockerfile (buildah, testbed/image_build.py) and the node's containerd pulls from the testbed's
  registry (pullPolicy Always), carries out a DebugCapture into MinIO and deletes its bundle with it
* the base image's rootfs tar and both images (base and operator) hold none of the host's apt
  settings: no 99mmdebstrap, no host option file, only the neutral deb.debian.org sources
* ``make deploy``'s values with another pushed digest render another pod template (so the pods roll)
"""

from __future__ import annotations

import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed import builds, registry

from .conftest import Testbed, kubectl

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "debugcap"
# Offline helm knows of no ValidatingAdmissionPolicy (the helm test's policy needs Kubernetes 1.30).
OFFLINE = ["--kube-version", "1.30.0"]
S3_VALUES = ["--set", "s3.endpoint=minio.example:9000", *OFFLINE]


def helm(*args: str) -> str:
    res = subprocess.run([str(builds.binary("helm")), *args], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res.stdout




def render(release: str, namespace: str, *values: str) -> list[dict[str, Any]]:
    # The helm test hook's objects are test_chart_helm_test.py's: the operator's alone here.
    text = helm("template", release, str(CHART), "--namespace", namespace, *S3_VALUES, "--set", "tests.enabled=false",
                *values)
    return [d for d in yaml.safe_load_all(text) if d]


def kinds(docs: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return sorted((d["kind"], d["metadata"].get("namespace")) for d in docs)


def rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's rules: every Role and ClusterRole but the one the chart makes for users."""
    return [r for d in docs if d["kind"] in ("ClusterRole", "Role") and not is_user_role(d) for r in d["rules"]]


def is_user_role(doc: dict[str, Any]) -> bool:
    return doc["kind"] == "ClusterRole" and doc["metadata"]["name"].endswith("-download")


def grants(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every rule."""
    return {(g, res, v) for r in rules(docs) for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]}


# Everything the operator may be granted; nothing outside this.
ALLOWED = {
    ("", "namespaces", "get"),  # template namespace selectors, the commands opt-in label
    ("", "pods", "get"), ("", "pods", "list"), ("", "pods", "watch"),
    ("", "pods/exec", "create"), ("", "pods/portforward", "create"), ("", "pods/log", "get"),
    ("", "pods/exec", "get"), ("", "pods/portforward", "get"), ("", "pods/proxy", "get"),
    ("", "pods/ephemeralcontainers", "patch"),
    ("", "events", "list"), ("", "events", "create"), ("", "nodes", "get"),
    *{("apps", k, "get") for k in ("deployments", "statefulsets", "daemonsets", "replicasets")},
    *{("debugcap.io", "debugcaptures", v) for v in ("get", "list", "watch", "create", "patch", "delete")},
    *{("debugcap.io", p, v) for p in ("debugschedules", "debugcapturetemplates") for v in ("get", "list", "watch",
                                                                                           "patch")},
    *{("debugcap.io", f"{p}/status", v) for p in ("debugcaptures", "debugschedules", "debugcapturetemplates")
      for v in ("get", "patch")},
    *{("debugcap.io", f"{p}/finalizers", "update") for p in ("debugcaptures", "debugschedules",
                                                            "debugcapturetemplates", "debugtriggers")},
    *{("debugcap.io", "debugtriggers", v) for v in ("get", "list", "watch", "patch")},
    *{("debugcap.io", f"{p}/status", v) for p in ("debugtriggers", "debugdownloads") for v in ("get", "patch")},
    *{("debugcap.io", "debugdownloads", v) for v in ("get", "list", "watch", "patch", "delete")},
    # Only the download policy and its binding, by name (resourceNames).
    ("admissionregistration.k8s.io", "validatingadmissionpolicies", "get"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings", "get"),
    # The leader election (release namespace only): its Lease (get/update by name), and the
    # leader's label on its own pod, which the Alertmanager Service selects.
    ("coordination.k8s.io", "leases", "create"), ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "update"), ("", "pods", "patch"),
}


# --- offline: files, lint, rendering ----------------------------------------------------------------

def test_packaged_chart_carries_the_repository_crds(testbed: Testbed, tmp_path: Path) -> None:
    """The CRDs have one source, crds/; the chart's crds/ is a link to it, which helm follows."""
    assert (CHART / "crds").is_symlink()
    helm("package", str(CHART), "--destination", str(tmp_path))
    (packaged,) = tmp_path.glob("debugcap-*.tgz")
    with tarfile.open(packaged) as tar:
        inside = {Path(m.name).name: tar.extractfile(m).read()  # type: ignore[union-attr]
                  for m in tar.getmembers() if m.name.startswith("debugcap/crds/") and m.isfile()}
    theirs = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    assert inside == theirs and len(theirs) == 5
    assert {"debugcap.io_debugtriggers.yaml", "debugcap.io_debugdownloads.yaml"} <= set(inside)


def test_helm_lint_passes(testbed: Testbed) -> None:
    out = helm("lint", "--strict", str(CHART), *S3_VALUES)
    assert "0 chart(s) failed" in out
    helm("lint", "--strict", str(CHART), *S3_VALUES, "--set", "namespaces={a,b}", "--set", "rbac.nodes=false")


# The chart's default is namespaces: [default]; every namespace (kube-system included) is asked for.
EVERY_NAMESPACE = ("--set-json", "namespaces=[]", "--set", "serveKubeSystem=true")


def test_template_without_namespaces_serves_all_with_cluster_roles(testbed: Testbed) -> None:
    docs = render("dc", "ops", *EVERY_NAMESPACE)
    assert kinds(docs) == [("ClusterRole", None), ("ClusterRole", None), ("ClusterRoleBinding", None),
                           ("Deployment", "ops"), ("PodDisruptionBudget", "ops"), ("Role", "ops"),
                           ("RoleBinding", "ops"), ("ServiceAccount", "ops"), ("ValidatingAdmissionPolicy", None),
                           ("ValidatingAdmissionPolicyBinding", None)]
    assert grants(docs) <= ALLOWED, grants(docs) - ALLOWED
    assert {("", "pods/exec", "create"), ("", "nodes", "get"), ("debugcap.io", "debugcaptures/status", "patch"),
            ("debugcap.io", "debugcaptures/finalizers", "update")} <= grants(docs)
    assert not any("secrets" in r["resources"] or "*" in r["resources"] + r["verbs"] + r["apiGroups"]
                   for r in rules(docs))
    [binding] = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "dc-debugcap", "namespace": "ops"}]

    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    spec = deploy["spec"]["template"]["spec"]
    [container] = spec["containers"]
    # Two replicas, one leading (a Lease): rolled one at a time, a standby up before a pod stops.
    assert deploy["spec"]["replicas"] == 2 and deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    assert container["command"] == ["debugcap-operator"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    assert "DEBUGCAP_OPERATOR_NAMESPACES" not in env
    for name, key in (("DEBUGCAP_S3_ACCESS_KEY", "accessKey"), ("DEBUGCAP_S3_SECRET_KEY", "secretKey")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "debugcap-s3", "key": key}
        assert "value" not in env[name]
    assert env["DEBUGCAP_S3_ENDPOINT"]["value"] == "minio.example:9000"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert env["DEBUGCAP_OPERATOR_LIVENESS_PORT"]["value"] == str(ports["healthz"])
    assert env["DEBUGCAP_OPERATOR_METRICS_PORT"]["value"] == str(ports["metrics"])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}


def test_debug_containers_are_granted_and_configured_only_when_enabled(testbed: Testbed) -> None:
    def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
        [deploy] = [d for d in docs if d["kind"] == "Deployment"]
        return {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}

    on = render("dc", "ops", "--set", "debugContainer.image=mirror.local/busybox:1.37",
                "--set", "debugContainer.allowedImages={a:1,b:2}")
    assert ("", "pods/ephemeralcontainers", "patch") in grants(on)
    assert env_of(on)["DEBUGCAP_OPERATOR_EPHEMERAL_CONTAINERS"] == "true"
    assert env_of(on)["DEBUGCAP_OPERATOR_DEBUG_IMAGE"] == "mirror.local/busybox:1.37"
    assert env_of(on)["DEBUGCAP_OPERATOR_ALLOWED_DEBUG_IMAGES"] == "a:1,b:2"
    off = render("dc", "ops", "--set", "debugContainer.enabled=false")
    assert not any("ephemeralcontainers" in r for _group, r, _verb in grants(off))
    assert env_of(off)["DEBUGCAP_OPERATOR_EPHEMERAL_CONTAINERS"] == "false"


def test_the_operators_default_transport_is_auto_and_can_be_pinned(testbed: Testbed) -> None:
    def transport(docs: list[dict[str, Any]]) -> str:
        [deploy] = [d for d in docs if d["kind"] == "Deployment"]
        env = {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
        return str(env["DEBUGCAP_OPERATOR_TRANSPORT"])

    assert transport(render("tr", "ops")) == "auto"
    assert transport(render("tr", "ops", "--set", "operator.transport=port-forward")) == "port-forward"


def test_template_with_namespaces_uses_a_role_in_each(testbed: Testbed) -> None:
    docs = render("dc", "ops", "--set", "namespaces={shop,web}", "--set", "rbac.nodes=false",
                  "--set", "s3.existingSecret=my-s3")
    assert kinds(docs) == [("ClusterRole", None), ("ClusterRole", None), ("ClusterRoleBinding", None),
                           ("Deployment", "ops"), ("PodDisruptionBudget", "ops"), ("Role", "ops"), ("Role", "shop"),
                           ("Role", "web"), ("RoleBinding", "ops"), ("RoleBinding", "shop"),
                           ("RoleBinding", "web"), ("ServiceAccount", "ops"), ("ValidatingAdmissionPolicy", None),
                           ("ValidatingAdmissionPolicyBinding", None)]
    [cluster_role] = [d for d in docs if d["kind"] == "ClusterRole" and not is_user_role(d)]
    # Cluster-wide: only the cluster-scoped templates (nodes are off here), the download policy and
    # get namespaces (a capture's namespace labels, for templates).
    assert {r for rule in cluster_role["rules"] for r in rule["resources"]} == {
        "namespaces", "debugcapturetemplates", "debugcapturetemplates/status", "debugcapturetemplates/finalizers",
        "validatingadmissionpolicies", "validatingadmissionpolicybindings"}
    assert grants(docs) <= ALLOWED
    assert ("", "nodes", "get") not in grants(docs)
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DEBUGCAP_OPERATOR_NAMESPACES"]["value"] == "shop,web"
    assert env["DEBUGCAP_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "my-s3"


def test_presigned_downloads_render_the_policy_the_user_role_and_the_settings_only_when_on(testbed: Testbed) -> None:
    on = render("dc", "ops", "--set", "operator.presignedTTL=2m",
                "--set", "operator.presignedEndpoint=https://s3.example.com")
    [policy] = [d for d in on if d["kind"] == "ValidatingAdmissionPolicy"]
    [binding] = [d for d in on if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert policy["metadata"]["name"] == binding["spec"]["policyName"] == "dc-debugcap-downloads"
    [user] = [d for d in on if is_user_role(d)]
    assert user["rules"] == [{"apiGroups": ["debugcap.io"], "resources": ["debugdownloads"],
                              "verbs": ["create", "get", "delete"]}]
    [admission] = [r for r in rules(on) if r["apiGroups"] == ["admissionregistration.k8s.io"]]
    assert admission["resourceNames"] == ["dc-debugcap-downloads"] and admission["verbs"] == ["get"]
    [deploy] = [d for d in on if d["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["DEBUGCAP_OPERATOR_PRESIGNED_DOWNLOADS"], env["DEBUGCAP_OPERATOR_PRESIGNED_TTL"],
            env["DEBUGCAP_OPERATOR_PRESIGNED_ENDPOINT"], env["DEBUGCAP_OPERATOR_DOWNLOAD_POLICY"]) == (
        "true", "2m", "https://s3.example.com", "dc-debugcap-downloads")
    off = render("dc", "ops", "--set", "operator.presignedDownloads=false")
    assert not [d for d in off if d["kind"].startswith("ValidatingAdmissionPolicy") or is_user_role(d)]
    assert not any(g == "admissionregistration.k8s.io" for g, _r, _v in grants(off))
    # Requests made before it was turned off are still cleaned up.
    assert ("debugcap.io", "debugdownloads", "delete") in grants(off)


def test_template_refuses_to_render_without_an_s3_endpoint(testbed: Testbed) -> None:
    res = subprocess.run([str(builds.binary("helm")), "template", "dc", str(CHART), *OFFLINE], capture_output=True,
                         text=True)
    assert res.returncode != 0 and "s3.endpoint is required" in res.stderr


# --- against the testbed's API server -----------------------------------------------------------------

@pytest.fixture
def release() -> str:
    return f"chart-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def cluster_objects(crds: None, testbed: Testbed, release: str) -> Iterator[None]:
    """Delete the cluster-scoped objects a test created for real, whatever happens."""
    yield
    for kind in ("clusterrolebinding", "clusterrole"):
        kubectl(testbed, "delete", kind, f"{release}-debugcap-cluster", "--ignore-not-found", check=False)
    kubectl(testbed, "delete", "clusterrole", f"{release}-debugcap-download", "--ignore-not-found", check=False)
    for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
        kubectl(testbed, "delete", kind, f"{release}-debugcap-downloads", "--ignore-not-found", check=False)


@pytest.mark.parametrize("mode", ["all-namespaces", "namespace-list"])
def test_rendered_manifests_pass_server_side_dry_run(testbed: Testbed, namespace: str, release: str,
                                                     mode: str) -> None:
    # The namespace-list run also renders the Alertmanager receiver: its Service and a chart-made token Secret.
    extra = ["--set", f"namespaces={{{namespace}}}", "--set", "alertWebhook.enabled=true",
             "--set", "alertWebhook.token.create=true", "--set", "alertWebhook.token.value=t0ken"] \
        if mode == "namespace-list" else []
    # --skip-tests: the hook pod's ServiceAccount is not there in a dry run.
    text = helm("template", release, str(CHART), "--namespace", namespace, *S3_VALUES, "--skip-tests", *extra)
    res = kubectl(testbed, "apply", "--dry-run=server", "-f", "-", stdin=text, check=False)
    assert res.returncode == 0, res.stderr
    assert "deployment.apps/" in res.stdout and "(server dry run)" in res.stdout
    if mode == "namespace-list":
        assert f"service/{release}-debugcap-alerts" in res.stdout and "secret/" in res.stdout
    # Nothing was created.
    assert kubectl(testbed, "get", "clusterrole", f"{release}-debugcap-cluster", check=False).returncode != 0


def can_i(testbed: Testbed, sa: str, verb: str, resource: str, namespace: str | None) -> bool:
    """``kubectl auth can-i``; ``resource`` may be ``pods/exec`` (kubectl itself would read ``exec``
    as an object name, so the part after the slash goes to ``--subresource``)."""
    where = ["-n", namespace] if namespace else ["--all-namespaces"]
    kind, _, sub = resource.partition("/")
    res = kubectl(testbed, "auth", "can-i", verb, kind, *(["--subresource", sub] if sub else []), *where,
                  f"--as={sa}", check=False)
    answer = res.stdout.strip()
    assert answer in ("yes", "no"), res.stderr
    return answer == "yes"


def apply_rbac_only(testbed: Testbed, docs: list[dict[str, Any]], sa: str, namespace: str) -> None:
    wanted = [d for d in docs if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                                               "RoleBinding")]
    kubectl(testbed, "apply", "-f", "-", stdin=yaml.safe_dump_all(wanted))
    # The RBAC authorizer reads roles from an informer: wait until the new bindings are seen.
    deadline = time.monotonic() + 15
    while not can_i(testbed, sa, "list", "debugcaptures.debugcap.io", namespace):
        assert time.monotonic() < deadline, "the new RoleBinding was not in effect after 15 s"
        time.sleep(0.3)


def test_service_account_may_capture_and_nothing_more(testbed: Testbed, namespace: str, release: str,
                                                      cluster_objects: None) -> None:
    sa = f"system:serviceaccount:{namespace}:{release}-debugcap"
    apply_rbac_only(testbed, render(release, namespace, *EVERY_NAMESPACE), sa, namespace)
    for verb, resource in [("create", "pods/exec"), ("create", "pods/portforward"), ("get", "pods/exec"),
                           ("get", "pods/portforward"), ("get", "pods/log"),
                           ("list", "pods"), ("watch", "pods"), ("list", "events"), ("create", "events"),
                           ("watch", "debugcaptures.debugcap.io"), ("patch", "debugcaptures.debugcap.io/status"),
                           ("get", "deployments.apps"), ("patch", "pods/ephemeralcontainers"),
                           ("get", "pods/proxy"), ("delete", "debugdownloads.debugcap.io"),
                           ("patch", "debugdownloads.debugcap.io/status")]:
        assert can_i(testbed, sa, verb, resource, namespace), f"{verb} {resource} should be allowed"
        assert can_i(testbed, sa, verb, resource, None), f"{verb} {resource} should be allowed everywhere"
    assert can_i(testbed, sa, "get", "nodes", None)
    assert can_i(testbed, sa, "get", "namespaces", None)
    assert can_i(testbed, sa, "watch", "debugcapturetemplates.debugcap.io", None)
    assert not can_i(testbed, sa, "list", "namespaces", None)
    for verb, resource in [("get", "secrets"), ("list", "secrets"), ("delete", "pods"), ("create", "pods"),
                           ("create", "deployments.apps"), ("update", "deployments.apps"), ("get", "configmaps"),
                           ("create", "roles.rbac.authorization.k8s.io"), ("delete", "namespaces"),
                           ("create", "debugcapturetemplates.debugcap.io")]:
        assert not can_i(testbed, sa, verb, resource, namespace), f"{verb} {resource} should be refused"
        assert not can_i(testbed, sa, verb, resource, None), f"{verb} {resource} should be refused everywhere"


def test_namespaced_service_account_reaches_only_its_namespaces(testbed: Testbed, namespace: str, release: str,
                                                                cluster_objects: None) -> None:
    sa = f"system:serviceaccount:{namespace}:{release}-debugcap"
    apply_rbac_only(testbed, render(release, namespace, "--set", f"namespaces={{{namespace}}}",
                                    "--set", "rbac.nodes=false"), sa, namespace)
    assert can_i(testbed, sa, "create", "pods/exec", namespace)
    assert can_i(testbed, sa, "patch", "debugcaptures.debugcap.io/status", namespace)
    assert can_i(testbed, sa, "watch", "debugcapturetemplates.debugcap.io", None)
    assert not can_i(testbed, sa, "create", "pods/exec", "kube-system")
    assert not can_i(testbed, sa, "create", "pods/exec", None)
    assert not can_i(testbed, sa, "list", "pods", "default")
    assert not can_i(testbed, sa, "get", "nodes", None)
    assert not can_i(testbed, sa, "get", "secrets", namespace)
    assert not can_i(testbed, sa, "delete", "pods", namespace)
    assert not can_i(testbed, sa, "create", "deployments.apps", namespace)


# --- the Deployment, run -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def operator_image(testbed: Testbed) -> str:
    """``make image``: the Dockerfile built by buildah and pushed to the testbed's registry (a
    cold build takes minutes, a warm one seconds). No builder is a failure, never a fallback to
    the hand-assembled image: this test is about the image users build."""
    from testbed import image_build

    try:
        return image_build.build_operator().ref
    except image_build.BuildError as err:
        pytest.fail(f"the operator image could not be built from the Dockerfile: {err}")


def test_the_images_carry_none_of_the_hosts_apt_settings(operator_image: str) -> None:
    """mmdebstrap's --aptopt had written the host's apt options (its artifact registry's, its
    appstream hook) into /etc/apt/apt.conf.d/99mmdebstrap for good, and the host's source file
    was pasted into sources.list.d: both reached the operator image, whose final stage is FROM
    the base."""
    from testbed import image_build

    base = image_build.base_ref()
    rootfs = image_build.BUILD_CACHE / f"python-base-{base.rpartition(':')[2]}.tar"
    assert rootfs.is_file(), f"ensure_base keeps the bootstrapped rootfs in the cache: {rootfs}"
    with tarfile.open(rootfs) as tar:
        names = {m.name.removeprefix("./").rstrip("/") for m in tar}
    # The host's own option files, by name (the Debian packages' defaults, which the image's
    # apt installs too, aside).
    host_options = {f"etc/apt/apt.conf.d/{p.name}" for p in Path("/etc/apt/apt.conf.d").iterdir()
                    if "acquire" in p.read_text(errors="replace").lower()}
    assert not names & host_options, sorted(names & host_options)
    assert f"etc/apt/apt.conf.d/{image_build.HOST_APT_CONF}" not in names
    assert "etc/apt/apt.conf.d/99mmdebstrap" not in names
    assert image_build.host_apt_leftovers(rootfs) == []
    with image_build.exclusive():
        for ref in (base, operator_image):
            with image_build.mounted(ref) as root:
                assert image_build.host_apt_leftovers(root) == [], ref
                assert not {p.relative_to(root).as_posix() for p in (root / "etc/apt/apt.conf.d").iterdir()} \
                    & host_options, ref


def test_a_new_push_renders_another_pod_template(testbed: Testbed) -> None:
    """``make deploy`` after ``make image``: same tag, same values but the digest; without it helm
    renders the same pod template and the running pods keep the old code."""
    from testbed import image_build

    def template(digest: str) -> dict[str, Any]:
        values = image_build.chart_values("10.250.0.1:15000/debugcap/operator:0.1.0", api_host="10.250.0.1",
                                          api_port=6443, digest=digest)
        [deployment] = [d for d in render("dg", "debugcap-system", *values) if d["kind"] == "Deployment"]
        pod: dict[str, Any] = deployment["spec"]["template"]
        return pod

    first, second = template("sha256:" + "1" * 64), template("sha256:" + "2" * 64)
    assert first["metadata"]["annotations"][image_build.DIGEST_ANNOTATION] == "sha256:" + "1" * 64
    assert first != second and first == template("sha256:" + "1" * 64)


def test_the_charts_deployment_runs_the_operator_and_it_carries_out_a_capture(
        testbed: Testbed, namespace: str, release: str, cluster_objects: None, goapp_pod: Any,
        operator_image: str, tmp_path: Path) -> None:
    """The chart as a user installs it: its ServiceAccount, RBAC and Deployment (read-only root,
    uid 10001, S3 keys from a Secret), running the Dockerfile's image pulled from the testbed's
    registry (the pod's imageID is the registry's digest). The testbed has no
    kube-proxy, so the one thing changed is where the API server is: its own address instead of
    the `kubernetes` Service, through extraEnv. Its Alertmanager receiver is on, with the token
    mounted from a Secret: the operator reads the token at start-up and stops without it, and after
    the capture the receiver answers on the pod's address (401 without the token, 200 with it)."""
    from urllib.parse import urlsplit

    from debugcap.kube.client import Kube, KubeTarget
    from debugcap.settings import S3Settings
    from debugcap.storage import base as storage_base
    from debugcap.storage.s3 import S3Backend
    s3 = testbed.s3
    kubectl(testbed, "-n", namespace, "create", "secret", "generic", "s3",
            f"--from-literal=accessKey={s3['DEBUGCAP_S3_ACCESS_KEY']}",
            f"--from-literal=secretKey={s3['DEBUGCAP_S3_SECRET_KEY']}")
    token = uuid.uuid4().hex
    kubectl(testbed, "-n", namespace, "create", "secret", "generic", "alert-token", f"--from-literal=bearer={token}")
    api = urlsplit(Kube.load(KubeTarget(kubeconfig=testbed.kubeconfig)).configuration.host)
    text = helm("template", release, str(CHART), "--namespace", namespace, "--skip-tests", *OFFLINE,
                "--set", f"image.repository={operator_image.rpartition(':')[0]}",
                "--set-string", f"image.tag={operator_image.rpartition(':')[2]}",
                "--set", "image.pullPolicy=Always", "--set", f"namespaces={{{namespace}}}",
                "--set", f"s3.endpoint={s3['DEBUGCAP_S3_ENDPOINT']}", "--set", "s3.secure=false",
                "--set", f"s3.bucket={s3['DEBUGCAP_S3_BUCKET']}", "--set", "s3.existingSecret=s3",
                "--set", "operator.extraEnv[0].name=KUBERNETES_SERVICE_HOST",
                "--set", f"operator.extraEnv[0].value={api.hostname}",
                "--set", "operator.extraEnv[1].name=KUBERNETES_SERVICE_PORT",
                "--set-string", f"operator.extraEnv[1].value={api.port}",
                "--set", "alertWebhook.enabled=true", "--set", "alertWebhook.token.secretName=alert-token",
                "--set", "alertWebhook.token.key=bearer")
    deployment = f"{release}-debugcap"
    try:
        kubectl(testbed, "apply", "-f", "-", stdin=text)
        rollout = kubectl(testbed, "-n", namespace, "rollout", "status", f"deployment/{deployment}",
                          "--timeout=120s", check=False, timeout=130)
        assert rollout.returncode == 0, (rollout.stderr, _operator_log(testbed, namespace, deployment))
        # Pulled from the registry by the kubelet's containerd, not imported by hand.
        image_id = kubectl(testbed, "-n", namespace, "get", "pods", "-l", f"app.kubernetes.io/instance={release}",
                           "-o", "jsonpath={.items[0].status.containerStatuses[0].imageID}").stdout.strip()
        repository = operator_image.rpartition(":")[0]
        assert image_id.startswith(f"{repository}@sha256:"), image_id
        assert image_id.partition("@")[2] == registry.manifest_digest(repository.partition("/")[2],
                                                                       operator_image.rpartition(":")[2])

        goapp_pod("goapp")
        kube = Kube.load(KubeTarget(kubeconfig=testbed.kubeconfig))
        custom = kube.custom()
        custom.create_namespaced_custom_object("debugcap.io", "v1alpha1", namespace, "debugcaptures", {
            "apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture", "metadata": {"name": "in-cluster"},
            "spec": {"target": {"pod": "goapp"}, "template": "go-profile",
                     "parameters": {"cpuSeconds": 1, "traceSeconds": 1}}})
        deadline = time.monotonic() + 90
        status: dict[str, Any] = {}
        while status.get("phase") not in ("Completed", "PartiallyFailed", "Failed"):
            assert time.monotonic() < deadline, (status, _operator_log(testbed, namespace, deployment))
            time.sleep(0.5)
            status = custom.get_namespaced_custom_object("debugcap.io", "v1alpha1", namespace, "debugcaptures",
                                                         "in-cluster").get("status") or {}
        assert status["phase"] == "Completed", (status, _operator_log(testbed, namespace, deployment))
        bundle = status["pods"][0]["bundle"]
        store = S3Backend(S3Settings(endpoint=s3["DEBUGCAP_S3_ENDPOINT"], bucket=s3["DEBUGCAP_S3_BUCKET"],
                                     access_key=s3["DEBUGCAP_S3_ACCESS_KEY"], secret_key=s3["DEBUGCAP_S3_SECRET_KEY"],
                                     secure=False))
        dest = tmp_path / "bundle.tar.gz"
        store.get(key=bundle["key"], dest=dest)
        assert storage_base.file_sha256(dest) == (bundle["sha256"], bundle["sizeBytes"])

        # Deleting it while the operator runs takes its bundle out of the bucket (its finalizer).
        custom.delete_namespaced_custom_object("debugcap.io", "v1alpha1", namespace, "debugcaptures", "in-cluster")
        deadline = time.monotonic() + 60
        while kubectl(testbed, "-n", namespace, "get", "debugcapture", "in-cluster", check=False).returncode == 0:
            assert time.monotonic() < deadline, _operator_log(testbed, namespace, deployment)
            time.sleep(0.5)
        assert bundle["key"] not in store.list(prefix=bundle["key"])

        # The receiver, long up by now, on the leading pod's own address (no kube-proxy here); the
        # alerts Service selects that pod by the label the leader sets.
        pod_ip = kubectl(testbed, "-n", namespace, "get", "pods", "-l",
                         f"app.kubernetes.io/instance={release},debugcap.io/leader=true",
                         "-o", "jsonpath={.items[0].status.podIP}").stdout.strip()
        assert _post_alerts(f"http://{pod_ip}:9093/alerts", "not-the-token") == 401
        assert _post_alerts(f"http://{pod_ip}:9093/alerts", token) == 200, _operator_log(testbed, namespace,
                                                                                      deployment)
    finally:
        # The capture first, while its operator runs to remove its finalizer (and its bundle):
        # otherwise the namespace could never finish deleting.
        kubectl(testbed, "-n", namespace, "delete", "debugcapture", "in-cluster", "--ignore-not-found",
                "--timeout=60s", check=False, timeout=70)
        kubectl(testbed, "-n", namespace, "delete", "deployment", deployment, "--ignore-not-found", "--wait=true",
                check=False)


def _post_alerts(url: str, token: str) -> int:
    """The status of an Alertmanager notification without firing alerts."""
    req = urllib.request.Request(url, data=b'{"version": "4", "status": "resolved", "alerts": []}', method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _operator_log(testbed: Testbed, namespace: str, deployment: str) -> str:
    res = kubectl(testbed, "-n", namespace, "logs", f"deployment/{deployment}", "--tail=60", check=False)
    pods = kubectl(testbed, "-n", namespace, "get", "pods", "-o", "wide", check=False)
    return f"{pods.stdout}\n{res.stdout}{res.stderr}"
