"""The ValidatingAdmissionPolicy that holds the helm test's ``pods create`` to its target pod
(charts/debugcap/templates/tests/selftest-policy.yaml), rendered by helm. Its verdicts on real
requests are tests/e2e/test_chart_helm_test.py's.

Cases:
* rendered with the test's Role (tests.enabled and rbac.create): a policy and its Deny binding,
  failurePolicy Fail, CREATE of pods only, for requests of the test's ServiceAccount alone
* its validations name the pod, namespace and image that the hook pod's own arguments give
  debugcap.operator.selftest (parsed back with its parser), also with tests.namespace and image.tag set
* tests.enabled=false or rbac.create=false renders neither
* a cluster without admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy (Kubernetes < 1.30)
  fails rendering, naming tests.enabled=false, rather than render the open pods create grant alone;
  the kind listed by the API server (--api-versions) renders it on any version
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from debugcap.operator import selftest

from .test_chart_namespaces import helm, render, run_helm  # noqa: F401  (helm: a fixture)

pytestmark = pytest.mark.slow

POLICY = "dc-debugcap-test-pods"


def policy_and_binding(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    [policy] = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"] == POLICY]
    [binding] = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"
                 and d["metadata"]["name"] == POLICY]
    return policy, binding


def hook_plan(docs: list[dict[str, Any]]) -> selftest.Plan:
    """What the selftest would run with: the hook pod's args through its own parser."""
    [pod] = [d for d in docs if d["kind"] == "Pod" and d["metadata"].get("annotations", {}).get("helm.sh/hook")]
    return selftest.parse(pod["spec"]["containers"][0]["args"])


@pytest.mark.parametrize("values", [
    ("--set", "namespaces={shop,web}"),
    ("--set", "namespaces={shop,web}", "--set", "tests.namespace=web", "--set", "image.tag=v9.9.9",
     "--set", "image.repository=mirror.local/debugcap"),
])
def test_the_policy_allows_the_service_account_only_the_selftests_target(helm: Path, values: tuple[str, ...]) -> None:  # noqa: F811
    docs = render(helm, *values)
    policy, binding = policy_and_binding(docs)
    assert binding["spec"] == {"policyName": POLICY, "validationActions": ["Deny"]}
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [
        {"apiGroups": [""], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["pods"]}]
    [condition] = spec["matchConditions"]
    assert condition["expression"] == "request.userInfo.username == 'system:serviceaccount:ops:dc-debugcap-test'"

    plan = hook_plan(docs)
    target = selftest.target_pod(plan)
    [where, containers, isolation, host, privilege] = [v["expression"] for v in spec["validations"]]
    assert f"request.namespace == '{plan.namespace}'" in where
    assert f"object.metadata.name == '{target['metadata']['name']}'" in where
    [container] = target["spec"]["containers"]
    assert f"variables.spec.containers[0].image == '{container['image']}'" in containers
    assert plan.image == ("mirror.local/debugcap:v9.9.9" if "image.tag=v9.9.9" in values
                          else "registry.example.com/debugcap/operator:0.1.0")
    assert "variables.spec.automountServiceAccountToken == false" in isolation
    assert target["spec"]["automountServiceAccountToken"] is False and "volumes" not in target["spec"]
    assert all(f"variables.spec.{h})" in host for h in ("hostNetwork", "hostPID", "hostIPC"))
    assert "!c.securityContext.allowPrivilegeEscalation" in privilege
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert all(v["reason"] == "Forbidden" and f"{plan.namespace}/{plan.pod}" in v["message"]
               for v in spec["validations"])


@pytest.mark.parametrize("off", ["tests.enabled=false", "rbac.create=false"])
def test_no_policy_without_the_tests_role(helm: Path, off: str) -> None:  # noqa: F811
    docs = render(helm, "--set", off)
    assert not [d for d in docs if d["kind"].startswith("ValidatingAdmissionPolicy")
                and d["metadata"]["name"] == POLICY]
    assert not [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "dc-debugcap-test"]


VAP = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"


def test_a_cluster_without_validating_admission_policies_fails_naming_tests_enabled(helm: Path) -> None:  # noqa: F811
    # Kubernetes 1.29 serves no admissionregistration.k8s.io/v1 policy: rendered alone, the test's
    # Role would let its ServiceAccount create any pod; a default install failed at the API server.
    res = run_helm(helm, "--kube-version", "1.29.4")
    assert res.returncode != 0
    assert "set tests.enabled=false" in res.stderr and "Kubernetes v1.29.4" in res.stderr
    for off in (("--set", "tests.enabled=false"), ("--set", "rbac.create=false")):
        docs = render(helm, "--kube-version", "1.29.4", *off)
        assert not [d for d in docs if d["kind"].startswith("ValidatingAdmissionPolicy")
                    and d["metadata"]["name"] == POLICY]
    # The API server's own list of kinds (as helm install reads it) is enough on any version.
    policy, _binding = policy_and_binding(render(helm, "--kube-version", "1.29.4", "--api-versions", VAP))
    assert policy["apiVersion"] == "admissionregistration.k8s.io/v1"
