"""The ephemeral debug container's identity, security context and name, from pod JSON."""

from __future__ import annotations

from typing import Any

from debugcap.capture import debug_container as dc
from debugcap.kube import ephemeral

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


def test_nothing_said_guesses_root() -> None:
    who = dc.spec_identity(pod(), "app")
    assert (who.uid, who.gid, who.known) == (0, 0, False)


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


def test_root_container_keeps_default_capabilities_and_the_targets_additions() -> None:
    spec = dc.container_spec(pod({"capabilities": {"add": ["NET_ADMIN"]}}), "app", "busybox:1.37", dc.Identity(0, 0))
    ctx = spec["securityContext"]
    assert ctx["runAsUser"] == 0 and "runAsNonRoot" not in ctx
    assert ctx["capabilities"] == {"add": ["NET_ADMIN"]}  # reading a process needs its capabilities too
    assert ctx["allowPrivilegeEscalation"] is False


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


def test_generation_reuses_the_latest_and_follows_one_that_ended() -> None:
    def pod_with(states: dict[str, str]) -> dict[str, Any]:
        return {"spec": {"ephemeralContainers": [{"name": n} for n in states]},
                "status": {"ephemeralContainerStatuses": [{"name": n, "state": {s: {}}} for n, s in states.items()]}}

    assert ephemeral.generation(pod_with({}), "dbg") == ("dbg", True)
    assert ephemeral.generation(pod_with({"dbg": "running"}), "dbg") == ("dbg", False)
    assert ephemeral.generation(pod_with({"dbg": "waiting"}), "dbg") == ("dbg", False)
    # Its target restarted: the old one ended with the target's process namespace.
    assert ephemeral.generation(pod_with({"dbg": "terminated"}), "dbg") == ("dbg-2", True)
    assert ephemeral.generation(pod_with({"dbg": "terminated", "dbg-2": "running"}), "dbg") == ("dbg-2", False)
    assert ephemeral.generation(pod_with({"dbg": "terminated", "dbg-2": "terminated"}), "dbg") == ("dbg-3", True)
    assert ephemeral.generation(pod_with({"dbg-other": "running"}), "dbg") == ("dbg", True)
    ended = {("dbg" if n == 1 else f"dbg-{n}"): "terminated" for n in range(1, ephemeral.MAX_GENERATIONS + 1)}
    assert ephemeral.generation(pod_with(ended), "dbg") == (f"dbg-{ephemeral.MAX_GENERATIONS}", False)
