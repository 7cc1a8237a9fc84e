"""The ephemeral debug container a capture reads a shell-less target through: who it runs as,
what it may do, and its name. Pure logic on the pod's JSON; :mod:`debugcap.capture.commands`
adds it with :mod:`debugcap.kube.ephemeral`.

It shares the target container's process namespace (``targetContainerName``) and reads the target
through ``/proc/1``: its status, descriptors, environment, root and mounts. Linux lets a process
read another's ``/proc/<pid>/{fd,environ,root,cwd}`` without ``CAP_SYS_PTRACE`` only when both
run as the same UID and GID and the target holds no capability the reader lacks. So the debug
container runs as the target's user. For a non-root target that is also everything the
``restricted`` Pod Security Standard asks: non-root, every capability dropped, no privilege
escalation, ``RuntimeDefault`` seccomp. A root target gets a root debug container with the
target's own capabilities (what its spec adds and drops): reading it needs them, and such a pod is
not in a restricted namespace. When the spec names no user, the first container is a probe as
65532 (``runAsNonRoot``) or 65534, never root, and reads the real user from ``/proc/1/status``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NAME_PREFIX = "debugcap"
# Distroless' "nonroot" user: what an image that only says runAsNonRoot most likely runs as. A
# wrong guess is corrected from /proc/1/status (see commands.py), at the cost of one more container.
NONROOT_GUESS = 65532
NOBODY = 65534  # the probe's user when the pod says nothing at all
# Sleeps until the pod ends: an ephemeral container cannot be restarted, and later captures
# reuse it. Shells are exec'd into it; busybox `sleep` takes no "infinity".
KEEP_RUNNING = ["sleep", "2147483647"]
_IDS = re.compile(r"^(Uid|Gid):\s+(\d+)\s+(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Identity:
    """Who the target's process runs as; ``known``: from the pod spec or the process, not guessed."""

    uid: int
    gid: int
    known: bool = True

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid}"


def spec_identity(pod: Mapping[str, Any], container: str) -> Identity:
    """The target's user as the pod spec says (container's securityContext over the pod's); when
    it does not say, a guess that :func:`process_identity` confirms or corrects."""
    spec = pod.get("spec") or {}
    ctr: Mapping[str, Any] = next((c for c in spec.get("containers") or [] if c.get("name") == container), {})
    own, shared = ctr.get("securityContext") or {}, spec.get("securityContext") or {}

    def field(name: str) -> Any:
        return own.get(name) if own.get(name) is not None else shared.get(name)

    uid, gid = field("runAsUser"), field("runAsGroup")
    if uid is not None:
        # Without runAsGroup the runtime takes the user's group from the image's /etc/passwd: a
        # guess of the same number, confirmed from the process like an unknown user.
        return Identity(int(uid), int(gid if gid is not None else uid), known=gid is not None)
    # Unknown: a probe that reads /proc/1/status (readable by anyone) and is corrected. Never root:
    # a root container with the runtime's capabilities must not be added only to read that file.
    guess = NONROOT_GUESS if field("runAsNonRoot") else NOBODY
    return Identity(guess, int(gid) if gid is not None else guess, known=False)


def process_identity(proc_status: str) -> Identity | None:
    """The effective UID and GID in a ``/proc/<pid>/status`` text (readable by anyone)."""
    ids = {kind: int(effective) for kind, _real, effective in _IDS.findall(proc_status)}
    if "Uid" not in ids or "Gid" not in ids:
        return None
    return Identity(ids["Uid"], ids["Gid"])


def container_name(container: str, who: Identity, image: str) -> str:
    """One name per target container, user and image, so a later capture finds the same one, and a
    new image (say, after one that could not be pulled) gets a new one. At most 60 characters, so
    a later generation's ``-NN`` still fits a DNS label (:func:`debugcap.kube.ephemeral.generation`)."""
    tag = hashlib.sha256(image.encode()).hexdigest()[:6]
    ids = f"{who.uid}" + ("" if who.gid == who.uid else f"-{who.gid}")
    name = f"{NAME_PREFIX}-{container}-{ids}-{tag}"
    if len(name) > 60:
        name = f"{NAME_PREFIX}-{hashlib.sha256(container.encode()).hexdigest()[:8]}-{ids}-{tag}"
    return name


def container_spec(pod: Mapping[str, Any], container: str, image: str, who: Identity) -> dict[str, Any]:
    """The ``v1.EphemeralContainer`` that reads ``container`` as ``who``."""
    security: dict[str, Any] = {
        "runAsUser": who.uid, "runAsGroup": who.gid, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "seccompProfile": {"type": "RuntimeDefault"},
    }
    if who.uid != 0:
        security.update(runAsNonRoot=True, capabilities={"drop": ["ALL"]})
    else:
        # The target's own capabilities, no more: reading it needs every one it holds.
        ctr: Mapping[str, Any] = next(
            (c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == container), {})
        capabilities = (ctr.get("securityContext") or {}).get("capabilities") or {}
        mirrored = {k: list(capabilities[k]) for k in ("add", "drop") if capabilities.get(k)}
        if mirrored:
            security["capabilities"] = mirrored
    return {
        "name": container_name(container, who, image),
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(KEEP_RUNNING),
        "targetContainerName": container,
        "securityContext": security,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def existing(pod: Mapping[str, Any], container: str) -> list[str]:
    """Names of the debug containers earlier captures added for ``container``."""
    return [str(c["name"]) for c in (pod.get("spec") or {}).get("ephemeralContainers") or []
            if str(c.get("name", "")).startswith(f"{NAME_PREFIX}-") and c.get("targetContainerName") == container]
