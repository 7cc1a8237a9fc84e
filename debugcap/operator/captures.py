"""kopf handlers of DebugCapture: run it once, close it if orphaned, expire it, delete its bundles.

Registered through :mod:`debugcap.operator.handlers`. A capture's phase guards every re-entry: a
capture found ``Running`` that this process is not running was orphaned by a dead operator and
is closed (:mod:`~debugcap.operator.recovery`), never re-run, so no pod is captured and no
bundle uploaded twice. The pods themselves go through the process's
:class:`~debugcap.operator.pod_scheduling.PodScheduler`; the status through a
:class:`~debugcap.operator.status_writing.StatusWriter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import traceback
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import kopf

from debugcap import delivering, errors, resources
from debugcap.kube.client import Kube, group_path
from debugcap.kube.shared_reads import SharedReads
from debugcap.operator import (
    capturing,
    conditions,
    firing_steps,
    health,
    metrics,
    pod_scheduling,
    recovery,
    runtime,
    targets,
    templating,
    trigger_firing,
)
from debugcap.operator.reporting import event, now, parse_stamp, pod_event, stamp
from debugcap.operator.requests import CaptureRequest, parse_spec
from debugcap.operator.results import PodResult, overall, summary
from debugcap.operator.scheduling import TERMINAL
from debugcap.operator.status_writing import StatusWriter

GROUP: Final = resources.GROUP
VERSION: Final = resources.VERSION
CAPTURES: Final = resources.CAPTURES
SCHEDULE_LABEL: Final = resources.SCHEDULE_LABEL
TRIGGER_LABEL: Final = resources.TRIGGER_LABEL
# The reason of the one Warning Event an unhealthy pod gets per capture (docs/health.md).
POD_UNHEALTHY: Final = "PodUnhealthy"
# The reason of the Warning Event naming a key in status.pods[] that is not the capture's own.
KEY_REFUSED: Final = "BundleKeyRefused"

logger = logging.getLogger(__name__)


def patch_status(kube: Kube, namespace: str, name: str, status: Mapping[str, Any],
                 timeout: float | None = None) -> bool:
    """Write ``status``; whether the capture is being deleted (or is gone)."""
    try:
        written = kube.merge_patch(group_path(GROUP, VERSION, CAPTURES, namespace, name, "status"),
                                   {"status": status}, timeout=timeout)
    except errors.NotFoundError:  # deleted while capturing: nothing left to report to
        return True
    return bool(((written or {}).get("metadata") or {}).get("deletionTimestamp"))


def status_writer(rt: runtime.Runtime, body: kopf.Body) -> StatusWriter:
    namespace, name = str(body.metadata.namespace), str(body.metadata.name)

    async def send(status: dict[str, Any]) -> bool:
        return await runtime.in_thread(patch_status, rt.kube, namespace, name, status)

    async def send_within(status: dict[str, Any], timeout: float) -> bool:
        return await runtime.in_thread(patch_status, rt.kube, namespace, name, status, timeout)

    return StatusWriter(send, what=f"{namespace}/{name}", send_within=send_within)


def bundle_keys(status: Mapping[str, Any]) -> list[str]:
    """Every key a capture's bundles are or may be stored under: stored ones, and those still
    waiting in the spool or never confirmed (``uploadKey``), which the spool may yet send."""
    keys = [(p.get("bundle") or {}).get("key") or p.get("uploadKey") for p in status.get("pods") or []]
    return [k for k in keys if k]


def bundle_entries(status: Mapping[str, Any]) -> list[tuple[Any, str]]:
    """``(pod, key)`` of every key in :func:`bundle_keys`, the pod as its entry names it."""
    entries = [(p.get("name"), (p.get("bundle") or {}).get("key") or p.get("uploadKey"))
               for p in status.get("pods") or []]
    return [(pod, key) for pod, key in entries if key]


def key_owner(store: delivering.Store, body: kopf.Body) -> delivering.KeyOwner:
    """What the operator itself knows of the capture to judge its keys by (never its status): the
    store's prefix and cluster, the capture's namespace, name and UID, the pod its spec targets.
    A spec that does not parse targets no pod: only keys with the capture's UID belong then."""
    try:
        target: str | None = parse_spec(body.spec).pod
    except errors.ConfigError:
        target = ""
    made = body.metadata.get("creationTimestamp")
    return delivering.KeyOwner(store.prefix, store.cluster, str(body.metadata.namespace),
                               delivering.Capture(str(body.metadata.name), str(body.metadata.uid)), target,
                               parse_stamp(str(made)) if made else None)


def owned_keys(status: Mapping[str, Any], owner: delivering.KeyOwner) -> tuple[list[str], list[str]]:
    """The keys of ``status`` that belong to ``owner`` (:func:`delivering.key_refusal`), and a
    message for each one that does not, naming it and why it is left in place."""
    keys: list[str] = []
    refused: list[str] = []
    for pod, key in bundle_entries(status):
        refusal = delivering.key_refusal(key, owner, pod)
        if refusal is None:
            keys.append(key)
        else:
            refused.append(f"status.pods[{errors.shorten(repr(pod), 80)}]: {refusal}; left in place, not deleted")
    return keys, refused


def has_bundles(status: kopf.Status, **_: Any) -> bool:
    """Whether deleting the capture must wait for the delete handler: it has bundles, or it has
    not ended and may still get some. Without the second, kopf drops its finalizer from a
    capture still running, and a `kubectl delete` (or a schedule's Replace) left the bundles
    that run went on to upload in the bucket, listed by nothing."""
    return bool(bundle_keys(status)) or status.get("phase") not in TERMINAL


def fired_by_trigger(metadata: Mapping[str, Any], request: CaptureRequest) -> bool:
    """Whether a DebugTrigger made this capture: it is owned by the DebugTrigger its
    ``spec.firing.trigger`` names and carries that trigger's ``debugcap.io/trigger`` label.

    Only such a capture takes the urgent path (no pod lock, no slot): ``spec.firing`` alone is a
    field anyone who may create a DebugCapture can write, and a hand-made capture must not jump
    the queues the operator keeps for the pods' sake. A forged owner reference would still pass;
    that much is the trigger's creator's own doing (the rights to create captures)."""
    if request.firing is None:
        return False
    name = request.firing.trigger
    owned = any(ref.get("kind") == "DebugTrigger" and ref.get("apiVersion") == resources.API_VERSION
                and ref.get("name") == name for ref in metadata.get("ownerReferences") or [])
    return owned and (metadata.get("labels") or {}).get(TRIGGER_LABEL) == trigger_firing.label_value(name)


def _expiring(status: kopf.Status, **_: Any) -> bool:
    return bool(status.get("expiresAt"))


@kopf.on.create(GROUP, VERSION, CAPTURES)
async def create_capture(body: kopf.Body, status: kopf.Status, memo: kopf.Memo, logger: kopf.Logger,
                         **_: Any) -> None:
    rt = runtime.of(memo)
    uid = str(body.metadata.uid)
    phase = status.get("phase")
    if phase in TERMINAL or uid in rt.inflight:
        return
    if phase == "Running":
        await _close_orphan(rt, body, logger)
        return
    rt.inflight.add(uid)
    try:
        await _run_capture(rt, body)
    finally:
        rt.inflight.discard(uid)


@kopf.on.resume(GROUP, VERSION, CAPTURES)
async def resume_capture(body: kopf.Body, status: kopf.Status, memo: kopf.Memo, logger: kopf.Logger,
                         **_: Any) -> None:
    rt = runtime.of(memo)
    if status.get("phase") == "Running" and str(body.metadata.uid) not in rt.inflight:
        await _close_orphan(rt, body, logger)


@kopf.on.update(GROUP, VERSION, CAPTURES, field="spec")
async def spec_changed(body: kopf.Body, status: kopf.Status, memo: kopf.Memo, **_: Any) -> None:
    message = (f"spec changed (generation {body.metadata.get('generation')}) after the capture ran with generation "
               f"{status.get('observedGeneration')}; a DebugCapture runs once and the change was not applied; "
               "create a new DebugCapture to capture again")
    changed = conditions.spec_change_ignored(status.get("conditions") or [], message,
                                             generation=body.metadata.get("generation"), now=now())
    await runtime.in_thread(patch_status, runtime.of(memo).kube, str(body.metadata.namespace),
                            str(body.metadata.name),
                            # The edit was observed and refused: kstatus readers (Flux, Helm, Argo CD)
                            # then see Stalled of this generation (Failed) at once, not an edit
                            # forever in progress; the message names the generation captured.
                            {"conditions": changed, "observedGeneration": body.metadata.get("generation")})
    event(body, False, "SpecChangeIgnored", message)


@kopf.daemon(GROUP, VERSION, CAPTURES, when=_expiring, cancellation_timeout=5.0)
async def expire_capture(body: kopf.Body, status: kopf.Status, stopped: kopf.DaemonStopped, memo: kopf.Memo,
                         logger: kopf.Logger, **_: Any) -> None:
    """Delete the capture at ``status.expiresAt``; the delete handler then removes its bundles."""
    delay = (parse_stamp(status["expiresAt"]) - datetime.now(UTC)).total_seconds()
    if delay > 0:
        await stopped.wait(delay)
    if stopped:
        return
    logger.info("ttl expired; deleting the capture and its bundles")
    path = group_path(GROUP, VERSION, CAPTURES, str(body.metadata.namespace), str(body.metadata.name))
    await runtime.in_thread(runtime.of(memo).kube.delete, path, missing_ok=True)


@kopf.on.delete(GROUP, VERSION, CAPTURES, when=has_bundles)
async def delete_capture_bundles(body: kopf.Body, status: kopf.Status, memo: kopf.Memo, logger: kopf.Logger,
                                 **_: Any) -> None:
    """Bundles go with their DebugCapture: the CR is the only handle on them, so an orphaned
    bundle would stay in the bucket forever."""
    # The pods' health gauges this capture set go with it: they describe evidence no longer listed.
    metrics.POD_HEALTH.forget_capture(str(body.metadata.namespace), str(body.metadata.name))
    # Only keys under the prefix the operator derives itself: a status anyone allowed to patch it
    # may have rewritten must not delete another namespace's bundle or any object in the bucket.
    keys, refused = owned_keys(status, key_owner(runtime.of(memo).store, body))
    for message in refused:
        logger.warning("%s", message)
        event(body, False, KEY_REFUSED, message)
    try:
        await runtime.in_thread(capturing.delete_bundles, runtime.of(memo).store, keys)
    except errors.StorageError as exc:
        raise kopf.TemporaryError(f"cannot delete bundles yet: {exc}", delay=30) from exc
    logger.info("deleted %d bundle(s): %s", len(keys), ", ".join(keys))


def _ttl(rt: runtime.Runtime, body: kopf.Body, request: CaptureRequest | None) -> timedelta:
    if request is not None and request.ttl is not None:
        return request.ttl
    scheduled = SCHEDULE_LABEL in (body.metadata.labels or {})
    return rt.config.scheduled_ttl if scheduled else rt.config.default_ttl


async def _write_phase(run: StatusWriter, phase: str, message: str, extra: list[dict[str, Any]] | None = None,
                       **fields: Any) -> None:
    """Write ``phase`` with the conditions that go with it (:func:`conditions.status_fields`)."""
    generation = run.status.get("observedGeneration")
    await run.write(**conditions.status_fields(phase, message, previous=run.status.get("conditions") or [],
                                               generation=generation, now=now(), extra=extra or []), **fields)


async def _finish(run: StatusWriter, body: kopf.Body, ttl: timedelta, phase: str, message: str) -> None:
    done = now()
    pods = list(run.pods.values())
    healthy = health.capture_condition([(p.name, p.verdict) for p in pods],
                                       generation=run.status.get("observedGeneration"), now=done)
    await _write_phase(run, phase, message, [healthy], completionTime=stamp(done), expiresAt=stamp(done + ttl),
                       summary=summary(pods))
    # Progress writes still queued carry nothing new now; a failed one lost nothing either.
    await run.settle()
    metrics.CAPTURES.labels(phase).inc()
    if "startTime" in run.status:
        metrics.DURATION.observe((done - parse_stamp(run.status["startTime"])).total_seconds())
    event(body, phase == "Completed", f"Capture{phase}", message)


async def _close_orphan(rt: runtime.Runtime, body: kopf.Body, logger: kopf.Logger) -> None:
    """Close a capture left ``Running`` by an operator that died: keep the bundles it stored,
    fail the rest (see :mod:`~debugcap.operator.recovery`)."""
    try:
        request: CaptureRequest | None = parse_spec(body.spec)
    except errors.ConfigError:
        request = None
    run = status_writer(rt, body)
    run.status = {k: v for k, v in body.status.items() if k != "pods"}
    adopted: list[PodResult] = []
    owner = key_owner(rt.store, body)

    def adopt(entry: Mapping[str, Any]) -> PodResult:
        result = recovery.adopt_upload(rt.store, entry, work_dir=rt.config.work_dir,
                                       trace_limit=rt.config.analysis_trace_limit, owner=owner)
        adopted.append(result)
        return result

    run.pods, lost = await runtime.in_thread(recovery.recover_pods, body.status.get("pods") or [], adopt)
    # Reported like the pods of a run (their Event, count and health), which they missed: the
    # operator that captured them died first. Pods that had ended were reported by it.
    refs = await runtime.in_thread(recovery.pod_refs, rt.kube, str(body.metadata.namespace),
                                   [r.name for r in adopted if r.verdict is not None])
    for result in adopted:
        pod_done(body, refs, result, pods=len(run.pods))
    message = recovery.orphan_message(lost)
    logger.warning("closing orphaned capture: %s", message)
    await _finish(run, body, _ttl(rt, body, request), overall(run.pods.values()) if run.pods else "Failed", message)


async def _run_capture(rt: runtime.Runtime, body: kopf.Body) -> None:
    run = status_writer(rt, body)
    run.status["observedGeneration"] = body.metadata.get("generation")
    await _write_phase(run, "Pending", "resolving the target and template", startTime=stamp(now()))
    namespace, request = str(body.metadata.namespace), None
    try:
        request = parse_spec(body.spec)
        settings = capturing.capture_settings(rt.config, request)
        expanded = await runtime.in_thread(templating.expand_for_namespace, rt.kube, request, namespace,
                                           command_namespaces=rt.config.command_namespaces,
                                           operator_patterns=rt.config.redaction_patterns)
        fired = firing_steps.fire(expanded, request.firing)
        template = fired.template
        selection = await runtime.in_thread(targets.find_pods, rt.kube, namespace, request)
    except Exception as exc:
        message = (str(exc) if isinstance(exc, errors.DebugcapError) else
                   f"internal error while starting the capture: {type(exc).__name__}: {errors.shorten(str(exc))}")
        await _finish(run, body, _ttl(rt, body, request), "Failed", message)
        raise kopf.PermanentError(message) from exc

    run.pods = {pod: PodResult(name=pod, phase="Pending") for pod in selection.pods}
    note = f" ({selection.note})" if selection.note else ""
    start_message = (f"capturing {len(selection.pods)} pod(s) of {request.describe_target()} with template "
                     f"{template.name}{note}")
    firing: dict[str, Any] = {}
    if request.firing is not None:
        start_message += f"; fired by DebugTrigger {request.firing.trigger} ({request.firing.reason})"
        firing["firing"] = request.firing.as_status()  # what fired, beside what it caught
    if fired.changes:  # skipped steps say why in their records; changed and added ones only here
        start_message += "; " + "; ".join(fired.changes)
    # A memory firing races the OOM kill: it waits for no other capture, which is safe only while
    # its steps start no CPU profile or trace (firing_steps removed them; this holds it to that).
    # Only a trigger's own capture: a hand-made one with spec.firing takes the queues like any other.
    urgent = (request.urgent and fired_by_trigger(body.metadata, request)
              and not firing_steps.takes_time(template))
    await _write_phase(run, "Running", start_message, **firing)
    event(body, True, "CaptureStarted", start_message)
    work = capturing.PodSteps(kube=rt.kube, bundles=rt.store, namespace=namespace, capture_name=str(body.metadata.name),
                              capture_uid=str(body.metadata.uid),
                              request=request, template=template, work_dir=rt.config.work_dir,
                              probe_seconds=rt.config.pprof_probe_seconds, settings=settings, selection=selection,
                              generation=body.metadata.get("generation"),
                              trace_limit=rt.config.analysis_trace_limit,
                              shared=SharedReads() if len(selection.pods) > 1 else None)
    refs = {pod: health.pod_ref(obj) for pod, obj in selection.objects.items()}
    try:
        results = await asyncio.gather(*(rt.pods.capture(
            run, namespace, pod, work, prepare_after=pod_scheduling.prepare_after(template),
            deadline_seconds=pod_scheduling.pod_deadline(settings, template),
            on_done=functools.partial(pod_done, body, refs, pods=len(selection.pods)), urgent=urgent)
            for pod in selection.pods))
    except Exception as exc:
        message = f"internal error while capturing: {type(exc).__name__}: {errors.shorten(str(exc))}"
        await _finish(run, body, _ttl(rt, body, request), "Failed", message)
        raise kopf.PermanentError(message) from exc
    phase = overall(results)
    # A Failed pod's bundle may be stored (nothing in it but skipped or failed steps): not "captured".
    stored = sum(1 for r in results if r.key and r.phase != "Failed")
    message = f"{stored} of {len(results)} pod(s) captured and stored{note}"
    if phase != "Completed":
        message += "; " + "; ".join(f"{r.name}: {r.message}" for r in results if r.phase != "Completed" and r.message)
    await _finish(run, body, _ttl(rt, body, request), phase, errors.shorten(message, 2048))


# Above this many pods, a capture's Completed pods get no Event each (pod_done).
POD_EVENTS_MAX: Final = 10


def pod_done(body: kopf.Body, refs: Mapping[str, health.PodRef], result: PodResult, *, pods: int = 1) -> None:
    """Count a pod's capture and post its Event; then what its analysis found (:func:`report_health`).
    Runs inside the capture of the pod: a failure here is logged and never fails the capture.

    A capture of more than :data:`POD_EVENTS_MAX` pods (``pods``: how many it has) posts no Event for a
    pod that Completed: a sweep's hundred "Completed" Events were a third of what a light sweep
    cost the API server and buried its failures; the status lists every pod and the capture's
    last Event counts them. Pods that did not complete still get theirs."""
    with _reporting(body, result.name, "capture"):
        metrics.POD_CAPTURES.labels(result.phase).inc()
        metrics.UPLOADED_BYTES.inc(result.size_bytes if result.key else 0)
        text = f"pod {result.name}: {result.phase} in {result.duration_seconds:.0f}s"
        text += f", bundle {result.uri}" if result.uri else ""
        text += f": {result.message}" if result.message else ""
        if result.phase != "Completed" or pods <= POD_EVENTS_MAX:
            event(body, result.phase == "Completed", "PodCaptured" if result.key else "PodCaptureFailed", text)
    if result.verdict is not None:
        with _reporting(body, result.name, "health"):
            report_health(body, refs.get(result.name) or health.PodRef(workload=result.name), result.name,
                          result.verdict)


def report_health(body: kopf.Body, ref: health.PodRef, pod: str, assessed: health.PodHealth) -> None:
    """The pod's health gauges, and Warning Events on the pod itself (:func:`health.pod_events`: one
    for an unhealthy pod, one per kind of high finding, bounded): `kubectl describe pod` and
    event-based alerting see them without knowing debugcap."""
    namespace, capture = str(body.metadata.namespace), str(body.metadata.name)
    metrics.POD_HEALTH.record(namespace, pod, workload=ref.workload, kind=ref.kind, capture=capture,
                              healthy=assessed.healthy,
                              severity=max((int(f["severity"]) for f in assessed.findings), default=0),
                              readings=assessed.readings)
    target = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": namespace, "uid": ref.uid}}
    for reason, message in health.pod_events(capture, assessed):  # PodUnhealthy, HighSeverityFinding
        pod_event(target, reason, message)


@contextlib.contextmanager
def _reporting(body: kopf.Body, pod: str, what: str) -> Iterator[None]:
    """Log, never raise, what fails while reporting a pod (metrics, Events): the pod's bundle is
    stored and its status written, and a failure to tell about it must not fail the capture. The
    log line has the exception's type, its message redacted like a finding's, and where it was
    raised; not the traceback, whose text would carry the message unredacted."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - see the docstring: logged instead
        meta = body.get("metadata") or {}
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} ({frame.name})" if frame else ""
        logger.warning("%s/%s pod %s: reporting its %s failed: %s%s: %s", meta.get("namespace"), meta.get("name"),
                       pod, what, type(exc).__name__, at, health.clean(str(exc), health.MESSAGE_CHARS))
