"""The capture engine: resolve a pod, run a template's collectors, write one bundle, deliver it.

Front ends (the kubectl plugin's ``create --local``, the operator) call
:func:`resolve_target` and :func:`capture`; nothing else in them touches
collectors or bundles.

Collectors run concurrently: the steps of one ``window`` (CPU profile,
goroutine dump, trace) start together so they describe the same moment, and
the rest run beside them, so a capture takes about as long as its longest
window instead of the sum of its steps. A collector that fails is recorded
and the capture goes on; only a capture that collected nothing is Failed.
"""

from __future__ import annotations

import enum
import functools
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from debugcap import errors, templates
from debugcap.bundle import layout, manifest, writer
from debugcap.collectors import COLLECTORS, base, execution
from debugcap.kube import portforward, shell
from debugcap.kube.client import Kube, segment
from debugcap.settings import CaptureSettings

PPROF_PORT_ANNOTATION = "debugcap.io/pprof-port"
# Longest the steps outside a window wait for the window's requests to go out (see capture()).
WINDOW_HEAD_START_SECONDS = 0.5
DEFAULT_CONTAINER_ANNOTATION = "debugcap.io/default-container"


class Phase(enum.StrEnum):
    COMPLETED = "Completed"  # every collector ok or skipped
    PARTIALLY_FAILED = "PartiallyFailed"  # some failed, something useful was collected
    FAILED = "Failed"  # nothing useful was collected


@dataclass(frozen=True)
class CaptureOutcome:
    target: base.Target
    bundle: writer.WrittenBundle
    records: tuple[manifest.CollectorRecord, ...]
    phase: Phase


Progress = Callable[[str, manifest.CollectorRecord | None], None]


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
                                 f"its containers are: {', '.join(names)} (pick one with -c)")
    phase = status.get("phase")
    if phase != "Running":
        raise errors.TargetError(f'pod "{namespace}/{pod}" is {phase}, not Running; evidence can only '
                                 f"be captured from a running pod (see: kubectl describe pod {pod} -n {namespace})")
    cstatus = next((s for s in status.get("containerStatuses") or [] if s.get("name") == chosen), None)
    if cstatus is None or "running" not in (cstatus.get("state") or {}):
        raise errors.TargetError(f'container "{chosen}" of pod "{namespace}/{pod}" is not running; '
                                 f"see: kubectl describe pod {pod} -n {namespace}")
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
        pod_uid=meta.get("uid") or "",
    )


def phase_of(records: list[manifest.CollectorRecord]) -> Phase:
    useful = any(r.status in (manifest.CollectorStatus.OK, manifest.CollectorStatus.PARTIAL) for r in records)
    # A partial collector (a command timed out, output was cut) lost evidence too: not Completed.
    failed = any(r.status in (manifest.CollectorStatus.FAILED, manifest.CollectorStatus.PARTIAL) for r in records)
    if not useful:
        return Phase.FAILED
    return Phase.PARTIALLY_FAILED if failed else Phase.COMPLETED


def capture(
    kube: Kube,
    target: base.Target,
    template: templates.ExpandedTemplate,
    *,
    out_dir: Path,
    capture_name: str,
    settings: CaptureSettings | None = None,
    progress: Progress | None = None,
    # Steps mostly wait on the network and the kubelet, so starting all of them at once is
    # what keeps a capture as long as its longest window rather than the sum of its steps.
    parallelism: int = 8,
    http: portforward.Pool | None = None,
    commands: shell.Pool | None = None,
    started: datetime | None = None,
    window_open: Callable[[], None] | None = None,
) -> CaptureOutcome:
    """Run every step of ``template`` against ``target`` and write one bundle into ``out_dir``.

    ``http``, ``commands``: port-forwards to the pprof port and shell sessions in the container,
    already set up (the operator opens them before the pod's turn, :func:`command_pool`); the
    caller keeps ownership. Without them the capture opens and closes its own.
    ``window_open``: called once, when the requests of the steps that open the window (CPU
    profile, trace) are out or those steps ended, or at once for a template without a window.
    ``started``: the capture's start as the caller fixed it beforehand; it names the bundle, so a
    caller that records the bundle's storage key before capturing passes the time it used.
    """
    settings = settings or CaptureSettings()
    started = started or datetime.now(UTC)
    say = progress or (lambda _msg, _rec: None)
    name = layout.bundle_name(target.namespace, target.pod, started)
    scratch_dir = Path(tempfile.mkdtemp(prefix=".debugcap-", dir=out_dir))
    lock = threading.Lock()
    records: list[manifest.CollectorRecord] = []


    def unavailable(exc: shell.Unavailable) -> None:
        say(execution.NO_SHELL if exc.no_shell else f"cannot run commands in {target.namespace}/{target.pod}: {exc}",
            None)

    own_commands = commands is None
    commands = commands or command_pool(kube, target, settings, on_unavailable=unavailable)
    own_http = http is None
    forwards = http or portforward.Pool(kube, namespace=target.namespace, pod=target.pod, port=target.pprof_port,
                                        size=forwards_needed(template))

    try:
        with writer.BundleWriter(directory=out_dir, name=name, redact=settings.redact,
                                 spool_dir=scratch_dir, durable=settings.durable_bundles) as bundle:

            def add_file(path: str, src: base.Scratch) -> None:
                with lock:
                    bundle.add_stream(path, src.reader())

            # One event per step that opens the window (a CPU profile, a trace): set once its
            # request is out, or once the step ended without sending it.
            opening = {id(s): threading.Event() for s in template.steps if s.window and _seconds(s.params) > 0}
            announced = threading.Event()  # window_open was called
            window_lock = threading.Lock()

            def opened(step: templates.Step | None) -> None:
                with window_lock:
                    if step is not None:
                        opening[id(step)].set()
                    if announced.is_set() or not all(e.is_set() for e in opening.values()):
                        return
                    announced.set()
                if window_open is not None:
                    window_open()

            def run_step(step: templates.Step, delay: float) -> manifest.CollectorRecord:
                try:
                    return _run_step(step, delay)
                finally:
                    if id(step) in opening:
                        opened(step)

            def _run_step(step: templates.Step, delay: float) -> manifest.CollectorRecord:
                if delay > 0:
                    time.sleep(delay)
                http: base.HttpGets = forwards
                if id(step) in opening:
                    http = _Announcing(forwards, functools.partial(opened, step))
                elif not step.window:
                    # The window opens when its requests reach the pod. Exec sessions, API reads
                    # and quick GETs started beside them compete for the same API server, kubelet
                    # and CPUs, and delayed the window by up to 0.25 s with 8 pods at once; they
                    # fit in the window anyway.
                    until = time.monotonic() + WINDOW_HEAD_START_SECONDS
                    for sent in opening.values():
                        sent.wait(max(until - time.monotonic(), 0))
                collector = COLLECTORS[step.collector]()
                ctx = base.CollectContext(kube=kube, target=target, settings=settings, params=step.params,
                                          add_file=add_file, scratch_dir=scratch_dir, commands=commands,
                                          http=http)
                t0 = time.monotonic()
                try:
                    result = collector.collect(ctx)
                except errors.DebugcapError as exc:
                    result = base.CollectorResult(base.Status.FAILED, str(exc), tuple(ctx.added))
                except Exception as exc:  # one collector's bug must not lose the others' evidence
                    result = base.CollectorResult(base.Status.FAILED, f"internal error in {step.collector}: "
                                                  f"{type(exc).__name__}: {errors.shorten(str(exc))}", tuple(ctx.added))
                files = tuple(dict.fromkeys(ctx.added))
                size = sum(bundle.files[f].size for f in files if f in bundle.files)
                record = manifest.CollectorRecord(
                    name=step.collector, status=result.status, duration_ms=int((time.monotonic() - t0) * 1000),
                    bytes=size, message=result.message, files=files)
                with lock:
                    records.append(record)
                say(step.collector, record)
                return record

            if not opening:
                opened(None)
            futures: list[Future[manifest.CollectorRecord]] = []
            with ThreadPoolExecutor(max_workers=max(parallelism, _window_size(template))) as pool:
                for step, delay in _schedule(template):
                    futures.append(pool.submit(run_step, step, delay))
                for f in futures:
                    f.result()
            ordered = _in_template_order(records, template)
            fields = manifest.ManifestFields(
                capture=manifest.CaptureInfo(name=capture_name, template=template.name,
                                             parameters=dict(template.parameters)),
                target=manifest.TargetInfo(namespace=target.namespace, pod=target.pod, container=target.container,
                                           node=target.node or None, image=target.image or None),
                started_at=started, finished_at=datetime.now(UTC), collectors=tuple(ordered))
            written = bundle.finish(fields)
    finally:
        if own_commands:
            commands.close()
        if own_http:
            forwards.close()
        shutil.rmtree(scratch_dir, ignore_errors=True)
    return CaptureOutcome(target=target, bundle=written, records=tuple(ordered), phase=phase_of(ordered))


class _Announcing:
    """The port-forward pool as a window step sees it: ``sent`` is called once its request is out."""

    def __init__(self, pool: portforward.Pool, sent: Callable[[], None]) -> None:
        self.pool, self.sent = pool, sent

    def get(self, path: str, sink: IO[bytes], *, timeout: float, max_bytes: int) -> portforward.HttpResult:
        return self.pool.get(path, sink, timeout=timeout, max_bytes=max_bytes, sent=self.sent)


def command_pool(kube: Kube, target: base.Target, settings: CaptureSettings, *,
                 on_unavailable: Callable[[shell.Unavailable], None] | None = None) -> shell.Pool:
    """The shell sessions a capture of ``target`` runs its commands in (none open yet)."""
    return shell.Pool(kube, namespace=target.namespace, pod=target.pod, container=target.container,
                      size=settings.exec_sessions, open_timeout=min(settings.exec_timeout_seconds, 15),
                      on_unavailable=on_unavailable)


def forwards_needed(template: templates.ExpandedTemplate) -> int:
    """Port-forwards a capture of ``template`` keeps open: one per windowed step that lasts (CPU
    profile, trace), held for the whole window, and one that every quick GET takes turns on,
    the mid-window goroutine dump included. Each forward is a stream through the API server and
    the kubelet; on a busy node those streams are what a capture costs."""
    return sum(1 for s in template.steps if s.window and _seconds(s.params) > 0) + 1


def window_seconds(template: templates.ExpandedTemplate) -> float:
    """How long the template's window lasts (its longest CPU profile or trace); 0 without one."""
    return max((_seconds(s.params) for s in template.steps if s.window), default=0.0)


def _window_size(template: templates.ExpandedTemplate) -> int:
    return sum(1 for s in template.steps if s.window)


def _schedule(template: templates.ExpandedTemplate) -> list[tuple[templates.Step, float]]:
    """Windowed steps first, all at once; an instant step in a window (the goroutine dump) waits
    half the shortest windowed duration so it lands in the middle of the window."""
    windowed = [s for s in template.steps if s.window]
    durations = [_seconds(s.params) for s in windowed if _seconds(s.params) > 0]
    middle = min(durations) / 2 if durations else 0.0
    plan = [(s, 0.0 if _seconds(s.params) > 0 else middle) for s in windowed]
    return plan + [(s, 0.0) for s in template.steps if not s.window]


def _seconds(params: Mapping[str, Any]) -> float:
    try:
        return float(params.get("seconds") or 0)
    except (TypeError, ValueError):
        return 0.0


def _in_template_order(records: list[manifest.CollectorRecord],
                       template: templates.ExpandedTemplate) -> list[manifest.CollectorRecord]:
    order = {s.collector: i for i, s in enumerate(template.steps)}
    return sorted(records, key=lambda r: order.get(r.name, len(order)))
