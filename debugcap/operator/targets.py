"""The pods a DebugCapture targets: one pod, a label selector, or a workload's pods.

Called by :mod:`~debugcap.operator.captures` (in a thread) before any pod is captured. Every
message names the spec field to fix and the command that shows what is there.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from debugcap import errors, hints
from debugcap.kube.client import Kube, core_path, group_path
from debugcap.kube.shared_reads import SharedReads
from debugcap.operator.requests import CaptureRequest, selector_to_string

# How long a pod as find_pods read it stands for the live pod: pods queued behind the concurrency
# limit start later, and one recreated under the same name meanwhile must be read again.
POD_READ_FRESH_SECONDS: Final = 5.0
# A re-LIST slower than this is given up (its pods then read on their own): every pod waiting for
# its window waits on it, and the request timeout (30 s) would hold them all that long.
RELIST_TIMEOUT_SECONDS: Final = 5.0

WORKLOAD_RESOURCES: Final = {"Deployment": "deployments", "StatefulSet": "statefulsets",
                             "DaemonSet": "daemonsets", "ReplicaSet": "replicasets"}


@dataclass(frozen=True)
class PodSelection:
    pods: tuple[str, ...]
    note: str = ""  # pods left out (not running, over maxPods), for status.message
    objects: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # name -> pod JSON
    read_at: float = dataclasses.field(default_factory=lambda: time.monotonic())  # when ``objects`` were read
    # Lists the selector's pods again (raw JSON items); None for a single pod, read again on its own.
    relist: Callable[[], list[Mapping[str, Any]]] | None = dataclasses.field(default=None, compare=False)
    # The re-LISTs, one in flight and its answer shared, a failed one standing for its window
    # (kube.shared_reads, as the sweep's other reads; the clock looked up at each call, for tests).
    _reads: SharedReads = dataclasses.field(
        default_factory=lambda: SharedReads(max_age=POD_READ_FRESH_SECONDS, wait=RELIST_TIMEOUT_SECONDS,
                                            clock=lambda: time.monotonic()),
        compare=False, repr=False)

    def fresh(self, pod: str) -> Mapping[str, Any] | None:
        """The pod as read, while that read still stands for the live pod (else None: read it again)."""
        return self.fresh_read(pod)[0]

    def fresh_read(self, pod: str) -> tuple[Mapping[str, Any] | None, float]:
        """:meth:`fresh`'s pod, and when it was read (``time.monotonic()``; 0 with no pod).

        Once the first read is stale, a selection that can list its pods again does so, once for
        all of them, and that read stands for the next POD_READ_FRESH_SECONDS: a sweep's pods
        queued behind the concurrency limit would otherwise each be read on their own (100 pods at
        concurrency 8 take 13 windows: most of them). A pod the new list lacks, or a list that
        fails or is slower than RELIST_TIMEOUT_SECONDS, is None: the caller reads that pod on its
        own, and meets its error there; a failed list is not tried again within its window."""
        if time.monotonic() - self.read_at < POD_READ_FRESH_SECONDS:
            return _read(self.objects.get(pod), self.read_at)
        if self.relist is None:
            return None, 0.0
        objects, at = self._reads.get("pods", self._listed, alone=_no_pods)
        return _read(objects.get(pod), at)

    def _listed(self) -> tuple[Mapping[str, Mapping[str, Any]], float]:
        at = time.monotonic()
        assert self.relist is not None
        return {_pod_name(p): p for p in self.relist() if _pod_name(p) in self.pods}, at


def _no_pods() -> tuple[Mapping[str, Mapping[str, Any]], float]:
    return {}, 0.0


def _read(obj: Mapping[str, Any] | None, at: float) -> tuple[Mapping[str, Any] | None, float]:
    return (obj, at) if obj is not None else (None, 0.0)


def find_pods(kube: Kube, namespace: str, request: CaptureRequest) -> PodSelection:
    """The pods ``request`` targets, only in ``namespace``: a DebugCapture never reaches another one.

    Pods are read as raw JSON and handed on to the capture of each (``PodSelection.objects``),
    which would otherwise read each one again just before its window.
    """
    if request.pod is not None:
        return _one_pod(kube, namespace, request.pod, request.container)
    if request.workload is not None:
        selector, where = _workload_selector(kube, namespace, request), "spec.target.workload"
        what = f'{request.workload.kind} "{request.workload.name}"'
    else:
        selector, where, what = request.selector or "", "spec.target.selector", f'selector "{request.selector}"'
    try:
        listed: Any = kube.get_json(core_path("pods", namespace), [("labelSelector", selector)])
    except errors.InvalidError as exc:
        raise errors.ConfigError(f'{where}: "{selector}" is not a valid label selector: '
                                 f"{exc.api_message or exc}") from exc
    items = sorted(listed.get("items") or [], key=_pod_name)
    if not items:
        raise errors.TargetError(f'{where}: no pod in namespace "{namespace}" matches {what} ({selector}); '
                                 f"{hints.show_labels(namespace)}")
    for pod in items:
        _check_container(pod, request.container)
    running = [p for p in items if (p.get("status") or {}).get("phase") == "Running"
               and not p["metadata"].get("deletionTimestamp")]
    if not running:
        raise errors.TargetError(f'{where}: {len(items)} pod(s) match {what} but none is Running; '
                                 f"{hints.pods_matching(namespace, selector)}")
    notes = []
    if len(running) < len(items):
        notes.append(f"{len(items) - len(running)} matching pod(s) not Running were skipped")
    if len(running) > request.max_pods:
        notes.append(f"{len(running) - request.max_pods} running pod(s) over spec.target.maxPods="
                     f"{request.max_pods} were skipped")
    chosen = running[: request.max_pods]

    def relist() -> list[Mapping[str, Any]]:
        again: Any = kube.get_json(core_path("pods", namespace), [("labelSelector", selector)],
                                    timeout=RELIST_TIMEOUT_SECONDS)
        return list(again.get("items") or [])

    return PodSelection(tuple(_pod_name(p) for p in chosen), "; ".join(notes),
                        objects={_pod_name(p): p for p in chosen}, relist=relist)


def _one_pod(kube: Kube, namespace: str, name: str, container: str | None) -> PodSelection:
    try:
        pod: Any = kube.get_json(core_path("pods", namespace, name))
    except errors.NotFoundError as exc:
        raise errors.TargetError(
            f'spec.target.pod: no pod "{name}" in namespace "{namespace}" (a DebugCapture only '
            f"captures pods in its own namespace); {hints.list_objects('pods', namespace)}") from exc
    _check_container(pod, container)
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise errors.TargetError(
            f'spec.target.pod: pod "{name}" is {phase}, not Running; evidence can only be '
            f"captured from a running pod ({hints.describe_pod(name, namespace)})")
    return PodSelection((name,), objects={name: pod})


def _pod_name(pod: Mapping[str, Any]) -> str:
    return str(pod["metadata"]["name"])


def _check_container(pod: Mapping[str, Any], container: str | None) -> None:
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    if container is not None and container not in names:
        raise errors.TargetError(f'spec.target.container: pod "{_pod_name(pod)}" has no container "{container}"; '
                                 f"{hints.pick_container(names, flag='')}")


def _workload_selector(kube: Kube, namespace: str, request: CaptureRequest) -> str:
    assert request.workload is not None
    kind, name = request.workload.kind, request.workload.name
    try:
        obj: Any = kube.get_json(group_path("apps", "v1", WORKLOAD_RESOURCES[kind], namespace, name))
    except errors.NotFoundError as exc:
        raise errors.TargetError(f'spec.target.workload: no {kind} "{name}" in namespace "{namespace}"; '
                                 f"{hints.list_objects(WORKLOAD_RESOURCES[kind], namespace)}") from exc
    wanted = (obj.get("spec") or {}).get("selector") or {}
    raw = {"matchLabels": wanted.get("matchLabels") or {},
           "matchExpressions": [{"key": e.get("key"), "operator": e.get("operator"), "values": e.get("values") or []}
                                for e in wanted.get("matchExpressions") or []]}
    return selector_to_string(raw, where=f"{kind} {name} spec.selector")
