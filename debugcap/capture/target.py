"""Which container of which pod a capture reads: resolved once from the live pod.

:func:`resolve_target` is called by the front ends through :mod:`debugcap.capture` before
:func:`debugcap.capture.capture`; its errors name the pod and the fix. :func:`resolve_container`
is the same for a post-mortem (the operator's capture of a container that restarted), which also
accepts a container that is not running and says what state it is in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from debugcap import errors, hints
from debugcap.collectors import base
from debugcap.kube.client import Kube, segment
from debugcap.settings import CaptureSettings

PPROF_PORT_ANNOTATION = "debugcap.io/pprof-port"
DEFAULT_CONTAINER_ANNOTATION = "debugcap.io/default-container"


@dataclass(frozen=True)
class ContainerState:
    """What the chosen container is doing, from its ``containerStatuses`` entry."""

    running: bool
    # In words for messages: "running", "waiting: CrashLoopBackOff", "terminated: OOMKilled".
    state: str
    # When the running container started (state.running.startedAt); None when not running or unknown.
    started_at: datetime | None = None


def resolve_target(kube: Kube, namespace: str, pod: str, container: str | None = None,
                   pprof_port: int | None = None, *, read: Mapping[str, Any] | None = None) -> base.Target:
    """Read the live pod and pick the container, which must be running; errors name the pod and the fix.

    ``read``: the pod's JSON as the caller just read it (the operator lists a selector's pods),
    instead of reading it again.
    """
    target, state = resolve_container(kube, namespace, pod, container, pprof_port, read=read)
    require_running(target, state)
    return target


def require_running(target: base.Target, state: ContainerState) -> None:
    """Raise :class:`errors.TargetError` naming the pod and the state when the container is not running."""
    if not state.running:
        raise errors.TargetError(f'container "{target.container}" of pod "{target.namespace}/{target.pod}" is not '
                                 f"running ({state.state}); {hints.describe_pod(target.pod, target.namespace)}")


def resolve_container(kube: Kube, namespace: str, pod: str, container: str | None = None,
                      pprof_port: int | None = None, *,
                      read: Mapping[str, Any] | None = None) -> tuple[base.Target, ContainerState]:
    """:func:`resolve_target` without its demand that the container runs: the target and the
    container's state. A container that died and waits to restart (CrashLoopBackOff) still has
    its previous instance's logs and the pod's record of why it died, which a post-mortem wants;
    the pod itself must still be Running (a Pending pod never ran the container)."""
    try:
        obj = read or kube.get_json(f"/api/v1/namespaces/{segment(namespace)}/pods/{segment(pod)}")
    except errors.KubeError as exc:
        raise errors.TargetError(str(exc)) from exc
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
    names = [c["name"] for c in spec.get("containers", [])]
    annotations = meta.get("annotations") or {}
    chosen = container or annotations.get(DEFAULT_CONTAINER_ANNOTATION) or names[0]
    if chosen not in names:
        raise errors.TargetError(f'pod "{namespace}/{pod}" has no container "{chosen}"; '
                                 f"{hints.pick_container(names)}")
    phase = status.get("phase")
    if phase != "Running":
        raise errors.TargetError(f'pod "{namespace}/{pod}" is {phase}, not Running; evidence can only '
                                 f"be captured from a running pod ({hints.describe_pod(pod, namespace)})")
    cstatus = next((s for s in status.get("containerStatuses") or [] if s.get("name") == chosen), None) or {}
    port = pprof_port
    if port is None and PPROF_PORT_ANNOTATION in annotations:
        try:
            port = int(annotations[PPROF_PORT_ANNOTATION])
        except ValueError as exc:
            raise errors.ConfigError(f'annotation {PPROF_PORT_ANNOTATION}="{annotations[PPROF_PORT_ANNOTATION]}" '
                                     f'on pod "{namespace}/{pod}" is not a port number') from exc
    spec_container = next(c for c in spec["containers"] if c["name"] == chosen)
    target = base.Target(
        namespace=namespace, pod=pod, container=chosen, node=spec.get("nodeName") or "",
        image=cstatus.get("image") or spec_container.get("image") or "",
        pprof_port=port or CaptureSettings().pprof_port, restart_count=int(cstatus.get("restartCount") or 0),
        pod_uid=meta.get("uid") or "", pod_ip=status.get("podIP") or "",
    )
    return target, container_state(cstatus)


def container_state(cstatus: Mapping[str, Any]) -> ContainerState:
    """The state of a ``containerStatuses`` entry (empty: a container with no status yet)."""
    state = cstatus.get("state") or {}
    if "running" in state:
        started = _time((state["running"] or {}).get("startedAt"))
        return ContainerState(running=True, state="running", started_at=started)
    for name in ("waiting", "terminated"):
        if name in state:
            reason = str((state[name] or {}).get("reason") or "")
            return ContainerState(running=False, state=f"{name}: {reason}" if reason else name)
    return ContainerState(running=False, state="no status yet")


def _time(value: object) -> datetime | None:
    """An RFC 3339 time of the API (``2026-12-04T21:00:00Z``); None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None
