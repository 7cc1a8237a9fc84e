"""The ephemeral debug container's identity, security context and name, from pod JSON."""

from __future__ import annotations

from typing import Any

import pytest

from debugcap.capture import debug_container as dc
from debugcap.kube import ephemeral
from debugcap.kube.shell import Unavailable

# /proc/<pid>/status of a distroless nonroot process (the lines that matter, as the kernel writes them).
NONROOT_STATUS = "Name:\tgoapp\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1\nPid:\t1\nPPid:\t0\n" \
                 "Uid:\t65532\t65532\t65532\t65532\nGid:\t65532\t65532\t65532\t65532\nFDSize:\t64\n"


def pod(container_ctx: dict[str, Any] | None = None, pod_ctx: dict[str, Any] | None = None,
        ephemeral_containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"spec": {"securityContext": pod_ctx or {},
                     "containers": [{"name": "side"}, {"name": "app", "securityContext": container_ctx or {}}],
                     "ephemeralContainers": ephemeral_containers or []}}


def test_identity_from_the_container_overrides_the_pod() -> None:
    who = dc.spec_identity(pod({"runAsUser": 1000, "runAsGroup": 2000}, {"runAsUser": 5, "runAsGroup": 6}), "app")
    assert (who.uid, who.gid, who.known) == (1000, 2000, True)


def test_identity_from_the_pod_when_the_container_is_silent() -> None:
    who = dc.spec_identity(pod(None, {"runAsUser": 1000, "runAsGroup": 1000}), "app")
    assert (who.uid, who.gid, who.known) == (1000, 1000, True)


def test_a_user_without_a_group_is_a_guess_to_confirm() -> None:
    who = dc.spec_identity(pod({"runAsUser": 1000}), "app")
    assert (who.uid, who.gid, who.known) == (1000, 1000, False)


def test_run_as_non_root_without_a_user_guesses_distroless_nonroot() -> None:
    who = dc.spec_identity(pod(None, {"runAsNonRoot": True}), "app")
    assert (who.uid, who.gid, who.known) == (65532, 65532, False)


def test_nothing_said_probes_as_nobody_never_as_root() -> None:
    who = dc.spec_identity(pod(), "app")
    assert (who.uid, who.gid, who.known) == (65534, 65534, False)


def test_process_identity_is_the_effective_ids_of_proc_status() -> None:
    status = NONROOT_STATUS.replace("Uid:\t65532\t65532", "Uid:\t1000\t1001")
    who = dc.process_identity(status)
    assert who is not None and (who.uid, who.gid) == (1001, 65532)
    assert dc.process_identity("Name:\tx\n") is None


def test_non_root_container_passes_the_restricted_pod_security_standard() -> None:
    spec = dc.container_spec(pod(), "app", "busybox:1.37", dc.Identity(65532, 65532))
    ctx = spec["securityContext"]
    # The restricted profile's rules for a container (Pod Security Standards, v1.34).
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 65532 and ctx["runAsGroup"] == 65532
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["targetContainerName"] == "app" and spec["image"] == "busybox:1.37"
    # Ephemeral containers may not have ports, probes or resources.
    assert not {"ports", "resources", "livenessProbe", "readinessProbe"} & set(spec)


def test_root_container_has_the_targets_capabilities_no_more() -> None:
    spec = dc.container_spec(pod({"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}), "app", "busybox:1.37",
                             dc.Identity(0, 0))
    ctx = spec["securityContext"]
    assert ctx["runAsUser"] == 0 and "runAsNonRoot" not in ctx
    # Reading a process needs its capabilities too; a target that drops them needs none.
    assert ctx["capabilities"] == {"add": ["NET_ADMIN"], "drop": ["ALL"]}
    assert ctx["allowPrivilegeEscalation"] is False
    plain = dc.container_spec(pod(), "app", "busybox:1.37", dc.Identity(0, 0))["securityContext"]
    assert "capabilities" not in plain  # the runtime's defaults, as the target has


def test_names_differ_by_container_user_and_image_and_fit_a_dns_label() -> None:
    a = dc.container_name("app", dc.Identity(65532, 65532), "busybox:1.37")
    assert a.startswith("debugcap-app-65532-") and a == dc.container_name("app", dc.Identity(65532, 65532),
                                                                          "busybox:1.37")
    others = {dc.container_name("app", dc.Identity(1000, 1000), "busybox:1.37"),
              dc.container_name("app", dc.Identity(65532, 1), "busybox:1.37"),
              dc.container_name("api", dc.Identity(65532, 65532), "busybox:1.37"),
              dc.container_name("app", dc.Identity(65532, 65532), "registry.local/busybox:1.37")}
    assert a not in others and len(others) == 4
    long = dc.container_name("x" * 63, dc.Identity(4294967294, 4294967293), "busybox:1.37")
    assert len(long) <= 60


def test_existing_lists_only_debugcaps_containers_for_that_target() -> None:
    obj = pod(ephemeral_containers=[{"name": "debugcap-app-0-abc123", "targetContainerName": "app"},
                                    {"name": "debugger-xyz", "targetContainerName": "app"},
                                    {"name": "debugcap-side-0-abc123", "targetContainerName": "side"}])
    assert dc.existing(obj, "app") == ["debugcap-app-0-abc123"]


def test_ephemeral_state_reads_running_waiting_and_terminated() -> None:
    def with_state(state: dict[str, Any]) -> dict[str, Any]:
        return {"status": {"ephemeralContainerStatuses": [{"name": "other", "state": {"running": {}}},
                                                          {"name": "dbg", "state": state}]}}

    assert ephemeral.state(with_state({"running": {"startedAt": "x"}}), "dbg") == ("running", "")
    assert ephemeral.state(with_state({"waiting": {"reason": "ErrImagePull", "message": "not found"}}), "dbg") == \
        ("waiting", "ErrImagePull not found")
    assert ephemeral.state(with_state({"terminated": {"exitCode": 137}}), "dbg") == ("terminated", "exit code 137")
    assert ephemeral.state({"status": {}}, "dbg") == ("unknown", "")


def _pod_with(states: dict[str, dict[str, Any]], target_last_finished: str = "2026-12-04T09:30:00Z"
              ) -> dict[str, Any]:
    """A pod as the kubelet reports it: the target runs again since 10:00, its previous instance
    finished at ``target_last_finished``; the debug containers in ``states``."""
    target: dict[str, Any] = {"name": "app", "restartCount": 1,
                              "state": {"running": {"startedAt": "2026-12-04T10:00:00Z"}},
                              "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                           "startedAt": "2026-12-04T08:00:00Z",
                                                           "finishedAt": target_last_finished}}}
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"ephemeralContainers": [{"name": n, "image": "busybox:1.37"} for n in states]},
            "status": {"containerStatuses": [target],
                       "ephemeralContainerStatuses": [{"name": n, "state": st} for n, st in states.items()]}}


RUNNING = {"running": {"startedAt": "2026-12-04T09:00:00Z"}}
# Ended with its target: it ran from 09:00 until the target's OOM kill at 09:30 ended its namespace.
ENDED_WITH_TARGET = {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": "2026-12-04T09:00:00Z",
                                    "finishedAt": "2026-12-04T09:30:00Z"}}
# What the kubelet reports for a toolbox whose command cannot start (no `sleep` in the image).
START_ERROR = {"terminated": {"exitCode": 128, "reason": "StartError",
                              "message": 'exec: "sleep": executable file not found in $PATH',
                              "startedAt": "1970-01-01T00:00:00Z", "finishedAt": "2026-12-04T09:00:01Z"}}


def test_generation_reuses_the_latest_and_follows_one_that_ended_with_its_target() -> None:
    assert ephemeral.generation(_pod_with({}), "dbg", "app") == ("dbg", True)
    assert ephemeral.generation(_pod_with({"dbg": RUNNING}), "dbg", "app") == ("dbg", False)
    assert ephemeral.generation(_pod_with({"dbg": {"waiting": {}}}), "dbg", "app") == ("dbg", False)
    assert ephemeral.generation(_pod_with({"dbg": ENDED_WITH_TARGET}), "dbg", "app") == ("dbg-2", True)
    assert ephemeral.generation(_pod_with({"dbg": ENDED_WITH_TARGET, "dbg-2": RUNNING}), "dbg", "app") == \
        ("dbg-2", False)
    assert ephemeral.generation(_pod_with({"dbg": ENDED_WITH_TARGET, "dbg-2": ENDED_WITH_TARGET}), "dbg", "app") == \
        ("dbg-3", True)
    assert ephemeral.generation(_pod_with({"dbg-other": RUNNING}), "dbg", "app") == ("dbg", True)
    # The target is in CrashLoopBackOff (waiting, not running): its last instance still says when it ended.
    waiting = _pod_with({"dbg": ENDED_WITH_TARGET})
    waiting["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert ephemeral.generation(waiting, "dbg", "app") == ("dbg-2", True)


def test_one_that_never_ran_or_ended_on_its_own_is_reported_not_replaced() -> None:
    # A new one would end the same way: the capture says why instead of adding one per capture.
    with pytest.raises(Unavailable, match=r'"dbg" in pod "ns/p" has ended \(StartError exec: "sleep": '
                                          r'executable file not found in \$PATH\).*debug image "busybox:1.37"'):
        ephemeral.generation(_pod_with({"dbg": START_ERROR}), "dbg", "app")
    # It ran, and ended while the target kept running (its last restart was before).
    with pytest.raises(Unavailable, match="has ended"):
        ephemeral.generation(_pod_with({"dbg": ENDED_WITH_TARGET}, target_last_finished="2026-12-04T08:30:00Z"),
                             "dbg", "app")
    never_restarted = _pod_with({"dbg": ENDED_WITH_TARGET})
    del never_restarted["status"]["containerStatuses"][0]["lastState"]
    with pytest.raises(Unavailable, match="has ended"):
        ephemeral.generation(never_restarted, "dbg", "app")


def test_at_the_generation_limit_the_capture_says_so() -> None:
    ended = {("dbg" if n == 1 else f"dbg-{n}"): ENDED_WITH_TARGET for n in range(1, ephemeral.MAX_GENERATIONS + 1)}
    with pytest.raises(Unavailable, match="restarted too often"):
        ephemeral.generation(_pod_with(ended), "dbg", "app")


class RecordedPod:
    """The pod's JSON as the API server answered in turn (recorded shapes), and a clock that only
    moves when the code sleeps."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers, self.t, self.reads = answers, 0.0, 0

    def get_json(self, path: str) -> dict[str, Any]:
        self.reads += 1
        return self.answers[min(self.reads - 1, len(self.answers) - 1)]

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_wait_running_returns_once_the_kubelet_says_running() -> None:
    creating = _pod_with({"dbg": {"waiting": {"reason": "ContainerCreating"}}})
    api = RecordedPod([creating, _pod_with({"dbg": RUNNING})])
    ephemeral.wait_running(api, "ns", "p", "dbg", creating, timeout=30, now=api.now,  # type: ignore[arg-type]
                           sleep=api.sleep)
    assert api.reads == 2


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"])
def test_an_image_that_cannot_be_had_ends_the_wait_at_once_with_the_reason(reason: str) -> None:
    stuck = _pod_with({"dbg": {"waiting": {"reason": reason, "message": "pull access denied"}}})
    api = RecordedPod([stuck])
    with pytest.raises(Unavailable, match=rf"cannot start: {reason} pull access denied; .*--debug-image"):
        ephemeral.wait_running(api, "ns", "p", "dbg", stuck, timeout=30, now=api.now,  # type: ignore[arg-type]
                               sleep=api.sleep)
    assert api.t == 0


def test_a_container_that_never_starts_ends_the_wait_at_the_timeout() -> None:
    creating = _pod_with({"dbg": {"waiting": {"reason": "ContainerCreating"}}})
    api = RecordedPod([creating])
    with pytest.raises(Unavailable, match=r"was not running after 5s \(waiting: ContainerCreating\)"):
        ephemeral.wait_running(api, "ns", "p", "dbg", creating, timeout=5, now=api.now,  # type: ignore[arg-type]
                               sleep=api.sleep)
    assert 5 <= api.t < 5 + 2 * ephemeral.POLL_SECONDS
