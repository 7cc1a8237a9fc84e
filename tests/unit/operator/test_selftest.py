"""The chart's ``helm test`` hook (debugcap/operator/selftest.py) against a fake API server and a
fake clock: only the operator's answers (or their absence) decide, never the machine's speed.

Cases: a Completed capture with a bundle passes and deletes the pod and the capture, after
deleting a previous run's; no operator (no phase ever) fails at exactly tests.timeoutSeconds,
naming the capture and the operator, and still cleans up; PartiallyFailed, Completed without a
bundle, a target pod that exits (the interpreter's name wrong) and a refused create each fail
with their reason and exit 1, no traceback; the target pod is fit for the restricted Pod
Security level and carries none of the operator's selector labels; arguments are checked.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from debugcap import errors
from debugcap.operator import selftest

NS, NAME = "shop", "dc-debugcap-test"
POD_PATH = f"/api/v1/namespaces/{NS}/pods/{NAME}-target"
DC_PATH = f"/apis/debugcap.io/v1alpha1/namespaces/{NS}/debugcaptures/{NAME}"
PLAN = selftest.Plan(namespace=NS, name=NAME, image="reg/debugcap/operator:1", pull_policy="IfNotPresent",
                     python="python3", template="disk-usage", timeout=60.0, release="dc")
COMPLETED = {"phase": "Completed", "pods": [
    {"name": f"{NAME}-target", "phase": "Completed", "bundle": {"key": "debugcap/default/shop/x.tar.gz"},
     "collectors": [{"name": "disk", "status": "ok"}]}]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> selftest.Clock:
        return selftest.Clock(monotonic=self.monotonic, sleep=self.sleep)


class FakeApi:
    """Objects by path; ``evolve`` plays the cluster (kubelet, operator) before each read."""

    def __init__(self, evolve: Callable[[FakeApi], None] = lambda api: None) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.evolve = evolve
        self.refuse: dict[str, errors.KubeError] = {}

    def get_json(self, path: str, query: Sequence[tuple[str, str]] = (), *, timeout: float | None = None) -> Any:
        self.calls.append(("get", path))
        self.evolve(self)
        if path not in self.objects:
            raise errors.NotFoundError(f"{path} not found", status=404)
        return self.objects[path]

    def post_json(self, path: str, body: Any, *, timeout: float | None = None) -> Any:
        self.calls.append(("create", path))
        if path in self.refuse:
            raise self.refuse[path]
        self.objects[f"{path}/{body['metadata']['name']}"] = body
        return body

    def delete(self, path: str, *, missing_ok: bool = False, timeout: float | None = None) -> None:
        self.calls.append(("delete", path))
        if self.objects.pop(path, None) is None and not missing_ok:
            raise errors.NotFoundError(f"{path} not found", status=404)


def kubelet_and_operator(capture_status: dict[str, Any] | None, *, pod_phase: str = "Running"
                         ) -> Callable[[FakeApi], None]:
    def evolve(api: FakeApi) -> None:
        if POD_PATH in api.objects:
            api.objects[POD_PATH]["status"] = {"phase": pod_phase}
        if DC_PATH in api.objects and capture_status is not None:
            api.objects[DC_PATH]["status"] = capture_status
    return evolve


def run(api: FakeApi, clock: FakeClock, plan: selftest.Plan = PLAN) -> tuple[int, str]:
    out = io.StringIO()
    return selftest.run(api, plan, clock.clock(), out), out.getvalue()


def test_a_completed_capture_with_a_bundle_passes_and_nothing_is_left() -> None:
    api, clock = FakeApi(kubelet_and_operator(COMPLETED)), FakeClock()
    # A previous run's leftovers, killed before its clean-up.
    api.objects[DC_PATH] = {"metadata": {"name": NAME}}
    api.objects[POD_PATH] = {"metadata": {"name": f"{NAME}-target"}}
    code, out = run(api, clock)
    assert code == 0, out
    assert f'PASS: DebugCapture "{NAME}" Completed; bundle debugcap/default/shop/x.tar.gz; steps: disk=ok' in out
    # The fake kubelet and operator answer at once: no time passed on the fake clock.
    assert "pod Running after 0s" in out and "; 0s of tests.timeoutSeconds 60" in out
    assert api.objects == {}
    # The leftovers went before anything was created.
    first_create = api.calls.index(("create", f"/api/v1/namespaces/{NS}/pods"))
    assert {("delete", DC_PATH), ("delete", POD_PATH)} <= set(api.calls[:first_create])
    created = [c for c in api.calls if c[0] == "create"]
    assert created == [("create", f"/api/v1/namespaces/{NS}/pods"),
                       ("create", f"/apis/debugcap.io/v1alpha1/namespaces/{NS}/debugcaptures")]


def test_without_an_operator_it_fails_at_the_timeout_and_cleans_up() -> None:
    api, clock = FakeApi(kubelet_and_operator(None)), FakeClock()
    code, out = run(api, clock)
    assert code == 1
    assert (f"FAIL: DebugCapture {NS}/{NAME} did not end within 60s (tests.timeoutSeconds; it is no phase: "
            "no operator has picked it up); is the operator running and serving shop?") in out
    assert api.objects == {}
    # Exactly the timeout (one poll past it at most), on the fake clock.
    assert 60.0 <= clock.now < 60.0 + selftest.POLL_SECONDS + 1


@pytest.mark.parametrize("status, reason", [
    ({"phase": "PartiallyFailed", "pods": [{"name": "t", "message": "disk: du exited 1"}]},
     'ended PartiallyFailed, not Completed (t: disk: du exited 1)'),
    ({"phase": "Failed", "message": 'pod "t" not found'}, 'ended Failed, not Completed (pod "t" not found)'),
    ({"phase": "Completed", "pods": [{"name": "t", "phase": "Completed"}]}, "names no stored bundle"),
    ({"phase": "Completed", "pods": []}, "names no stored bundle"),
])
def test_anything_but_completed_with_a_bundle_fails(status: dict[str, Any], reason: str) -> None:
    api, clock = FakeApi(kubelet_and_operator(status)), FakeClock()
    code, out = run(api, clock)
    assert code == 1 and "FAIL: " in out and reason in out, out
    if status["phase"] != "Completed":
        assert f"kubectl -n {NS} describe debugcapture {NAME}" in out
    assert api.objects == {}


def test_a_target_pod_that_exits_names_the_interpreter_setting() -> None:
    api, clock = FakeApi(kubelet_and_operator(COMPLETED, pod_phase="Failed")), FakeClock()
    code, out = run(api, clock)
    assert code == 1
    assert f"target pod {NS}/{NAME}-target ended (Failed) before the capture; is python3 in the image" in out
    assert "(tests.python)" in out
    assert ("create", f"/apis/debugcap.io/v1alpha1/namespaces/{NS}/debugcaptures") not in api.calls


def test_a_refused_create_is_a_failure_with_the_api_servers_words_not_a_traceback() -> None:
    api, clock = FakeApi(kubelet_and_operator(COMPLETED)), FakeClock()
    api.refuse[f"/apis/debugcap.io/v1alpha1/namespaces/{NS}/debugcaptures"] = errors.ForbiddenError(
        "debugcaptures is forbidden: User cannot create", status=403)
    code, out = run(api, clock)
    assert code == 1 and "FAIL: debugcaptures is forbidden" in out
    assert api.objects == {}


def test_the_target_pod_is_restricted_and_not_one_of_the_operators() -> None:
    pod = selftest.target_pod(PLAN)
    spec = pod["spec"]
    [container] = spec["containers"]
    assert pod["metadata"]["name"] == f"{NAME}-target"
    assert container["image"] == "reg/debugcap/operator:1" and container["command"][:2] == ["python3", "-c"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["automountServiceAccountToken"] is False
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    # The operator's Deployment selects name=debugcap: the test's objects must not match it.
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] != "debugcap"
    dc = selftest.capture(PLAN)
    assert dc["spec"] == {"target": {"pod": f"{NAME}-target"}, "template": "disk-usage", "ttl": "1h"}


def test_arguments() -> None:
    plan = selftest.parse(["--namespace", NS, "--name", NAME, "--image", "i:1", "--timeout", "45",
                           "--python", "python3.11", "--release", "dc"])
    assert (plan.timeout, plan.python, plan.template, plan.pull_policy) == (45.0, "python3.11", "disk-usage",
                                                                            "IfNotPresent")
    with pytest.raises(SystemExit):
        selftest.parse(["--namespace", NS, "--name", NAME, "--image", "i:1", "--timeout", "0"])
