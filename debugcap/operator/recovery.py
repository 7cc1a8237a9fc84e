"""Closing a DebugCapture that an operator left ``Running`` when it died: keep, adopt, fail.

:mod:`~debugcap.operator.captures` calls :func:`recover_pods` (in a thread) for a capture found
``Running`` that this process is not running. Nothing is re-run: re-running could capture a pod
twice and upload a second bundle. Pods that ended keep their entries as written
(:meth:`PodResult.from_status`); a pod that was running with an ``uploadKey`` is looked up in
storage (:func:`adopt_upload`) if it is this capture's key (:func:`refuse_foreign`); any other
running pod is failed.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from debugcap import capture as engine
from debugcap import delivering, errors
from debugcap.bundle import verify
from debugcap.kube.client import Kube, core_path
from debugcap.operator import health, reporting, results
from debugcap.operator.results import PodResult
from debugcap.operator.scheduling import TERMINAL

logger = logging.getLogger(__name__)

LOST_MESSAGE: Final = ("the operator restarted while this pod was being captured; nothing was uploaded; "
                       "create a new DebugCapture to capture it again")


def recover_pods(entries: Iterable[Mapping[str, Any]],
                 adopt: Callable[[Mapping[str, Any]], PodResult]) -> tuple[dict[str, PodResult], int]:
    """The pods of an orphaned capture's ``status.pods``, closed; and how many were interrupted.
    ``adopt`` looks up a running pod's ``uploadKey`` in storage (:func:`adopt_upload`)."""
    pods: dict[str, PodResult] = {}
    lost = 0
    for entry in entries:
        if entry.get("phase") in TERMINAL:  # spooled bundles keep their uploadKey: they are sent later
            result = PodResult.from_status(entry)
        elif entry.get("uploadKey"):
            result = adopt(entry)
            lost += 0 if result.key and result.phase != "Failed" else 1
        else:
            lost += 1
            result = PodResult(name=str(entry["name"]), phase="Failed", container=str(entry.get("container", "")),
                               node=str(entry.get("node", "")), message=LOST_MESSAGE)
        pods[result.name] = result
    return pods, lost


def orphan_message(lost: int) -> str:
    return (f"the operator restarted during this capture; {lost} pod capture(s) were interrupted and not "
            "re-run (a DebugCapture runs once); create a new DebugCapture to capture again")


def refuse_foreign(entry: Mapping[str, Any], owner: delivering.KeyOwner) -> PodResult | None:
    """The Failed result of a pod whose ``uploadKey`` is not this capture's
    (:func:`debugcap.delivering.key_refusal`), or None when it is. The key is neither looked up
    nor listed any more: a status anyone may have patched must not make the operator adopt, or
    later delete, another namespace's bundle or any object in the bucket."""
    refusal = delivering.key_refusal(entry.get("uploadKey"), owner, entry.get("name"))
    if refusal is None:
        return None
    message = f"uploadKey refused: {refusal}; left in place, not adopted"
    logger.warning("%s/%s: %s", owner.namespace, owner.capture.name, message)
    return PodResult(name=str(entry["name"]), phase="Failed", container=str(entry.get("container", "")),
                     node=str(entry.get("node", "")), message=message)


def adopt_upload(store: delivering.Store, entry: Mapping[str, Any], work_dir: Path,
                 trace_limit: int | None = health.TRACE_LIMIT_BYTES, *, owner: delivering.KeyOwner) -> PodResult:
    """The result of a pod whose capture a dead operator left unfinished, from what its
    ``uploadKey`` names in storage.

    A stored bundle that verifies means only the status write listing it was lost: it is adopted,
    with the phase its own manifest gives, so it is listed (and deleted at expiry) like any other.
    A damaged one is deleted. When storage cannot be read the pod is Failed but the key stays
    listed, so the expiry of the capture still deletes whatever is there: nothing is orphaned.
    """
    refused = refuse_foreign(entry, owner)
    if refused is not None:  # before anything is read or deleted under that key
        return refused
    name, key = str(entry["name"]), str(entry["uploadKey"])
    # The key stays listed: a bundle spooled just before the crash is sent later, under it.
    lost = PodResult(name=name, phase="Failed", container=entry.get("container", ""), node=entry.get("node", ""),
                     message=LOST_MESSAGE, upload_key=key)
    assessed: health.PodHealth | None = None
    try:
        if store.backend.sha256(key=key) is None:
            return lost
        work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="debugcap-adopt-", dir=work_dir) as tmp:
            local = Path(tmp) / key.rsplit("/", 1)[-1]
            stored = store.backend.get(key=key, dest=local)
            checked = verify.verify(local)
            # Read while the copy is here: an adopted pod says how healthy it was like any other.
            assessed = health.assess(local, generation=None, now=reporting.now(),
                                     trace_limit=trace_limit) if checked.ok else None
            if checked.ok:  # a kill between the bundle's put and its .sha256's left the sidecar out
                _complete_sidecar(store, key, local, stored.sha256)
    except errors.StorageError as exc:
        return dataclasses.replace(lost, key=key, message=(
            f"the operator restarted after this pod's capture and could not check its bundle {key} "
            f"({errors.shorten(str(exc))}); it is deleted when the capture expires"))
    except errors.BundleError as exc:
        checked = verify.VerifyResult(bundle=Path(key), sha256="", bundle_checksum_ok=None,
                                      problems=(verify.Problem(key, verify.ProblemKind.UNREADABLE, str(exc)),))
    if not checked.ok or checked.manifest is None:
        store.backend.delete(key=key)
        return dataclasses.replace(lost, message="the operator restarted during this pod's upload; the stored "
                                   f"bundle failed verification and was deleted: {errors.shorten(checked.summary())}")
    records = list(checked.manifest.collectors)
    return PodResult(name=name, phase=str(engine.phase_of(records)), container=entry.get("container", ""),
                     node=entry.get("node", ""), uri=store.backend.uri(key=key), key=key, sha256=stored.sha256,
                     size_bytes=stored.size, collectors=results.collector_entries(records), health=assessed,
                     message="the operator restarted after storing this bundle; adopted from storage")


def _complete_sidecar(store: delivering.Store, key: str, local: Path, sha256: str) -> None:
    """Store ``key``'s ``.sha256`` beside it: a put of what is already stored writes only that."""
    try:
        store.backend.put(key=key, path=local, sha256=sha256)
    except errors.StorageError as exc:  # the bundle itself is stored and verified: adopted anyway
        logger.warning("adopted %s, but writing its .sha256 beside it failed: %s", key, exc)


def pod_refs(kube: Kube, namespace: str, pods: Iterable[str]) -> dict[str, health.PodRef]:
    """The uid and workload of each pod still there, for the Events and gauges of adopted pods
    (the capture's own reading of them died with the operator); a pod that cannot be read is its
    own workload, and its Event has no uid."""
    refs: dict[str, health.PodRef] = {}
    for pod in pods:
        try:
            refs[pod] = health.pod_ref(kube.get_json(core_path("pods", namespace, pod)) or {})
        except errors.KubeError:
            refs[pod] = health.PodRef(workload=pod)
    return refs
