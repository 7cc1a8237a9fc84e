"""kopf handlers of the debugcap operator: DebugCapture, DebugSchedule, DebugCaptureTemplate.

Run with ``kopf run -m debugcap.operator.handlers`` or the ``debugcap-operator`` script
(:mod:`debugcap.operator.main`). Handlers are thin: they parse the spec
(:mod:`~debugcap.operator.requests`), run the blocking work of :mod:`~debugcap.operator.capturing`
in a thread executor so kopf's event loop keeps serving other objects, and write status and Events.

A DebugCapture runs once. Its status is written straight to the ``/status`` subresource as work
progresses (kopf's own ``patch`` is applied only when a handler returns, which for a capture can
be many minutes), and its phase guards every re-entry: a capture found ``Running`` that this
process is not running was orphaned by a dead operator and is closed as failed, never re-run, so
no pod is captured and no bundle uploaded twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import kopf
from kubernetes.client.exceptions import ApiException

from debugcap import capture as engine
from debugcap import delivering, errors, resources, templates
from debugcap.collectors import COLLECTORS
from debugcap.kube.client import Kube, KubeTarget, segment
from debugcap.operator import capturing, metrics, scheduling
from debugcap.operator.capturing import GROUP, VERSION, PodResult
from debugcap.operator.config import OperatorSettings
from debugcap.operator.requests import CaptureRequest, parse_spec

CAPTURES: Final = resources.CAPTURES
SCHEDULES: Final = resources.SCHEDULES
TEMPLATES: Final = resources.TEMPLATES
SCHEDULE_LABEL: Final = "debugcap.io/schedule"
FINALIZER: Final = "debugcap.io/operator"
TERMINAL: Final = scheduling.TERMINAL
# How often each DebugSchedule is checked, in seconds. Cron resolution is one minute; checking
# every 10 s starts a run at most 10 s late at the cost of one list call per schedule.
SCHEDULE_TICK_SECONDS: Final = 10.0
# Least time between two status writes that carry only pod progress (see _Capture.write): a
# person watching sees pods move within it, and a 20-pod capture makes half the writes.
PROGRESS_WRITE_SECONDS: Final = 0.3

# How long a pod as find_pods read it stands for the live pod: pods queued behind the concurrency
# limit start later, and one recreated under the same name meanwhile must be read again.
POD_READ_FRESH_SECONDS: Final = 5.0

# How long before a pod's window ends the next pod is prepared (see _prepare_after): a prepare
# took 0.05-0.2 s (p90 0.2) with 8 pods capturing on two cores. It also puts the next pods'
# set-up in the window's quiet second half rather than its busy first half.
PREPARE_LEAD_SECONDS: Final = 0.5

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Per-process state, built at start-up: asyncio primitives must belong to the running loop."""

    settings: OperatorSettings
    kube: Kube
    store: delivering.Store
    executor: ThreadPoolExecutor
    slots: asyncio.Semaphore  # pods being captured at once
    ahead: asyncio.Semaphore  # pods prepared (port-forward open) and waiting for a slot, or being prepared
    uploads: asyncio.Semaphore  # bundles being stored at once, after their pod's slot is free
    pod_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    # The second each pod's last capture started in, under its pod lock: bundle names carry whole
    # seconds, and two captures of one pod named alike would overwrite each other's bundle.
    pod_started: dict[tuple[str, str], datetime] = field(default_factory=dict)
    status_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    inflight: set[str] = field(default_factory=set)

    def pod_lock(self, namespace: str, pod: str) -> asyncio.Lock:
        # One lock per pod across all captures: Go serves one CPU profile (and one trace) at a
        # time per process, so a second concurrent one fails with "cpu profiling already in use".
        return self.pod_locks.setdefault((namespace, pod), asyncio.Lock())


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise kopf.TemporaryError("the operator has not finished starting", delay=1)
    return _runtime


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking API call off the event loop, on the loop's default executor (not the
    capture executor, whose threads may all be busy capturing for minutes)."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))


# --- start-up ------------------------------------------------------------------------------------

@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    global _runtime
    # debugcap.io-prefixed annotations instead of kopf.zalando.org ones and status.kopf, so
    # status holds only what the CRD schema describes.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="debugcap.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="debugcap.io", key="last-handled-configuration")
    # kopf posts an Event for every handler success at INFO; ours are the meaningful ones.
    settings.posting.level = logging.WARNING
    # Reconnect watches that went quiet; a silent stale watch would miss new captures.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    op = OperatorSettings.from_env()
    kubeconfig = os.environ.get("KUBECONFIG") or None
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and kubeconfig is None
    # Explicit: the kubernetes package reads $KUBECONFIG once, at import, not at load time.
    kube = Kube.load(KubeTarget(kubeconfig=kubeconfig, in_cluster=in_cluster))
    store = delivering.store_from_env()
    op.work_dir.mkdir(parents=True, exist_ok=True)
    metrics.serve(op.metrics_port)
    _runtime = Runtime(settings=op, kube=kube, store=store,
                       # A thread for each pod being captured, prepared, and each bundle being stored.
                       executor=ThreadPoolExecutor(max_workers=3 * op.concurrency, thread_name_prefix="capture"),
                       slots=asyncio.Semaphore(op.concurrency), ahead=asyncio.Semaphore(op.concurrency),
                       uploads=asyncio.Semaphore(op.concurrency))
    logger.info("debugcap operator ready: bundles go to %s, %d pods at once", store.backend.describe(),
                op.concurrency)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod, the service account, at the API server address the kubernetes client (every
    other call of ours) uses: ``KUBERNETES_SERVICE_HOST``/``_PORT``. kopf's own service-account
    login names ``https://kubernetes.default.svc``, which only resolves where the pod has cluster
    DNS. Elsewhere, the kubeconfig named by $KUBECONFIG *now*: kopf's default goes through the
    kubernetes package, which resolved $KUBECONFIG once when it was imported."""
    info = kopf.login_with_service_account(**kwargs)
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if info is not None and host and port:
        return dataclasses.replace(info, server=f"https://{f'[{host}]' if ':' in host else host}:{port}")
    return info or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.cleanup()
def shutdown(**_: Any) -> None:
    global _runtime
    if _runtime is not None:
        _runtime.executor.shutdown(wait=False, cancel_futures=True)
        _runtime.kube.close()
        _runtime = None


# --- DebugCapture --------------------------------------------------------------------------------

class _Capture:
    """Status bookkeeping of one running DebugCapture; every write sends the whole status."""

    def __init__(self, rt: Runtime, body: kopf.Body, request: CaptureRequest | None) -> None:
        self.rt = rt
        self.body = body
        self.name = str(body.metadata.name)
        self.namespace = str(body.metadata.namespace)
        self.request = request
        self.status: dict[str, Any] = {}
        self.pods: dict[str, PodResult] = {}
        self.lock = rt.status_locks.setdefault(str(body.metadata.uid), asyncio.Lock())
        self._version = 0  # changes made to self.status / self.pods
        self._written = 0  # the last of them a status write has carried
        self._last_write = -PROGRESS_WRITE_SECONDS  # loop time the last write ended
        self._hurry = asyncio.Event()  # set by a capture-level write: a waiting pod write goes now
        self._progress: set[asyncio.Task[None]] = set()
        self.deleted = False  # the object is being deleted: start no pod, upload nothing more

    def progress(self) -> asyncio.Task[None]:
        """Write pod progress soon, without waiting for it: the capture's end must not wait out
        PROGRESS_WRITE_SECONDS, and :meth:`finish` carries whatever is still unwritten. The task
        ends once a write carrying this change has gone out (or failed, which is logged)."""
        self._version += 1  # now, not when the task starts: a write made before that carries it
        task = asyncio.create_task(self._send(self._version, urgent=False))
        self._progress.add(task)
        task.add_done_callback(self._progress_done)
        return task

    def _progress_done(self, task: asyncio.Task[None]) -> None:
        self._progress.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Not fatal: the next write sends the whole status again.
            logger.warning("a status write of %s/%s failed: %s", self.namespace, self.name, task.exception())

    async def write(self, **changes: Any) -> None:
        """Send the status with ``changes``, or wait for a write that carries them.

        Pods of a capture start and end in bursts; each write sends the whole status (tens of kB
        with 20 pods' collectors) and wakes every watcher of the object, the operator's own kopf
        included. So changes made while a write is in flight go out together in the next one,
        and a write of pod progress alone (no ``changes``) waits until PROGRESS_WRITE_SECONDS
        after the last write, gathering what else happens meanwhile. Capture-level changes
        (phase, completion) go at once.
        """
        self.status.update(changes)
        self._version += 1
        await self._send(self._version, urgent=bool(changes))

    async def _send(self, wanted: int, *, urgent: bool) -> None:
        if urgent:
            self._hurry.set()
        loop = asyncio.get_running_loop()
        while True:
            async with self.lock:
                if self._written >= wanted:
                    return
                wait = self._last_write + PROGRESS_WRITE_SECONDS - loop.time()
                if not urgent and wait > 0 and not self._hurry.is_set():
                    try:
                        await asyncio.wait_for(self._hurry.wait(), wait)
                        continue  # a capture-level write is queued behind us: it carries this too
                    except TimeoutError:
                        pass
                self._hurry.clear()
                if self.pods:
                    self.status["pods"] = [p.as_status() for p in self.pods.values()]
                version, snapshot = self._version, dict(self.status)
                if await _in_thread(_patch_status, self.rt.kube, self.namespace, self.name, snapshot):
                    # kopf runs one handler of an object at a time, so the delete handler cannot
                    # tell this one; the object says so in every write's answer.
                    self.deleted = True
                self._written = version
                self._last_write = loop.time()
                return

    def ttl(self) -> timedelta:
        if self.request is not None and self.request.ttl is not None:
            return self.request.ttl
        scheduled = SCHEDULE_LABEL in (self.body.metadata.labels or {})
        return self.rt.settings.scheduled_ttl if scheduled else self.rt.settings.default_ttl

    async def finish(self, phase: str, message: str) -> None:
        done = _now()
        await self.write(phase=phase, message=message, completionTime=_stamp(done),
                         expiresAt=_stamp(done + self.ttl()),
                         conditions=[_condition("Complete", phase != "Failed", phase, message)])
        # Progress writes still queued carry nothing new now; a failed one lost nothing either.
        await asyncio.gather(*self._progress, return_exceptions=True)
        metrics.CAPTURES.labels(phase).inc()
        if "startTime" in self.status:
            metrics.DURATION.observe((done - _parse_stamp(self.status["startTime"])).total_seconds())
        _event(self.body, phase == "Completed", f"Capture{phase}", message)


def _event(body: kopf.Body, ok: bool, reason: str, message: str) -> None:
    # kopf.event, not kopf.info/warn: those obey settings.posting.level, which is raised in
    # configure() to silence kopf's own per-handler Events, and ours must still be posted.
    kopf.event(body, type="Normal" if ok else "Warning", reason=reason, message=errors.shorten(message, 1024))


def _condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason,
            "message": errors.shorten(message, 1024), "lastTransitionTime": _stamp(_now())}


def _patch_status(kube: Kube, namespace: str, name: str, status: Mapping[str, Any]) -> bool:
    """Write ``status``; whether the capture is being deleted (or is gone)."""
    try:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{segment(namespace)}/{CAPTURES}/{segment(name)}/status"
        written = kube.merge_patch(path, {"status": status})
    except ApiException as exc:
        if exc.status != 404:  # deleted while capturing: nothing left to report to
            raise
        return True
    return bool(((written or {}).get("metadata") or {}).get("deletionTimestamp"))


def _overall(results: list[PodResult]) -> str:
    phases = {r.phase for r in results}
    if phases == {"Completed"}:
        return "Completed"
    if phases <= {"Failed"}:
        return "Failed"
    return "PartiallyFailed"


@kopf.on.create(GROUP, VERSION, CAPTURES)
async def create_capture(body: kopf.Body, status: kopf.Status, logger: kopf.Logger, **_: Any) -> None:
    rt = runtime()
    uid = str(body.metadata.uid)
    phase = status.get("phase")
    if phase in TERMINAL or uid in rt.inflight:
        return
    if phase == "Running":
        await _close_orphan(rt, body, logger)
        return
    rt.inflight.add(uid)
    try:
        await _run_capture(rt, body, logger)
    finally:
        rt.inflight.discard(uid)
        rt.status_locks.pop(uid, None)


@kopf.on.resume(GROUP, VERSION, CAPTURES)
async def resume_capture(body: kopf.Body, status: kopf.Status, logger: kopf.Logger, **_: Any) -> None:
    rt = runtime()
    if status.get("phase") == "Running" and str(body.metadata.uid) not in rt.inflight:
        await _close_orphan(rt, body, logger)


async def _close_orphan(rt: Runtime, body: kopf.Body, logger: kopf.Logger) -> None:
    """Close a capture left ``Running`` by an operator that died: keep the bundles it stored,
    fail the rest. Re-running them could capture a pod twice and upload a second bundle."""
    run = _Capture(rt, body, None)
    try:
        run.request = parse_spec(body.spec)
    except errors.ConfigError:
        pass
    run.status = {k: v for k, v in body.status.items() if k != "pods"}
    lost = 0
    for entry in body.status.get("pods") or []:
        bundle = entry.get("bundle") or {}
        if entry.get("phase") not in TERMINAL and entry.get("uploadKey"):
            result = await _in_thread(capturing.adopt_upload, rt.store, entry, rt.settings.work_dir)
            lost += 0 if result.key and result.phase != "Failed" else 1
            run.pods[result.name] = result
            continue
        if bundle.get("key") and entry.get("phase") in TERMINAL:
            result = PodResult(name=entry["name"], phase=entry["phase"], container=entry.get("container", ""),
                               node=entry.get("node", ""), message=entry.get("message", ""),
                               uri=bundle.get("uri", ""), key=bundle["key"], sha256=bundle.get("sha256", ""),
                               size_bytes=int(bundle.get("sizeBytes", 0)),
                               collectors=tuple(entry.get("collectors") or []))
        elif entry.get("phase") in TERMINAL:  # spooled bundles keep their uploadKey: they are sent later
            result = PodResult(name=entry["name"], phase=entry["phase"], container=entry.get("container", ""),
                               node=entry.get("node", ""), message=entry.get("message", ""),
                               upload_key=entry.get("uploadKey", ""), collectors=tuple(entry.get("collectors") or []))
        else:
            lost += 1
            result = PodResult(name=entry["name"], phase="Failed", container=entry.get("container", ""),
                               node=entry.get("node", ""),
                               message="the operator restarted while this pod was being captured; nothing was "
                                       "uploaded; create a new DebugCapture to capture it again")
        run.pods[result.name] = result
    results = list(run.pods.values())
    phase = _overall(results) if results else "Failed"
    message = (f"the operator restarted during this capture; {lost} pod capture(s) were interrupted and not "
               "re-run (a DebugCapture runs once); create a new DebugCapture to capture again")
    logger.warning("closing orphaned capture: %s", message)
    await run.finish(phase, message)


async def _run_capture(rt: Runtime, body: kopf.Body, logger: kopf.Logger) -> None:
    started = _now()
    run = _Capture(rt, body, None)
    await run.write(phase="Pending", startTime=_stamp(started), observedGeneration=body.metadata.get("generation"),
                    message="resolving the target and template")
    try:
        run.request = request = parse_spec(body.spec)
        template = await _in_thread(capturing.expand_template, rt.kube, request)
        selection = await _in_thread(capturing.find_pods, rt.kube, run.namespace, request)
    except errors.DebugcapError as exc:
        await run.finish("Failed", str(exc))
        raise kopf.PermanentError(str(exc)) from exc
    except Exception as exc:
        message = f"internal error while starting the capture: {type(exc).__name__}: {errors.shorten(str(exc))}"
        await run.finish("Failed", message)
        raise kopf.PermanentError(message) from exc

    run.pods = {pod: PodResult(name=pod, phase="Pending") for pod in selection.pods}
    note = f" ({selection.note})" if selection.note else ""
    start_message = (f"capturing {len(selection.pods)} pod(s) of {request.describe_target()} with template "
                     f"{template.name}{note}")
    await run.write(phase="Running", message=start_message)
    _event(body, True, "CaptureStarted", start_message)

    try:
        results = await asyncio.gather(*(_capture_one(rt, run, pod, request, template, selection)
                                         for pod in selection.pods))
    except Exception as exc:
        message = f"internal error while capturing: {type(exc).__name__}: {errors.shorten(str(exc))}"
        await run.finish("Failed", message)
        raise kopf.PermanentError(message) from exc
    phase = _overall(results)
    stored = sum(1 for r in results if r.key)
    message = f"{stored} of {len(results)} pod(s) captured and stored{note}"
    if phase != "Completed":
        message += "; " + "; ".join(f"{r.name}: {r.message}" for r in results if r.phase != "Completed" and r.message)
    await run.finish(phase, errors.shorten(message, 2048))


async def _capture_one(rt: Runtime, run: _Capture, pod: str, request: CaptureRequest,
                       template: templates.ExpandedTemplate,
                       selection: capturing.PodSelection | None = None) -> PodResult:
    loop = asyncio.get_running_loop()
    # The pod lock first, then a global slot: a capture queued behind another capture of the
    # same pod must not hold one of the few slots other pods could use meanwhile.
    async with rt.pod_lock(run.namespace, pod):
        prepared, give_back = await _prepare(rt, run, pod, request, template, selection)
        key_sent: threading.Event | None = None
        if isinstance(prepared, PodResult):
            if run.deleted:  # nothing was asked of the pod: no Event, not counted
                run.pods[pod] = prepared
                run.progress()
                return prepared
            collected: capturing.Collected | PodResult = prepared  # not resolved: a failure like any other
            t0 = time.monotonic()
        else:
            collected, key_sent, t0 = await _collect(rt, run, prepared, give_back, request, template)
    # Storing touches only S3, so it runs outside the pod's lock and its slot: the next pod's
    # window need not wait for this pod's upload.
    try:
        if isinstance(collected, capturing.Collected) and run.deleted:
            collected.discard()
            collected = collected.failed("the DebugCapture was deleted during this pod's capture; nothing was "
                                         "uploaded")
        if isinstance(collected, capturing.Collected):
            async with rt.uploads:
                result = await loop.run_in_executor(rt.executor, functools.partial(
                    capturing.store_pod, rt.store, collected, key_sent=key_sent))
        else:
            result = collected
    except BaseException:
        if isinstance(collected, capturing.Collected):  # cancelled before it was stored: no scratch left
            collected.discard()
        raise
    metrics.POD_CAPTURES.labels(result.phase).inc()
    metrics.UPLOADED_BYTES.inc(result.size_bytes if result.key else 0)
    run.pods[pod] = result
    run.progress()
    text = f"pod {pod}: {result.phase} in {time.monotonic() - t0:.0f}s"
    text += f", bundle {result.uri}" if result.uri else ""
    text += f": {result.message}" if result.message else ""
    _event(run.body, result.phase == "Completed", "PodCaptured" if result.key else "PodCaptureFailed", text)
    return result


async def _collect(rt: Runtime, run: _Capture, prepared: capturing.Prepared, give_back: _GiveBack,
                   request: CaptureRequest, template: templates.ExpandedTemplate,
                   ) -> tuple[capturing.Collected | PodResult, threading.Event, float]:
    """Collect a prepared pod holding its slot (from :func:`_prepare`), and give the slot back.

    Returns what was collected, the event set once the status naming its key was written, and
    when the collection began.
    """
    loop = asyncio.get_running_loop()
    pod = prepared.target.pod
    try:
        started = await _distinct_start(rt, run.namespace, pod)
        # The key goes out with the Running status, and the upload waits for that write (see
        # PodResult.upload_key); the capture itself does not. Under a burst of pod starts that
        # write queues behind others, and waiting for it delayed each pod's window by up to 0.3 s.
        run.pods[pod] = PodResult(name=pod, phase="Running",
                                  upload_key=capturing.planned_key(rt.store, run.namespace, pod, started))
        key_sent = threading.Event()
        # A failed write is not fatal: every later one carries the key too.
        run.progress().add_done_callback(lambda _task: key_sent.set())
        abandoned = threading.Event()
        work = loop.run_in_executor(rt.executor, functools.partial(
            capturing.collect_pod, rt.kube, prepared, request, template, capture_name=run.name,
            work_dir=rt.settings.work_dir, probe_seconds=rt.settings.pprof_probe_seconds, abandoned=abandoned,
            started=started, window_open=functools.partial(give_back.from_thread, _prepare_after(template))))
        metrics.RUNNING.inc()
        t0 = time.monotonic()
        try:
            done, _ = await asyncio.wait({work}, timeout=request.deadline_seconds)
            if done:
                return work.result(), key_sent, t0
            abandoned.set()
            late_result = PodResult(name=pod, phase="Failed", message=(
                f"spec.parameters.deadlineSeconds: not finished within {request.deadline_seconds}s; the "
                "capture was abandoned and nothing uploaded; raise deadlineSeconds or shorten the template"))
            run.pods[pod] = late_result
            run.progress()
            # Keep the pod lock until the thread really ends: it may still hold a CPU profile.
            await asyncio.wait({work})
            late = work.result()
            if isinstance(late, capturing.Collected):  # it finished after all: too late
                late.discard()
            return late_result, key_sent, t0
        finally:
            metrics.RUNNING.dec()
    finally:
        rt.slots.release()
        give_back()
        # The connections close after the slot is free: ending an exec waits for the shell to
        # exit in the pod, and the next pod need not wait for that.
        _close_later(rt, prepared)


class _GiveBack:
    """Releases a semaphore once: on the event loop, or from a thread with :meth:`from_thread`."""

    def __init__(self, semaphore: asyncio.Semaphore, loop: asyncio.AbstractEventLoop) -> None:
        self.semaphore, self.loop, self.done = semaphore, loop, False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.semaphore.release()

    def from_thread(self, delay: float = 0.0) -> None:
        """Release ``delay`` seconds from now (0: at once), asked from another thread."""
        try:
            self.loop.call_soon_threadsafe(self.loop.call_later, delay, self)
        except RuntimeError:  # the loop is closed: the operator is stopping
            pass


async def _prepare(rt: Runtime, run: _Capture, pod: str, request: CaptureRequest,
                   template: templates.ExpandedTemplate,
                   selection: capturing.PodSelection | None) -> tuple[capturing.Prepared | PodResult, _GiveBack]:
    """The pod prepared (:func:`capturing.prepare_pod`) and a slot held for it, which the caller
    releases; or the result that ends the pod. With it, the pod's place ahead, which the caller
    gives back PREPARE_LEAD_SECONDS before the pod's window ends (or when the pod ended).

    At most ``concurrency`` pods are ahead: being prepared, waiting for a slot, or holding one
    before their window nears its end. So the next pods are prepared while the windows run, not in
    the burst of requests that opens them, and a freed slot goes to a pod whose connections are up.
    """
    loop = asyncio.get_running_loop()
    await rt.ahead.acquire()
    give_back = _GiveBack(rt.ahead, loop)
    prepared: capturing.Prepared | PodResult | None = None
    try:
        if run.deleted:
            give_back()
            return _deleted_before(pod), give_back
        read = None
        if selection is not None and time.monotonic() - selection.read_at < POD_READ_FRESH_SECONDS:
            read = selection.objects.get(pod)
        work = loop.run_in_executor(rt.executor, functools.partial(
            capturing.prepare_pod, rt.kube, run.namespace, pod, request, template, read=read))
        try:
            prepared = await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(lambda f: None if f.cancelled() or f.exception() else _close_later(rt, f.result()))
            raise
        if isinstance(prepared, PodResult):
            give_back()
            return prepared, give_back
        await rt.slots.acquire()
    except BaseException:
        give_back()
        if prepared is not None:
            _close_later(rt, prepared)
        raise
    if run.deleted:  # while it waited for its slot
        rt.slots.release()
        give_back()
        _close_later(rt, prepared)
        return _deleted_before(pod), give_back
    return prepared, give_back


def _deleted_before(pod: str) -> PodResult:
    return PodResult(name=pod, phase="Failed", message="the DebugCapture was deleted before this pod was captured")


def _close_later(rt: Runtime, prepared: capturing.Prepared | PodResult) -> None:
    """Close a prepared pod's connections off the event loop (closing waits on the pod)."""
    if isinstance(prepared, capturing.Prepared):
        try:
            rt.executor.submit(prepared.close)
        except RuntimeError:  # the executor is shutting down with the operator
            prepared.close()


def _prepare_after(template: templates.ExpandedTemplate) -> float:
    """How long after a pod's window opens the next pod is prepared: PREPARE_LEAD_SECONDS before
    the window ends. Earlier, its port-forward would wait longer unused (servers close idle
    connections); later, it might not be open when the slot frees."""
    return max(engine.window_seconds(template) - PREPARE_LEAD_SECONDS, 0.0)


async def _distinct_start(rt: Runtime, namespace: str, pod: str) -> datetime:
    """Now, to the microsecond, in a later second than the pod's previous capture started in."""
    while True:
        now = datetime.now(UTC)
        previous = rt.pod_started.get((namespace, pod))
        if previous is None or now.replace(microsecond=0) > previous.replace(microsecond=0):
            rt.pod_started[(namespace, pod)] = now
            return now
        await asyncio.sleep(1.0 - now.microsecond / 1e6)


@kopf.on.update(GROUP, VERSION, CAPTURES, field="spec")
async def spec_changed(body: kopf.Body, status: kopf.Status, **_: Any) -> None:
    message = (f"spec changed (generation {body.metadata.get('generation')}) after the capture ran with generation "
               f"{status.get('observedGeneration')}; a DebugCapture runs once and the change was not applied; "
               "create a new DebugCapture to capture again")
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "SpecChangeIgnored"]
    conditions.append(_condition("SpecChangeIgnored", True, "RunsOnce", message))
    await _in_thread(_patch_status, runtime().kube, str(body.metadata.namespace), str(body.metadata.name),
                     {"conditions": conditions})
    _event(body, False, "SpecChangeIgnored", message)


def _expiring(status: kopf.Status, **_: Any) -> bool:
    return bool(status.get("expiresAt"))


def _bundle_keys(status: Mapping[str, Any]) -> list[str]:
    """Every key a capture's bundles are or may be stored under: stored ones, and those still
    waiting in the spool or never confirmed (``uploadKey``), which the spool may yet send."""
    keys = [(p.get("bundle") or {}).get("key") or p.get("uploadKey") for p in status.get("pods") or []]
    return [k for k in keys if k]


def _has_bundles(status: kopf.Status, **_: Any) -> bool:
    """Whether deleting the capture must wait for the delete handler: it has bundles, or it has
    not ended and may still get some. Without the second, kopf drops its finalizer from a
    capture still running, and a `kubectl delete` (or a schedule's Replace) left the bundles
    that run went on to upload in the bucket, listed by nothing."""
    return bool(_bundle_keys(status)) or status.get("phase") not in TERMINAL


@kopf.daemon(GROUP, VERSION, CAPTURES, when=_expiring, cancellation_timeout=5.0)
async def expire_capture(body: kopf.Body, status: kopf.Status, stopped: kopf.DaemonStopped,
                         logger: kopf.Logger, **_: Any) -> None:
    """Delete the capture at ``status.expiresAt``; the delete handler then removes its bundles."""
    delay = (_parse_stamp(status["expiresAt"]) - datetime.now(UTC)).total_seconds()
    if delay > 0:
        await stopped.wait(delay)
    if stopped:
        return
    logger.info("ttl expired; deleting the capture and its bundles")
    try:
        await _in_thread(runtime().kube.custom().delete_namespaced_custom_object, GROUP, VERSION,
                         str(body.metadata.namespace), CAPTURES, str(body.metadata.name))
    except ApiException as exc:
        if exc.status != 404:
            raise


@kopf.on.delete(GROUP, VERSION, CAPTURES, when=_has_bundles)
async def delete_capture_bundles(status: kopf.Status, logger: kopf.Logger, **_: Any) -> None:
    """Bundles go with their DebugCapture: the CR is the only handle on them, so an orphaned
    bundle would stay in the bucket forever."""
    keys = _bundle_keys(status)
    try:
        await _in_thread(capturing.delete_bundles, runtime().store, keys)
    except errors.StorageError as exc:
        raise kopf.TemporaryError(f"cannot delete bundles yet: {exc}", delay=30) from exc
    logger.info("deleted %d bundle(s): %s", len(keys), ", ".join(keys))


# --- DebugCaptureTemplate ------------------------------------------------------------------------

@kopf.on.create(GROUP, VERSION, TEMPLATES)
@kopf.on.update(GROUP, VERSION, TEMPLATES)
@kopf.on.resume(GROUP, VERSION, TEMPLATES)
def check_template(name: str, spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
    """Report in status whether the template expands, so an admin sees a mistake before users do."""
    document = capturing.template_document(str(name), spec)
    try:
        parsed = templates.parse_template(_yaml(document), source=f"DebugCaptureTemplate {name}")
        templates.check_collectors(parsed, COLLECTORS)
    except errors.ConfigError as exc:
        patch.status["valid"] = False
        patch.status["message"] = str(exc)
        raise kopf.PermanentError(str(exc)) from exc
    shadowed = name in capturing.builtin_template_names()
    patch.status["valid"] = not shadowed
    patch.status["message"] = (f'a built-in template is also called "{name}" and wins; rename this one'
                               if shadowed else f"{len(parsed.steps)} step(s): "
                               + ", ".join(s.collector for s in parsed.steps))


def _yaml(document: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(document))


# --- DebugSchedule -------------------------------------------------------------------------------

@kopf.timer(GROUP, VERSION, SCHEDULES, interval=SCHEDULE_TICK_SECONDS, initial_delay=1.0)
async def tick_schedule(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, patch: kopf.Patch,
                        logger: kopf.Logger, **_: Any) -> None:
    rt = runtime()
    name, namespace = str(body.metadata.name), str(body.metadata.namespace)
    try:
        zone = scheduling.check_schedule(str(spec.get("schedule", "")), spec.get("timeZone"))
    except errors.ConfigError as exc:
        patch.status["message"] = str(exc)
        raise kopf.PermanentError(str(exc)) from exc
    owned = await _in_thread(_owned_captures, rt.kube, namespace, name, str(body.metadata.uid))
    active = [c["metadata"]["name"] for c in owned if (c.get("status") or {}).get("phase") not in TERMINAL]
    now = _now()
    last = status.get("lastScheduleTime")
    decision = scheduling.decide(
        schedule=str(spec["schedule"]), zone=zone, now=now, last_schedule=_parse_stamp(last) if last else None,
        created=_parse_stamp(str(body.metadata.creation_timestamp)), active=active,
        policy=str(spec.get("concurrencyPolicy", "Forbid")), suspend=bool(spec.get("suspend", False)),
        starting_deadline_seconds=spec.get("startingDeadlineSeconds"))
    if decision.scheduled is not None:
        patch.status["lastScheduleTime"] = _stamp(decision.scheduled)
        if decision.action is scheduling.Action.REPLACE:
            for victim in active:
                await _in_thread(_delete_capture, rt.kube, namespace, victim)
            active = []
        if decision.action in (scheduling.Action.CREATE, scheduling.Action.REPLACE):
            made = await _in_thread(_create_scheduled_capture, rt.kube, body, decision.scheduled)
            active.append(made)
            _event(body, True, "CaptureCreated", f"created DebugCapture {made}")
            patch.status["message"] = f"created {made}"
        else:
            logger.info("skipped the run of %s: %s", _stamp(decision.scheduled), decision.reason)
            patch.status["message"] = f"skipped the run of {_stamp(decision.scheduled)}: {decision.reason}"
    history = [_history_item(c) for c in owned]
    for doomed in scheduling.to_prune(history, int(spec.get("successfulHistoryLimit", 3)),
                                      int(spec.get("failedHistoryLimit", 1))):
        logger.info("pruning %s: over the history limits", doomed)
        await _in_thread(_delete_capture, rt.kube, namespace, doomed)
    successes = [(c.get("status") or {}).get("completionTime") for c in owned
                 if (c.get("status") or {}).get("phase") in scheduling.SUCCESSFUL]
    if any(successes):
        patch.status["lastSuccessfulTime"] = max(s for s in successes if s)
    patch.status["active"] = [{"name": n} for n in active]


def _history_item(capture: Mapping[str, Any]) -> scheduling.HistoryItem:
    """creationTimestamp has whole seconds, so runs created in the same second tie on it; the
    completionTime decides between them (see :meth:`scheduling.HistoryItem.age_key`)."""
    status = capture.get("status") or {}
    completed = status.get("completionTime")
    try:
        finished = _parse_stamp(str(completed)) if completed else None
    except ValueError:
        finished = None
    return scheduling.HistoryItem(str(capture["metadata"]["name"]), str(status.get("phase", "")),
                                  _parse_stamp(str(capture["metadata"]["creationTimestamp"])), finished)


def _owned_captures(kube: Kube, namespace: str, schedule: str, uid: str) -> list[dict[str, Any]]:
    listed: Any = kube.custom().list_namespaced_custom_object(
        GROUP, VERSION, namespace, CAPTURES, label_selector=f"{SCHEDULE_LABEL}={schedule}")
    return [c for c in listed.get("items", [])
            if any(o.get("uid") == uid for o in c["metadata"].get("ownerReferences") or [])]


def _delete_capture(kube: Kube, namespace: str, name: str) -> None:
    try:
        kube.custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, CAPTURES, name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _create_scheduled_capture(kube: Kube, schedule: kopf.Body, when: datetime) -> str:
    """Create the capture of run ``when``; its name comes from the run time, so a retried tick
    finds the one it made (409) instead of making a second."""
    template = schedule.spec.get("captureTemplate") or {}
    name = f"{schedule.metadata.name}-{int(when.timestamp()) // 60}"
    labels = {**((template.get("metadata") or {}).get("labels") or {}), SCHEDULE_LABEL: schedule.metadata.name}
    body = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture",
        "metadata": {"name": name, "labels": labels, "ownerReferences": [{
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugSchedule", "name": schedule.metadata.name,
            "uid": schedule.metadata.uid, "controller": True, "blockOwnerDeletion": True}]},
        "spec": dict(template.get("spec") or {}),
    }
    try:
        kube.custom().create_namespaced_custom_object(GROUP, VERSION, str(schedule.metadata.namespace), CAPTURES,
                                                      body)
    except ApiException as exc:
        if exc.status != 409:
            raise
    return name
