"""The schedule and trigger nouns, impersonation and completion against the real API server.

* `schedule create|get|describe|suspend|resume|run-now`: the object written is what the flags say;
  `get` (and `-o wide`) prints the very table `kubectl get dsched` prints; run-now's capture is
  owned by the schedule, so Kubernetes' garbage collector deletes it with the schedule;
* `trigger get|describe|suspend|resume` on a trigger whose status was written through the status
  subresource: the API server's own evaluation of the columns (the Ready filter included) equals
  the plugin's;
* `--as`/`--as-group`: the admin impersonating a namespace user gets exactly what the user's own
  kubeconfig gets: DebugCaptures in their namespace, and a clear refusal elsewhere;
* completion: the real kubectl, with the plugin on PATH, completes capture and schedule names of
  the namespace typed, through `kubectl_complete-debugcap`; the bash script does the same for
  `kubectl-debugcap`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from debugcap.kube.client import Kube
from testbed import builds, layout

from .conftest import Testbed, kubectl

BIN = layout.REPO / ".venv" / "bin"
PLUGIN = str(BIN / "kubectl-debugcap")
GROUP, VERSION = "debugcap.io", "v1alpha1"
USER = layout.PLAIN_USER


def plugin(testbed: Testbed, *args: str, kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": kubeconfig or testbed.kubeconfig}
    return subprocess.run([PLUGIN, *args], env=env, capture_output=True, text=True, timeout=60)


def ok(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    return res.stdout


def refused(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    return res.stderr


def cells(table: str) -> list[list[str]]:
    """Each line's words, the last (the age, which may tick between two reads) left out."""
    return [line.split()[:-1] for line in table.strip().splitlines()]


def wait_for(ok_now: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not ok_now():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.5)


def read(kube: Kube, namespace: str, plural: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = kube.custom().get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    return obj


def test_schedule_create_get_describe_suspend_resume_and_run_now(crds: None, testbed: Testbed, kube: Kube,
                                                                 namespace: str) -> None:
    ns = ["-n", namespace]
    out = ok(plugin(testbed, "schedule", "create", "nightly", "pod/api-1", "--schedule", "0 3 * * *", "-t", "go-heap",
                    "--capture-label", "team=shop", "--ttl", "2d", "--successful-history-limit", "5", *ns))
    assert out == "debugschedule.debugcap.io/nightly created\n"
    schedule = read(kube, namespace, "debugschedules", "nightly")
    assert schedule["spec"]["schedule"] == "0 3 * * *" and schedule["spec"]["successfulHistoryLimit"] == 5
    assert schedule["spec"]["captureTemplate"] == {"metadata": {"labels": {"team": "shop"}},
                                                   "spec": {"target": {"pod": "api-1"}, "template": "go-heap",
                                                            "ttl": "2d"}}

    # The plugin's table is kubectl's own, column for column, with and without -o wide.
    for wide in ([], ["-o", "wide"]):
        theirs = kubectl(testbed, "get", "debugschedules", *ns, *wide).stdout
        assert cells(ok(plugin(testbed, "schedule", "get", *ns, *wide))) == cells(theirs)
        assert cells(theirs)[1][:7] == ["nightly", "0", "3", "*", "*", "*", "false"]
    assert ok(plugin(testbed, "schedule", "get", "-o", "name", *ns)) == "debugschedule.debugcap.io/nightly\n"

    assert ok(plugin(testbed, "schedule", "suspend", "nightly", *ns)) == "debugschedule.debugcap.io/nightly suspended\n"
    assert read(kube, namespace, "debugschedules", "nightly")["spec"]["suspend"] is True
    assert "already suspended" in ok(plugin(testbed, "schedule", "suspend", "nightly", *ns))
    assert "true" in kubectl(testbed, "get", "debugschedules", *ns).stdout.splitlines()[1].split()
    assert ok(plugin(testbed, "schedule", "resume", "nightly", *ns)) == "debugschedule.debugcap.io/nightly resumed\n"
    assert read(kube, namespace, "debugschedules", "nightly")["spec"]["suspend"] is False

    out = ok(plugin(testbed, "schedule", "run-now", "nightly", "--name", "nightly-now", *ns))
    assert out == "debugcapture.debugcap.io/nightly-now created\n"
    capture = read(kube, namespace, "debugcaptures", "nightly-now")
    assert capture["metadata"]["labels"] == {"team": "shop", "debugcap.io/schedule": "nightly"}
    [owner] = capture["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("DebugSchedule", "nightly", schedule["metadata"]["uid"])
    assert capture["spec"]["template"] == "go-heap" and capture["spec"]["target"]["pod"] == "api-1"

    text = ok(plugin(testbed, "schedule", "describe", "nightly", *ns))
    assert "Next Run:" in text and "T03:00:00Z" in text and "nightly-now" in text
    assert f"next: kubectl debugcap schedule run-now nightly -n {namespace}" in text

    # Owned for real: the garbage collector deletes the run with its schedule.
    kubectl(testbed, "delete", "debugschedule", "nightly", *ns)

    def capture_gone() -> bool:
        return "nightly-now" not in kubectl(testbed, "get", "debugcaptures", *ns, "-o", "name").stdout

    wait_for(capture_gone, 60, "the garbage collector to delete the schedule's run")

    err = refused(plugin(testbed, "schedule", "run-now", "nightly", *ns))
    assert err == (f'Error: debugschedule "nightly" not found in namespace "{namespace}"; list them with: '
                   f"kubectl debugcap schedule get -n {namespace}\n")
    bad = plugin(testbed, "schedule", "create", "x", "pod/a", "--schedule", "at three", *ns)
    assert bad.returncode == 2 and "--schedule" in bad.stderr


TRIGGER = """
apiVersion: debugcap.io/v1alpha1
kind: DebugTrigger
metadata: {name: pre-oom}
spec:
  target: {selector: {matchLabels: {app: api}}}
  when: {memoryPercentOfLimit: 80, restarted: true}
  cooldown: 10m
"""


def test_trigger_get_describe_suspend_resume(crds: None, testbed: Testbed, kube: Kube, namespace: str) -> None:
    ns = ["-n", namespace]
    kubectl(testbed, "apply", *ns, "-f", "-", stdin=TRIGGER)
    # A status as the operator writes one, through the status subresource.
    status = {"status": {"pods": 3, "firedTotal": 2, "lastFired": "2026-12-04T03:00:00Z",
                         "message": "watching 3 pod(s) every 10s",
                         "conditions": [{"type": "Reconciling", "status": "False"},
                                        {"type": "Ready", "status": "True", "reason": "Watching"}],
                         "firings": [{"time": "2026-12-04T03:00:00Z", "pod": "api-1", "reason": "restarted",
                                      "value": "OOMKilled", "capture": "pre-oom-restarted-1"}]}}
    kube.custom().patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "debugtriggers", "pre-oom",
                                                        status)

    # The API server evaluates the CRD's columns (the Ready filter, the integers, the date) itself for
    # kubectl; the plugin evaluates them from its copy of the CRD: the same table.
    for wide in ([], ["-o", "wide"]):
        theirs = kubectl(testbed, "get", "debugtriggers", *ns, *wide).stdout
        mine = ok(plugin(testbed, "trigger", "get", *ns, *wide))
        assert cells(mine) == cells(theirs), (mine, theirs)
        assert cells(theirs)[1][:4] == ["pre-oom", "false", "True", "3"] and "2" in cells(theirs)[1]
    everywhere = ok(plugin(testbed, "trigger", "get", "-A"))
    assert [namespace, "pre-oom", "false", "True", "3"] in [line.split()[:5] for line in everywhere.splitlines()]
    doc = json.loads(ok(plugin(testbed, "trigger", "get", "pre-oom", "-o", "json", *ns)))
    assert doc["status"]["firedTotal"] == 2

    text = ok(plugin(testbed, "trigger", "describe", "pre-oom", *ns))
    assert "memory >= 80% of the limit or the container restarted" in text
    assert "pods with app=api" in text and "pre-oom-restarted-1" in text and "Watching" in text

    assert ok(plugin(testbed, "trigger", "suspend", "pre-oom", *ns)) == "debugtrigger.debugcap.io/pre-oom suspended\n"
    assert read(kube, namespace, "debugtriggers", "pre-oom")["spec"]["suspend"] is True
    assert ok(plugin(testbed, "trigger", "resume", "pre-oom", *ns)) == "debugtrigger.debugcap.io/pre-oom resumed\n"
    assert read(kube, namespace, "debugtriggers", "pre-oom")["spec"]["suspend"] is False
    err = refused(plugin(testbed, "trigger", "describe", "post-oom", *ns))
    assert f'debugtrigger "post-oom" not found in namespace "{namespace}"' in err


def _grant(kube: Kube, namespace: str, name: str, resources: list[str], subject: k8s.RbacV1Subject) -> None:
    rbac = k8s.RbacAuthorizationV1Api(kube.core().api_client)
    rbac.create_namespaced_role(namespace, k8s.V1Role(
        metadata=k8s.V1ObjectMeta(name=name),
        rules=[k8s.V1PolicyRule(api_groups=["debugcap.io"], resources=resources,
                                verbs=["get", "list", "create", "patch"])]))
    rbac.create_namespaced_role_binding(namespace, k8s.V1RoleBinding(
        metadata=k8s.V1ObjectMeta(name=name), subjects=[subject],
        role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name)))


def test_as_and_as_group_impersonate_a_namespace_user(crds: None, testbed: Testbed, kube: Kube,
                                                      namespace: str) -> None:
    ns = ["-n", namespace]
    _grant(kube, namespace, "captures-only", ["debugcaptures"],
           k8s.RbacV1Subject(kind="User", name=USER, api_group="rbac.authorization.k8s.io"))
    _grant(kube, namespace, "schedule-readers", ["debugschedules"],
           k8s.RbacV1Subject(kind="Group", name="schedule-readers", api_group="rbac.authorization.k8s.io"))
    ok(plugin(testbed, "create", "pod/api-1", "--name", "mine", *ns))
    # RBAC is cached by the authorizer for a moment after a binding is made.
    wait_for(lambda: plugin(testbed, "get", *ns, "--as", USER).returncode == 0, 30, "the Role to apply")

    for who in (["--as", USER], []):  # impersonated by the admin, and the user's own kubeconfig
        config = testbed.user_kubeconfig if not who else None
        listing = ok(plugin(testbed, "get", *ns, *who, "--request-timeout", "1m", kubeconfig=config))
        assert listing.splitlines()[1].split()[0] == "mine", listing
        err = refused(plugin(testbed, "schedule", "get", *ns, *who, kubeconfig=config))
        assert f'User "{USER}" cannot list resource "debugschedules"' in err
        assert f"ask for list rights on debugschedules in namespace \"{namespace}\"" in err
        err = refused(plugin(testbed, "get", "-n", "default", *who, kubeconfig=config))
        assert f'User "{USER}" cannot list resource "debugcaptures"' in err and '"default"' in err
        err = refused(plugin(testbed, "trigger", "suspend", "t", *ns, *who, kubeconfig=config))
        assert "debugtriggers" in err

    # A group is impersonated with a user; the group's Role lets schedules be read.
    assert ok(plugin(testbed, "schedule", "get", *ns, "--as", "someone", "--as-group", "schedule-readers",
                     "--request-timeout", "0")) == ""
    refused(plugin(testbed, "schedule", "get", *ns, "--as", "someone"))
    usage = plugin(testbed, "schedule", "get", *ns, "--as-group", "schedule-readers")
    assert usage.returncode == 2 and "--as-group needs --as" in usage.stderr


def _kubectl_complete(testbed: Testbed, *words: str) -> list[str]:
    """What kubectl's own completion answers for `kubectl debugcap WORDS`, the plugin found on PATH."""
    env = {**os.environ, "KUBECONFIG": testbed.kubeconfig, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    res = subprocess.run([str(builds.binary("kubernetes", "kubectl")), "__complete", "debugcap", *words], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_kubectl_completes_the_plugins_verbs_and_the_clusters_names(crds: None, testbed: Testbed, kube: Kube,
                                                                    namespace: str, tmp_path: Path) -> None:
    ns = ["-n", namespace]
    for name in ("api-heap-1", "api-heap-2", "web-cpu"):
        ok(plugin(testbed, "create", "pod/api-1", "--name", name, *ns))
    ok(plugin(testbed, "schedule", "create", "nightly", "pod/api-1", "--schedule", "0 3 * * *", *ns))

    verbs = [line.split("\t")[0] for line in _kubectl_complete(testbed, "")]
    assert {"create", "get", "describe", "schedule", "trigger", "completion"} <= set(verbs) and verbs[-1] == ":4"
    assert _kubectl_complete(testbed, "get", *ns, "") == ["api-heap-1", "api-heap-2", "web-cpu", ":4"]
    assert _kubectl_complete(testbed, "describe", *ns, "api") == ["api-heap-1", "api-heap-2", ":4"]
    assert _kubectl_complete(testbed, "schedule", "run-now", *ns, "") == ["nightly", ":4"]
    assert namespace in _kubectl_complete(testbed, "get", "-n", namespace[:6])
    # A namespace with nothing in it, or a cluster that cannot be read: no names, no error.
    assert _kubectl_complete(testbed, "get", "-n", "default", "zz") == [":4"]
    broken = {**os.environ, "KUBECONFIG": str(tmp_path / "missing"), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    res = subprocess.run([str(builds.binary("kubernetes", "kubectl")), "__complete", "debugcap", "get", ""],
                         env=broken, capture_output=True, text=True, timeout=60)
    assert res.stdout.splitlines() == [":4"]

    # The bash script of `completion bash`, for the kubectl-debugcap command, reads the same names.
    script = ok(plugin(testbed, "completion", "bash"))
    (tmp_path / "completion.bash").write_text(script)
    # What bash does on `kubectl-debugcap get -n NS web<TAB>`: the words, the cursor's, the function.
    shell = (f'source {tmp_path / "completion.bash"}; COMP_WORDS=(kubectl-debugcap get -n {namespace} web); '
             "COMP_CWORD=4; _kubectl_debugcap_completion kubectl-debugcap; printf '%s\\n' \"${COMPREPLY[@]}\"")
    env = {**os.environ, "KUBECONFIG": testbed.kubeconfig, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    res = subprocess.run(["bash", "-c", shell], env=env, capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["web-cpu"], (res.stdout, res.stderr)
