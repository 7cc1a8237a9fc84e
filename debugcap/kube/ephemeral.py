"""Ephemeral debug containers: add one to a running pod (``pods/ephemeralcontainers``) or find the
one an earlier capture added, and wait until it runs.

An ephemeral container cannot be removed or restarted, so it is found again by name: the caller
names it after what makes it usable (target container, UID, GID, image), and a second capture of
the same pod reuses it; one that ended with a restart of its target is followed by ``<name>-2``.
Adding is a strategic-merge patch of the subresource, merged by name as ``kubectl debug`` does,
so a concurrent add of another container is not lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from debugcap import errors, hints
from debugcap.kube.client import Kube, segment
from debugcap.kube.shell import Unavailable

POLL_SECONDS = 0.25
# Each restart of the target ends its debug container; a pod that restarted this often is left with
# the last one (ended) and a clear message, rather than an ever longer list of ephemeral containers.
MAX_GENERATIONS = 20
# Waiting reasons that will not clear by themselves: the image cannot be had, or the container
# cannot be created as specified. ContainerCreating and PodInitializing do clear.
_STUCK = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
                    "CreateContainerConfigError", "CreateContainerError", "RunContainerError"})


def _pod_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{segment(namespace)}/pods/{segment(pod)}"


def declared(pod: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The pod's ephemeral container ``name`` as its spec declares it, or None."""
    return next((c for c in pod.get("spec", {}).get("ephemeralContainers") or [] if c.get("name") == name), None)


def state(pod: Mapping[str, Any], name: str) -> tuple[str, str]:
    """(``running`` | ``waiting`` | ``terminated`` | ``unknown``, reason and message) of ``name``."""
    for status in pod.get("status", {}).get("ephemeralContainerStatuses") or []:
        if status.get("name") != name:
            continue
        current = status.get("state") or {}
        for key in ("running", "terminated", "waiting"):
            if key in current:
                detail = current[key] or {}
                why = " ".join(str(detail[k]) for k in ("reason", "message") if detail.get(k))
                if key == "terminated" and not why:
                    why = f"exit code {detail.get('exitCode')}"
                return key, why
    return "unknown", ""


def _terminated(pod: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for status in pod.get("status", {}).get("ephemeralContainerStatuses") or []:
        if status.get("name") == name:
            return (status.get("state") or {}).get("terminated") or {}
    return {}


# How the kubelet reports a container that never ran: StartError (its command could not be
# started) with startedAt at the epoch, or ContainerCannotRun.
_NEVER_RAN = frozenset({"StartError", "ContainerCannotRun"})
_EPOCH = "1970-01-01T00:00:00Z"


def _ended_with_target(pod: Mapping[str, Any], target: str, ended: Mapping[str, Any]) -> bool:
    """Whether a debug container that ran (``ended``: its terminated state) ended because its
    target did: the target's previous instance finished after the debug container started
    (RFC 3339 times sort as text)."""
    started = str(ended.get("startedAt") or "")
    if ended.get("reason") in _NEVER_RAN or not started or started == _EPOCH:
        return False
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == target:
            previous = ((status.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or ""
            return bool(previous) and previous >= started
    return False


def generation(pod: Mapping[str, Any], base: str, target: str) -> tuple[str, bool]:
    """The name to use for ``base`` in ``pod``: its latest generation (``base``, ``base-2``, ...),
    or the next one when the latest ended because ``target`` restarted; and whether that one still
    has to be added. A debug container ends with its target: when the target container restarts,
    its process namespace dies with every process in it, and an ephemeral container cannot be
    restarted. One that ended for another reason (its image has no ``sleep``, it was killed) is
    reported, not replaced: a new one would end the same way."""
    names = {str(c.get("name")) for c in pod.get("spec", {}).get("ephemeralContainers") or []}
    latest = max((n for n in range(1, MAX_GENERATIONS + 1) if (base if n == 1 else f"{base}-{n}") in names),
                 default=0)
    if latest == 0:
        return base, True
    name = base if latest == 1 else f"{base}-{latest}"
    ended = _terminated(pod, name)
    if not ended:
        return name, False
    why = " ".join(str(ended[k]) for k in ("reason", "message") if ended.get(k)) or f"exit code {ended.get('exitCode')}"
    where = f'ephemeral container "{name}" in pod "{pod.get("metadata", {}).get("namespace")}/' \
            f'{pod.get("metadata", {}).get("name")}"'
    if not _ended_with_target(pod, target, ended):
        raise Unavailable(f"{where} has ended ({why}) and cannot be restarted; "
                          f"{hints.debug_image_fix(_image(pod, name))}")
    if latest == MAX_GENERATIONS:
        raise Unavailable(f"{where} has ended ({why}) and cannot be restarted; {hints.EPHEMERAL_ENDED}")
    return f"{base}-{latest + 1}", True


def _image(pod: Mapping[str, Any], name: str) -> str:
    return str((declared(pod, name) or {}).get("image", ""))


def add(kube: Kube, namespace: str, pod: str, container: Mapping[str, Any], target: str,
        ) -> tuple[str, bool, Mapping[str, Any]]:
    """Find or add ephemeral container ``container`` (a ``v1.EphemeralContainer``; its name is the
    base of :func:`generation`) targeting ``target``: its name, True when this call added it, and
    the pod as last read. Raises :class:`Unavailable` naming the pod, the container and the fix."""
    name = str(container["name"])
    where = f'ephemeral container "{name}" in pod "{namespace}/{pod}"'
    try:
        obj = kube.get_json(_pod_path(namespace, pod))
        name, added = generation(obj, name, target)
        if added:
            where = f'ephemeral container "{name}" in pod "{namespace}/{pod}"'
            obj = kube.request("PATCH", _pod_path(namespace, pod) + "/ephemeralcontainers",
                               body={"spec": {"ephemeralContainers": [{**container, "name": name}]}},
                               content_type="application/strategic-merge-patch+json")
    except errors.ForbiddenError as exc:
        message = exc.api_message or str(exc)
        # Pod Security admission refuses with a 403 too; its message says which rule.
        fix = hints.EPHEMERAL_POD_SECURITY if "PodSecurity" in message else hints.EPHEMERAL_RBAC
        raise Unavailable(f"cannot add {where}: {message}; {fix}") from exc
    except errors.KubeError as exc:
        # 422: the API's validation; the message says which field.
        raise Unavailable(f"cannot add {where}: {exc.api_message or exc}") from exc
    return name, added, obj


def wait_running(kube: Kube, namespace: str, pod: str, name: str, obj: Mapping[str, Any], *, timeout: float,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait until ephemeral container ``name`` runs (``obj``: the pod as last read). Raises
    :class:`Unavailable` with the kubelet's reason when it cannot start, or has not within ``timeout``."""
    where = f'ephemeral container "{name}" in pod "{namespace}/{pod}"'
    deadline = now() + timeout
    while True:
        phase, why = state(obj, name)
        if phase == "running":
            return
        if phase == "terminated":
            raise Unavailable(f"{where} ended as it started ({why}); {hints.debug_image_fix(_image(obj, name))}")
        if phase == "waiting" and any(why.startswith(reason) for reason in _STUCK):
            raise Unavailable(f"{where} cannot start: {why}; {hints.debug_image_fix(_image(obj, name))}")
        if now() >= deadline:
            raise Unavailable(f"{where} was not running after {timeout:.0f}s ({phase}{': ' + why if why else ''}); "
                              f"{hints.describe_pod(pod, namespace)}")
        sleep(POLL_SECONDS)
        try:
            obj = kube.get_json(_pod_path(namespace, pod))
        except errors.KubeError as exc:
            raise Unavailable(f"cannot read pod {namespace}/{pod} while {where} starts: {exc}") from exc
