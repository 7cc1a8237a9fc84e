"""Which container of which pod a capture reads: resolved once from the live pod.

:func:`resolve_target` is called by the front ends through :mod:`debugcap.capture` before
:func:`debugcap.capture.capture`; its errors name the pod and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from debugcap import errors, hints
from debugcap.collectors import base
from debugcap.kube.client import Kube, segment
from debugcap.settings import CaptureSettings

PPROF_PORT_ANNOTATION = "debugcap.io/pprof-port"
DEFAULT_CONTAINER_ANNOTATION = "debugcap.io/default-container"


def resolve_target(kube: Kube, namespace: str, pod: str, container: str | None = None,
                   pprof_port: int | None = None, *, read: Mapping[str, Any] | None = None) -> base.Target:
    """Read the live pod and pick the container; errors name the pod and the fix.

    ``read``: the pod's JSON as the caller just read it (the operator lists a selector's pods),
    instead of reading it again.
    """
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
    cstatus = next((s for s in status.get("containerStatuses") or [] if s.get("name") == chosen), None)
    if cstatus is None or "running" not in (cstatus.get("state") or {}):
        raise errors.TargetError(f'container "{chosen}" of pod "{namespace}/{pod}" is not running; '
                                 f"{hints.describe_pod(pod, namespace)}")
    port = pprof_port
    if port is None and PPROF_PORT_ANNOTATION in annotations:
        try:
            port = int(annotations[PPROF_PORT_ANNOTATION])
        except ValueError as exc:
            raise errors.ConfigError(f'annotation {PPROF_PORT_ANNOTATION}="{annotations[PPROF_PORT_ANNOTATION]}" '
                                     f'on pod "{namespace}/{pod}" is not a port number') from exc
    spec_container = next(c for c in spec["containers"] if c["name"] == chosen)
    return base.Target(
        namespace=namespace, pod=pod, container=chosen, node=spec.get("nodeName") or "",
        image=cstatus.get("image") or spec_container.get("image") or "",
        pprof_port=port or CaptureSettings().pprof_port, restart_count=int(cstatus.get("restartCount") or 0),
        pod_uid=meta.get("uid") or "", pod_ip=status.get("podIP") or "",
    )
