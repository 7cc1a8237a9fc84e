"""``python3 -m debugcap.operator.selftest``: the chart's ``helm test`` hook.

It starts a pod of its own (the operator's image, sleeping), asks the running operator for a
DebugCapture of it and waits for a terminal phase. It passes (exit 0) only when the capture is
Completed and every pod in its status names a stored bundle: the operator is up, watches the
namespace, may read and exec into its pods, and can write to S3. Anything else exits 1 with a
message naming the object and what to check. It deletes what it created whatever happens,
and leftovers of an earlier run first (same names: a rerun never piles up objects).

Deleting the DebugCapture also deletes its bundle from S3 (the operator's finalizer): the
test's evidence is of no use once it passed. Its TTL (``CAPTURE_TTL``) covers a test killed
before its clean-up.

Runs in-cluster with the test's own ServiceAccount (charts/debugcap/templates/tests/), which may
create pods and DebugCaptures in the namespace and get or delete only the two it names.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TextIO

from debugcap import errors
from debugcap.kube.client import Kube, KubeTarget, core_path, group_path

TERMINAL: Final = frozenset({"Completed", "PartiallyFailed", "Failed"})
# Long enough for a rerun of helm test to find it and clean up; short enough that an
# interrupted test leaves nothing behind for long.
CAPTURE_TTL: Final = "1h"
POLL_SECONDS: Final = 1.0
# The deletes at the end wait at most this long for the DebugCapture (its finalizer removes the
# bundle) and the pod to go; they are gone later anyway.
CLEANUP_SECONDS: Final = 30.0


class Api(Protocol):
    """The part of :class:`~debugcap.kube.client.Kube` the test calls (a fake in unit tests)."""

    def get_json(self, path: str, query: Sequence[tuple[str, str]] = (), *, timeout: float | None = None) -> Any: ...

    def post_json(self, path: str, body: Any, *, timeout: float | None = None) -> Any: ...

    def delete(self, path: str, *, missing_ok: bool = False, timeout: float | None = None) -> None: ...


@dataclass(frozen=True)
class Clock:
    """Monotonic seconds and a sleep; unit tests pass a fake one that moves only when slept."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class Plan:
    namespace: str
    name: str  # the DebugCapture's; the target pod is <name>-target
    image: str
    pull_policy: str
    python: str
    template: str
    timeout: float
    release: str = ""

    @property
    def pod(self) -> str:
        return f"{self.name}-target"


class Failure(Exception):
    """The test failed: the message says what was seen and what to check."""


def target_pod(plan: Plan) -> dict[str, Any]:
    """A pod that only sleeps, in the operator's image (which the cluster already pulls), fit for
    the restricted Pod Security level. It prints a line first, so its logs are not empty.

    The chart's policy (templates/tests/selftest-policy.yaml) admits from the test's ServiceAccount
    only a pod like this one: what it checks, this must keep (its e2e test creates this pod)."""
    say = "print('debugcap helm test target: idle until deleted', flush=True); import time; time.sleep(86400)"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": plan.pod, "labels": _labels(plan)},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            # python as PID 1 ignores SIGTERM: no point waiting 30 s for it.
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "idle", "image": plan.image, "imagePullPolicy": plan.pull_policy,
                "command": [plan.python, "-c", say],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
            }],
        },
    }


def capture(plan: Plan) -> dict[str, Any]:
    return {
        "apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",
        "metadata": {"name": plan.name, "labels": _labels(plan)},
        "spec": {"target": {"pod": plan.pod}, "template": plan.template, "ttl": CAPTURE_TTL},
    }


def _labels(plan: Plan) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": "debugcap-test", "app.kubernetes.io/component": "helm-test"}
    if plan.release:
        labels["app.kubernetes.io/instance"] = plan.release
    return labels


def verdict(namespace: str, name: str, status: Mapping[str, Any]) -> str:
    """What the capture's final ``status`` says: a line for the log when it passed; raises
    :class:`Failure` unless it is Completed with a bundle key for every pod."""
    phase = status.get("phase", "")
    pods = list(status.get("pods") or [])
    if phase != "Completed":
        why = "; ".join(f"{p.get('name', '?')}: {p.get('message', p.get('phase', ''))}" for p in pods) \
            or status.get("message", "") or "no pod results"
        raise Failure(f'DebugCapture "{name}" ended {phase or "without a phase"}, not Completed ({why}); '
                      f"kubectl -n {namespace} describe debugcapture {name} and the operator's log say more")
    keys = [(p.get("bundle") or {}).get("key", "") for p in pods]
    if not pods or not all(keys):
        raise Failure(f'DebugCapture "{name}" is Completed but names no stored bundle for every pod '
                      f"(status.pods: {pods}); check the operator's S3 settings and its log")
    steps = ", ".join(f"{c.get('name')}={c.get('status')}" for p in pods for c in p.get("collectors") or [])
    return f'DebugCapture "{name}" Completed; bundle {", ".join(keys)}; steps: {steps or "none listed"}'


def wait_running(api: Api, plan: Plan, clock: Clock, deadline: float) -> None:
    path = core_path("pods", plan.namespace, plan.pod)
    while True:
        pod = api.get_json(path)
        phase = (pod.get("status") or {}).get("phase", "")
        if phase == "Running":
            return
        if phase in ("Succeeded", "Failed"):
            raise Failure(f'the test\'s target pod {plan.namespace}/{plan.pod} ended ({phase}) before the capture; '
                          f"is {plan.python} in the image {plan.image}? (tests.python)")
        if clock.monotonic() >= deadline:
            waiting = [(c.get("state") or {}).get("waiting", {}).get("reason", "")
                       for c in (pod.get("status") or {}).get("containerStatuses") or []]
            raise Failure(f"the test's target pod {plan.namespace}/{plan.pod} was not Running after "
                          f"{plan.timeout:.0f}s (phase {phase or 'unknown'} {', '.join(w for w in waiting if w)}); "
                          f"kubectl -n {plan.namespace} describe pod {plan.pod}")
        clock.sleep(POLL_SECONDS)


def wait_terminal(api: Api, plan: Plan, clock: Clock, deadline: float) -> dict[str, Any]:
    path = group_path("debugcap.io", "v1alpha1", "debugcaptures", plan.namespace, plan.name)
    while True:
        status: dict[str, Any] = api.get_json(path).get("status") or {}
        if status.get("phase") in TERMINAL:
            return status
        if clock.monotonic() >= deadline:
            seen = status.get("phase") or "no phase: no operator has picked it up"
            raise Failure(f'DebugCapture {plan.namespace}/{plan.name} did not end within {plan.timeout:.0f}s '
                          f"(tests.timeoutSeconds; it is {seen}); is the operator running and serving "
                          f"{plan.namespace}? kubectl rollout status and logs of its Deployment say")
        clock.sleep(POLL_SECONDS)


def remove(api: Api, plan: Plan, clock: Clock, out: TextIO) -> None:
    """Delete the capture and the pod, and wait (briefly) until they are gone."""
    paths = [group_path("debugcap.io", "v1alpha1", "debugcaptures", plan.namespace, plan.name),
             core_path("pods", plan.namespace, plan.pod)]
    for path in paths:
        api.delete(path, missing_ok=True)
    deadline = clock.monotonic() + CLEANUP_SECONDS
    for path in paths:
        while True:
            try:
                api.get_json(path)
            except errors.NotFoundError:
                break
            if clock.monotonic() >= deadline:
                print(f"note: {path} is still being deleted after {CLEANUP_SECONDS:.0f}s (a finalizer of the "
                      "operator's, or the pod stopping); it will go, and the next helm test deletes it first",
                      file=out)
                return
            clock.sleep(POLL_SECONDS)


def run(api: Api, plan: Plan, clock: Clock, out: TextIO) -> int:
    """The whole test; 0 when it passed, 1 when it failed (the reason printed to ``out``)."""
    try:
        remove(api, plan, clock, out)  # a previous run's, killed before its own clean-up
        started = clock.monotonic()
        deadline = started + plan.timeout
        api.post_json(core_path("pods", plan.namespace), target_pod(plan))
        print(f"created pod {plan.namespace}/{plan.pod}", file=out)
        wait_running(api, plan, clock, deadline)
        api.post_json(group_path("debugcap.io", "v1alpha1", "debugcaptures", plan.namespace), capture(plan))
        print(f"pod Running after {clock.monotonic() - started:.0f}s; created DebugCapture {plan.namespace}/"
              f"{plan.name} (template {plan.template})", file=out)
        passed = verdict(plan.namespace, plan.name, wait_terminal(api, plan, clock, deadline))
        print(f"PASS: {passed}; {clock.monotonic() - started:.0f}s of tests.timeoutSeconds {plan.timeout:.0f}",
              file=out)
        return 0
    except (Failure, errors.DebugcapError) as exc:
        print(f"FAIL: {exc}", file=out)
        return 1
    finally:
        try:
            remove(api, plan, clock, out)
        except errors.DebugcapError as exc:  # the verdict stands; say what is left behind
            print(f"note: cleaning up failed ({exc}); the next helm test deletes them first", file=out)


def parse(argv: Sequence[str]) -> Plan:
    p = argparse.ArgumentParser(prog="python3 -m debugcap.operator.selftest",
                                description="Capture a pod of its own through the running operator (helm test).")
    p.add_argument("--namespace", required=True, help="a namespace the operator serves")
    p.add_argument("--name", required=True, help="the DebugCapture's name; the pod is <name>-target")
    p.add_argument("--image", required=True, help="the target pod's image (the operator's)")
    p.add_argument("--pull-policy", default="IfNotPresent", choices=["Always", "IfNotPresent", "Never"])
    p.add_argument("--python", default="python3", help="the interpreter's name in that image")
    p.add_argument("--template", default="disk-usage")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds for the pod to run and the capture to end")
    p.add_argument("--release", default="")
    a = p.parse_args(argv)
    if a.timeout <= 0:
        p.error("--timeout must be more than 0")
    return Plan(namespace=a.namespace, name=a.name, image=a.image, pull_policy=a.pull_policy, python=a.python,
                template=a.template, timeout=a.timeout, release=a.release)


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse(sys.argv[1:] if argv is None else argv)
    try:
        kube = Kube.load(KubeTarget(in_cluster=True))
    except errors.ConfigError as exc:
        print(f"FAIL: {exc}", file=sys.stdout)
        return 1
    try:
        return run(kube, plan, Clock(), sys.stdout)
    finally:
        kube.close()


if __name__ == "__main__":
    raise SystemExit(main())
