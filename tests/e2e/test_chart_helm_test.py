"""``helm test`` of the chart (charts/debugcap/templates/tests/, debugcap/operator/selftest.py), for
real: the chart installed with ``helm install`` from the image ``make image`` builds from the
Dockerfile (test_chart.py's ``operator_image``), the release in one namespace and serving another.

Cases:
* rendered: a ServiceAccount <fullname>-test beside the operator, a Role and RoleBinding in the
  served namespace, a ValidatingAdmissionPolicy and its binding, and the hook pod (not matched by
  the operator's selector); ``tests.enabled=false`` renders none of them; a tests.namespace the
  operator does not serve fails to render, naming it
* applied for real, ``kubectl auth can-i`` as that ServiceAccount: create pods and DebugCaptures in
  the served namespace, get and delete only the two the test names, nothing else (no list, exec,
  secrets, other pods, other namespaces)
* the policy applied for real, ``kubectl create --dry-run=server --as`` that ServiceAccount: the
  selftest's own target pod is admitted; the same pod privileged, in another image, under another
  name, with the ServiceAccount's token or on the host's network is denied with the policy's
  message; the same pods from the admin are not the policy's business
* ``helm test <release> --logs`` passes: the test pod started a pod in the served namespace, the
  operator captured it into MinIO (Completed, a bundle key), and the pod and the DebugCapture
  are gone afterwards (the finished test pod stays for ``--logs``)
* with the operator scaled to 0, ``helm test`` fails (non-zero) within tests.timeoutSeconds,
  saying the capture did not end and to check the operator, and still leaves nothing behind
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from debugcap.operator import selftest
from testbed import builds, image_build, layout

from .conftest import Testbed, kubectl
from .test_chart import (
    CHART,
    S3_VALUES,
    _operator_log,
    can_i,
    operator_image,  # noqa: F401 (a fixture: `make image`, built once and cached)
    render,
)
from .test_chart_upgrade import helm

# Short, so the failing case is quick; the passing capture (disk-usage of an idle pod) takes seconds.
TIMEOUT_SECONDS = 45


@pytest.fixture
def served(core: k8s.CoreV1Api) -> Iterator[str]:
    """The namespace the operator serves, where the test's pod and DebugCapture go."""
    name = f"e2e-ht-{uuid.uuid4().hex[:6]}"
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels={"debugcap-e2e": "1"})))
    deadline = time.monotonic() + 30
    while not core.list_namespaced_service_account(name).items:
        assert time.monotonic() < deadline, f"no default ServiceAccount in {name} after 30 s"
        time.sleep(0.5)
    yield name
    core.delete_namespace(name, grace_period_seconds=0)


TESTS_ON = ("--set", "tests.enabled=true")


def test_the_test_renders_its_account_a_role_in_the_served_namespace_and_one_hook(testbed: Testbed) -> None:
    docs = [d for d in render("dc", "ops", "--set", "namespaces={shop,web}", *TESTS_ON)
            if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "helm-test"]
    assert sorted((d["kind"], d["metadata"]["name"], d["metadata"].get("namespace", "")) for d in docs) == [
        ("Pod", "dc-debugcap-test", "ops"), ("Role", "dc-debugcap-test", "shop"),
        ("RoleBinding", "dc-debugcap-test", "shop"), ("ServiceAccount", "dc-debugcap-test", "ops"),
        ("ValidatingAdmissionPolicy", "dc-debugcap-test-pods", ""),
        ("ValidatingAdmissionPolicyBinding", "dc-debugcap-test-pods", "")]
    [pod] = [d for d in docs if d["kind"] == "Pod"]
    assert pod["metadata"]["annotations"] == {"helm.sh/hook": "test",
                                              "helm.sh/hook-delete-policy": "before-hook-creation"}
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] != "debugcap"  # the Deployment's selector
    assert pod["spec"]["serviceAccountName"] == "dc-debugcap-test"
    [container] = pod["spec"]["containers"]
    assert container["command"] == ["python3", "-m", "debugcap.operator.selftest"]
    assert "--namespace=shop" in container["args"] and "--name=dc-debugcap-test" in container["args"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    [policy] = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    [role] = [d for d in docs if d["kind"] == "Role"]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["dc-debugcap-test-target"],
         "verbs": ["get", "delete"]},
        {"apiGroups": ["debugcap.io"], "resources": ["debugcaptures"], "verbs": ["create"]},
        {"apiGroups": ["debugcap.io"], "resources": ["debugcaptures"], "resourceNames": ["dc-debugcap-test"],
         "verbs": ["get", "delete"]}]

    off = render("dc", "ops", "--set", "tests.enabled=false")
    assert not [d for d in off if d["metadata"]["name"].endswith("-test")]
    res = subprocess.run([str(builds.binary("helm")), "template", "dc", str(CHART), *S3_VALUES, *TESTS_ON,
                          "--set", "namespaces={shop}", "--set", "tests.namespace=web"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and 'tests.namespace "web" is not among namespaces [shop]' in res.stderr


def test_the_tests_service_account_may_create_its_two_objects_and_nothing_more(
        testbed: Testbed, crds: None, namespace: str, served: str) -> None:
    release = f"ht-{uuid.uuid4().hex[:6]}"
    name = f"{release}-debugcap-test"
    docs = render(release, namespace, "--set", f"namespaces={{{served}}}", *TESTS_ON)
    mine: list[dict[str, Any]] = [d for d in docs if d["kind"] in ("ServiceAccount", "Role", "RoleBinding")
                                  and d["metadata"]["name"] == name]
    assert len(mine) == 3
    kubectl(testbed, "apply", "-f", "-", stdin=yaml.safe_dump_all(mine))
    sa = f"system:serviceaccount:{namespace}:{name}"
    deadline = time.monotonic() + 15
    while not can_i(testbed, sa, "create", "pods", served):  # the authorizer's informer catches up
        assert time.monotonic() < deadline, "the test's RoleBinding was not in effect after 15 s"
        time.sleep(0.3)
    assert can_i(testbed, sa, "create", "debugcaptures.debugcap.io", served)
    for verb in ("get", "delete"):
        assert can_i_named(testbed, sa, verb, "pods", f"{name}-target", served)
        assert can_i_named(testbed, sa, verb, "debugcaptures.debugcap.io", name, served)
        assert not can_i_named(testbed, sa, verb, "pods", "someone-elses", served)
        assert not can_i_named(testbed, sa, verb, "debugcaptures.debugcap.io", "someone-elses", served)
    assert not can_i_named(testbed, sa, "patch", "pods", f"{name}-target", served)
    for verb, resource in [("list", "pods"), ("watch", "pods"), ("create", "pods/exec"), ("get", "secrets"),
                           ("list", "debugcaptures.debugcap.io"), ("patch", "debugcaptures.debugcap.io"),
                           ("create", "deployments.apps")]:
        assert not can_i(testbed, sa, verb, resource, served), f"{verb} {resource} should be refused"
    assert not can_i(testbed, sa, "create", "pods", namespace)
    assert not can_i(testbed, sa, "create", "debugcaptures.debugcap.io", "default")


def test_the_policy_admits_only_the_selftests_target_pod_from_the_tests_service_account(
        testbed: Testbed, namespace: str, served: str) -> None:
    release = f"ht-{uuid.uuid4().hex[:6]}"
    name = f"{release}-debugcap-test"
    image = "mirror.local/debugcap/operator:e2e"
    docs = render(release, namespace, "--set", f"namespaces={{{served}}}", *TESTS_ON,
                  "--set", "image.repository=mirror.local/debugcap/operator", "--set", "image.tag=e2e")
    mine = [d for d in docs if d["kind"] in ("ServiceAccount", "Role", "RoleBinding", "ValidatingAdmissionPolicy",
                                             "ValidatingAdmissionPolicyBinding")
            and d["metadata"]["name"] in (name, f"{name}-pods")]
    assert len(mine) == 5
    [hook] = [d for d in docs if d["kind"] == "Pod" and d["metadata"]["name"] == name]
    plan = selftest.parse(hook["spec"]["containers"][0]["args"])
    assert (plan.namespace, plan.image) == (served, image)
    target = selftest.target_pod(plan)
    sa = f"system:serviceaccount:{namespace}:{name}"
    who = f"the helm test's ServiceAccount {namespace}/{name}"
    try:
        kubectl(testbed, "apply", "-f", "-", stdin=yaml.safe_dump_all(mine))

        def create(pod: dict[str, Any], *, as_sa: bool = True) -> subprocess.CompletedProcess[str]:
            return kubectl(testbed, "-n", served, "create", "--dry-run=server", "-o", "name", "-f", "-",
                           *([f"--as={sa}"] if as_sa else []), stdin=yaml.safe_dump(pod), check=False)

        renamed = {**target, "metadata": {**target["metadata"], "name": "not-the-target"}}
        deadline = time.monotonic() + 30
        while "denied request" not in (res := create(renamed)).stderr:  # the policy's informer catches up
            assert time.monotonic() < deadline, f"the policy did not deny {renamed['metadata']['name']} " \
                                                f"after 30 s: {res.stdout} {res.stderr}"
            time.sleep(0.5)
        assert f"may create only the pod {served}/{name}-target" in res.stderr, res.stderr
        assert f"ValidatingAdmissionPolicy '{name}-pods'" in res.stderr, res.stderr

        admitted = create(target)
        assert admitted.returncode == 0 and admitted.stdout.strip() == f"pod/{name}-target", admitted.stderr

        def changed(edit: Any) -> dict[str, Any]:
            pod = yaml.safe_load(yaml.safe_dump(target))
            edit(pod["spec"], pod["spec"]["containers"][0])
            return pod

        def privileged(_spec: dict[str, Any], c: dict[str, Any]) -> None:
            c["securityContext"] = {"privileged": True}

        def other_image(_spec: dict[str, Any], c: dict[str, Any]) -> None:
            c["image"] = "busybox:1.37"

        def token(spec: dict[str, Any], _c: dict[str, Any]) -> None:
            spec["automountServiceAccountToken"] = True

        def host_network(spec: dict[str, Any], _c: dict[str, Any]) -> None:
            spec["hostNetwork"] = True

        for edit, said in [
                (privileged, "only unprivileged: runAsNonRoot"),
                (other_image, f"only with one container, of the image {image} (the operator's)"),
                (token, "only as the namespace's default ServiceAccount with automountServiceAccountToken: false"),
                (host_network, "only without hostNetwork, hostPID, hostIPC")]:
            res = create(changed(edit))
            assert res.returncode != 0, f"{edit.__name__}: admitted"
            assert f"denied request: {who} may create {served}/{name}-target {said}" in res.stderr, \
                (edit.__name__, res.stderr)
        # Only the test's ServiceAccount is held to it.
        res = create(changed(privileged), as_sa=False)
        assert res.returncode == 0, res.stderr
    finally:
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            kubectl(testbed, "delete", kind, f"{name}-pods", "--ignore-not-found", check=False)


def can_i_named(testbed: Testbed, sa: str, verb: str, kind: str, name: str, namespace: str) -> bool:
    """``kubectl auth can-i VERB KIND/NAME``: a rule's resourceNames at work."""
    res = kubectl(testbed, "auth", "can-i", verb, f"{kind}/{name}", "-n", namespace, f"--as={sa}", check=False)
    answer = res.stdout.strip()
    assert answer in ("yes", "no"), res.stderr
    return answer == "yes"


def test_helm_test_captures_a_pod_of_its_own_and_fails_without_the_operator(
        testbed: Testbed, crds: None, namespace: str, served: str, operator_image: str) -> None:  # noqa: F811
    release = f"ht-{uuid.uuid4().hex[:6]}"
    deployment = f"{release}-debugcap"
    kubectl(testbed, "apply", "-f", "-", stdin=image_build.s3_secret_manifest(namespace))
    # The image `make image` builds from the Dockerfile, pulled from the testbed's registry; the
    # API server's own address for the operator and the test pod (no kube-proxy on the testbed).
    helm(testbed, "install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "150s",
         *image_build.chart_values(operator_image, api_host=layout.NODE_IP, api_port=layout.APISERVER_PORT),
         "--set", f"namespaces={{{served}}}", "--set", f"tests.timeoutSeconds={TIMEOUT_SECONDS}")
    policy = kubectl(testbed, "get", "validatingadmissionpolicybinding", f"{release}-debugcap-test-pods", "-o", "name")
    assert policy.stdout.strip(), "helm install made no binding of the test's pod policy"
    try:
        passed = helm(testbed, "test", release, "-n", namespace, "--logs", "--timeout", "170s", check=False)
        out = passed.stdout + passed.stderr
        assert passed.returncode == 0, (out, _operator_log(testbed, namespace, deployment))
        assert "Phase:          Succeeded" in out and f"POD LOGS: {release}-debugcap-test" in out, out
        assert f'PASS: DebugCapture "{release}-debugcap-test" Completed; bundle ' in out, out
        print(out, file=sys.stderr)
        assert_cleaned_up(testbed, served, release)

        kubectl(testbed, "-n", namespace, "scale", f"deployment/{deployment}", "--replicas=0")
        kubectl(testbed, "-n", namespace, "wait", "--for=delete", "pod", "-l",
                "app.kubernetes.io/name=debugcap", "--timeout=60s", timeout=70)
        started = time.monotonic()
        failed = helm(testbed, "test", release, "-n", namespace, "--logs", "--timeout", "170s", check=False)
        took = time.monotonic() - started
        out = failed.stdout + failed.stderr
        assert failed.returncode != 0, out
        assert "Phase:          Failed" in out, out
        assert f"FAIL: DebugCapture {served}/{release}-debugcap-test did not end within {TIMEOUT_SECONDS}s" in out
        assert "is the operator running" in out, out
        print(f"helm test without the operator failed after {took:.0f}s", file=sys.stderr)
        assert_cleaned_up(testbed, served, release)
    finally:
        helm(testbed, "uninstall", release, "-n", namespace, "--wait", "--timeout", "120s", check=False)


def assert_cleaned_up(testbed: Testbed, served: str, release: str) -> None:
    for kind, name in (("debugcapture", f"{release}-debugcap-test"), ("pod", f"{release}-debugcap-test-target")):
        res = kubectl(testbed, "-n", served, "get", kind, name, "--ignore-not-found", "-o", "name")
        assert res.stdout.strip() == "", f"{kind} {name} left behind"
