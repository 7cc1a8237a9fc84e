"""Blocking work behind one pod of a DebugCapture: prepare it, collect its evidence, store it.

:mod:`~debugcap.operator.pod_scheduling` runs these functions in a thread executor, never on
kopf's event loop, through :class:`PodSteps`. Collection itself is :func:`debugcap.capture.capture`
and upload is :func:`debugcap.delivering.deliver`; this module only adds what a controller needs
around them: a pprof pre-flight check, a deadline, and messages that name the spec field to fix.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from debugcap import capture as engine
from debugcap import delivering, errors, hints, templates
from debugcap.bundle import layout, manifest
from debugcap.capture import deadline
from debugcap.capture.target import ContainerState, require_running, resolve_container
from debugcap.collectors import COLLECTORS, base
from debugcap.kube import podhttp, portforward
from debugcap.kube.client import Kube
from debugcap.kube.shared_reads import SharedReads
from debugcap.operator import firing_steps, health, reporting, results
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.requests import RESTART_REASON, CaptureRequest
from debugcap.operator.results import PodResult
from debugcap.operator.targets import PodSelection
from debugcap.settings import CaptureSettings

logger = logging.getLogger(__name__)
# Longest an upload waits for a status write naming its key to succeed (store_pod); the scheduler tries
# that write again for 45 s meanwhile (pod_scheduling.KEY_WRITE_WAITS).
KEY_SENT_SECONDS: Final = 60.0
# Longest a pod's lock waits for steps abandoned at the deadline to end once their connections are
# closed (_end_abandoned_steps). A request on a closed tunnel fails within a second, and it is the
# profile requests that matter to the next capture; an exec command may run on to its own timeout,
# and the next capture's busy-profiler retry covers what is left. 3 s: judgement call.
ABANDONED_STEPS_SECONDS: Final = 3.0
# A container this young whose pprof port refuses may only not be listening yet: a Go program starts its
# pprof server after its start-up (config, caches, connections), which can take tens of seconds. Judgement call.
JUST_STARTED_SECONDS: Final = 60.0


def _uses(template: templates.ExpandedTemplate, kind: base.Kind) -> bool:
    """Whether a step the capture runs (not one it skips) is of ``kind``."""
    return any(COLLECTORS[s.collector].kind is kind for s in template.steps if not s.skipped)


def probe_pprof(http: engine.Transport, target: base.Target, timeout: float, *, just_started: str = "") -> None:
    """Fail fast, naming spec.parameters.pprofPort, when the answer proves nothing serves pprof
    on the target port (:func:`pprof_absent`): the pod's port refused the connection, or the pod
    itself answered 404 for the index. ``just_started`` (:func:`just_started`) says the container
    is young enough for a refusal to mean only that its program is not listening yet: the message
    then says that instead of blaming the port.

    Without this, a wrong port fails every Go collector one by one, naming no field to fix. Any
    other failure (no pods/proxy rights, an unreachable pod IP, a timeout) says nothing about the
    port: the capture goes on, the Go collectors record their own errors, and the exec and
    Kubernetes evidence is kept. The connection it opens serves the capture.
    """
    try:
        res = http.get("/debug/pprof/", io.BytesIO(), timeout=timeout, max_bytes=64 << 10)
    except errors.CollectorError as exc:
        if not pprof_absent(exc):
            logger.info("pprof check of %s/%s inconclusive: %s", target.namespace, target.pod, exc)
            return
        why = str(exc)
        refused = True
    else:
        # Through pods/proxy a 404 may be a gateway's in front of the API server, not the pod's.
        if res.status != 404 or http.access().get("http") not in POD_ANSWERS:
            return
        why = "it answered 404 for /debug/pprof/: a server without net/http/pprof"
        refused = False
    via = http.access().get("http", "the chosen transport")
    if refused and just_started:
        # Both causes are named: a young program not listening yet, or a wrong port, which a
        # capture of a pod created a moment ago (a test, a rollout) is just as likely to meet.
        # The advice before the transport's own words, which can be long and are cut first.
        raise errors.TargetError(
            f'spec.parameters.pprofPort: nothing answered on port {target.pprof_port} of pod "{target.pod}": '
            f"{just_started} and may not serve pprof yet, or the port is wrong (through {via}: {why})")
    also = ""
    if refused and via in ("direct", "proxy"):
        also = ("; or a NetworkPolicy rejects connections to the pod's port, which looks the same: the Go "
                f"evidence cannot be had through {via} then: use spec.parameters.transport: port-forward "
                "(--transport port-forward)")
    raise errors.TargetError(
        f"spec.parameters.pprofPort: nothing serves /debug/pprof on port {target.pprof_port} of pod "
        f'"{target.pod}" (through {via}: {why}); set spec.parameters.pprofPort to the port of the Go program\'s '
        f"pprof server, or annotate the pod with {engine.PPROF_PORT_ANNOTATION}{also}")


# The transports through which an HTTP answer is the pod's own: pods/proxy's may come from a
# gateway in front of the API server (Rancher, an auth proxy), which answers 404 for paths it does not know.
POD_ANSWERS: Final = ("direct", "port-forward")


def just_started(state: ContainerState | None, request: CaptureRequest, now: datetime) -> str:
    """Why a refused pprof port may only mean the program is not listening yet, in words ("" when
    nothing says so): the container started less than JUST_STARTED_SECONDS ago, or the capture is
    the post-mortem of its restart (the trigger saw the restart moments ago)."""
    age = None if state is None or state.started_at is None else (now - state.started_at).total_seconds()
    ago = f" {max(age, 0.0):.0f} s ago" if age is not None else ""
    if request.firing is not None and request.firing.reason == RESTART_REASON:
        return f"the container restarted{ago}"
    if age is not None and age < JUST_STARTED_SECONDS:
        return f"the container started{ago}"
    return ""


def pprof_absent(exc: errors.CollectorError) -> bool:
    """Whether a failed GET proves nothing listens on the pod's port: the pod IP refused it
    (direct, or the API server's dial for pods/proxy) or the kubelet's dial inside the pod did
    (port-forward). Forbidden, unreachable, a timeout: no proof either way. (A NetworkPolicy
    that rejects rather than drops also refuses: the Go evidence cannot be had through that
    transport either, and the message says so.)"""
    if isinstance(exc, podhttp.Unreachable):
        return exc.refused
    return isinstance(exc, portforward.Refused)


@dataclass(frozen=True)
class Collected:
    """One pod's evidence, written to a bundle on local disk and not stored yet."""

    target: base.Target
    outcome: engine.CaptureOutcome
    out_dir: Path  # the pod's scratch directory; store_pod removes it
    collectors: tuple[Mapping[str, Any], ...]
    clock: float  # time.monotonic() when the pod's capture began

    def discard(self) -> None:
        shutil.rmtree(self.out_dir, ignore_errors=True)

    def failed(self, message: str) -> PodResult:
        return PodResult(name=self.target.pod, phase="Failed", container=self.target.container,
                         node=self.target.node, message=message, access=dict(self.outcome.bundle.manifest.access),
                         duration_seconds=time.monotonic() - self.clock)


@dataclass(frozen=True)
class Prepared:
    """A pod resolved, with its HTTP transport chosen (and a port-forward open when that is the
    one), waiting for a concurrency slot. Its shell sessions (or debug container) open during the
    capture, beside the window; the caller closes both afterwards."""

    target: base.Target
    settings: CaptureSettings
    http: engine.Transport
    commands: engine.CommandChannel
    state: ContainerState | None = None  # the container's, as resolved
    # The capture's template as this pod runs it, when it differs (a post-mortem of a container
    # that is not running skips its Go and exec steps); None: the capture's own.
    template: templates.ExpandedTemplate | None = None

    def close(self) -> None:
        """Close the pod's connections. After its capture this runs outside the slot: ending an exec
        waits for the shell to exit in the pod, 10-70 ms under load."""
        try:
            self.commands.close()
        finally:
            self.http.close()


def prepare_pod(kube: Kube, namespace: str, pod: str, request: CaptureRequest, template: templates.ExpandedTemplate,
                *, settings: CaptureSettings, read: Mapping[str, Any] | None = None) -> Prepared | PodResult:
    """Resolve the pod and pick its HTTP transport (opening a port-forward when that is the one),
    before the pod holds a concurrency slot.

    A tunnel is a TLS handshake and a stream set up through the API server, the kubelet and the
    runtime: 0.1 s median, 0.2 s p90, with 8 pods capturing on two cores, and all of it stood
    between a slot and its profile window. Opened while earlier pods' windows run, it costs the
    slot nothing. Nothing is asked of the pod's program until :func:`collect_pod`. A tunnel that
    fails to open is met again, and reported, by the capture's own requests. The shell session is
    not opened here: it takes a ``runc exec`` (0.2-0.3 s), which for the first pods would delay
    their windows, and inside the capture it runs beside the window anyway (measured: opening it
    here made a 20-pod capture 0.15 s slower). ``read``: the pod's JSON from :func:`find_pods`.

    The post-mortem of a restart also takes a container that is not running (waiting to restart,
    in CrashLoopBackOff): its previous logs, the pod's YAML and events are what is left of the
    container that died, and the steps that need it running are skipped, saying so
    (:func:`firing_steps.not_running`).
    """
    own: templates.ExpandedTemplate | None = None
    try:
        target, state = resolve_container(kube, namespace, pod, request.container, request.pprof_port, read=read)
        if request.firing is not None and request.firing.reason == RESTART_REASON and not state.running:
            own = template = firing_steps.not_running(template, state.state)
        if own is None:
            require_running(target, state)
    except errors.DebugcapError as exc:
        return PodResult(name=pod, phase="Failed", message=str(exc))
    http = engine.http_pool(kube, target, settings, template)
    commands = engine.command_pool(kube, target, settings)
    if _uses(template, base.Kind.GO):
        http.open()
    return Prepared(target=target, settings=settings, http=http, commands=commands, state=state, template=own)


def capture_settings(config: DebugcapConfig, request: CaptureRequest) -> CaptureSettings:
    """The engine's settings for the pods of one capture: the operator's defaults and switches,
    then what the DebugCapture asks for. Errors name the spec field and the operator setting."""
    mode = request.command_mode or config.command_mode
    if not config.ephemeral_containers:
        if mode == "ephemeral":
            raise errors.ConfigError("spec.parameters.commandMode is ephemeral, but this operator does not add "
                                     f"ephemeral containers; {hints.ENABLE_EPHEMERAL}")
        mode = "exec"
    image = request.debug_image or config.debug_image
    if image not in (config.debug_image, *config.allowed_debug_images):
        raise errors.ConfigError(f'spec.parameters.debugImage "{image}" is not an image this operator may run in '
                                 f"pods; {hints.ALLOW_DEBUG_IMAGE}")
    settings = CaptureSettings(durable_bundles=False, command_mode=mode, debug_image=image,
                               http_transport=request.transport or config.http_transport,
                               redaction_patterns=config.redaction_patterns)
    if request.timeout_seconds:
        settings = dataclasses.replace(settings, exec_timeout_seconds=float(request.timeout_seconds),
                                       http_timeout_seconds=float(request.timeout_seconds))
    limit = float(request.deadline_seconds) if request.deadline_seconds else settings.capture_timeout_seconds
    return dataclasses.replace(settings, capture_timeout_seconds=limit)


def collect_pod(kube: Kube, prepared: Prepared, request: CaptureRequest, template: templates.ExpandedTemplate, *,
                capture_name: str, work_dir: Path, probe_seconds: float, abandoned: threading.Event,
                started: datetime, window_open: Callable[[], None] | None = None,
                shared: SharedReads | None = None) -> Collected | PodResult:
    """Capture one prepared pod into a bundle on local disk; failures come back as a Failed
    :class:`PodResult`. The caller closes ``prepared`` afterwards; ``window_open``: see
    :func:`debugcap.capture.capture`.

    Everything that asks the pod for evidence happens here, and nothing after: the caller holds
    the pod's lock and a concurrency slot for this part only, and uploads with :func:`store_pod`.
    ``abandoned`` is set by the caller when the pod's deadline passed: the bundle is then
    dropped, so S3 never holds a bundle the status does not list. ``started`` names the bundle,
    so it is stored under ``planned_key(store, namespace, pod, started)``.
    """
    clock = time.monotonic()
    target, http = prepared.target, prepared.http
    template = prepared.template or template
    namespace, pod = target.namespace, target.pod
    # The pprof check runs beside the capture rather than before it: it is one round trip on a
    # busy API server, and waiting for it delayed every pod's window. Its verdict still decides
    # (see _verdict): a closed port fails the Go steps, and the pod when it has nothing else.
    probe_failed: list[errors.TargetError] = []
    young = just_started(prepared.state, request, datetime.now(UTC))

    def probe() -> None:
        try:
            probe_pprof(http, target, probe_seconds, just_started=young)
        except errors.TargetError as exc:
            probe_failed.append(exc)

    checking = threading.Thread(target=probe, name=f"pprof check {namespace}/{pod}", daemon=True)
    out_dir = work_dir / namespace / capture_name / pod  # per pod: each removes its own when done
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if _uses(template, base.Kind.GO):
            checking.start()
        outcome = engine.capture(kube, target, template, out_dir=out_dir, capture_name=capture_name,
                                 settings=prepared.settings, http=http, commands=prepared.commands,
                                 started=started, window_open=window_open,
                                 deadline_setting="spec.parameters.deadlineSeconds", shared=shared)
        if checking.ident is not None:  # started: its verdict decides, if it comes in time
            # Its GET ends within probe_seconds; 5 s more for a connection being opened
            # (judgement call). One still running is no verdict: the pod does not keep its slot for it.
            # Past the capture's deadline, not even that: only a refusal proves anything, and it
            # comes at once; a check still waiting then (a pod trickling its answer) would hold the
            # pod's result back by up to probe_seconds.
            checking.join(0.0 if cut_at_deadline(outcome.records) else probe_seconds + 5.0)
        if not outcome.steps_ended.is_set():  # after the check: closing would cut its request
            _end_abandoned_steps(prepared, outcome.steps_ended)
    except errors.DebugcapError as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        return PodResult(name=pod, phase="Failed", container=target.container, node=target.node,
                         message=str(exc), duration_seconds=time.monotonic() - clock)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    collected = Collected(target=target, outcome=outcome, out_dir=out_dir, clock=clock,
                          collectors=results.collector_entries(outcome.records))
    return _verdict(collected, str(probe_failed[0]) if probe_failed else "", abandoned=abandoned.is_set())


def _verdict(collected: Collected, probe_failed: str, *, abandoned: bool) -> Collected | PodResult:
    """What becomes of a pod's collected bundle: dropped when the pod's deadline abandoned it, or
    when the pprof check proved nothing serves pprof and the bundle holds nothing but the Go
    steps' failures. A bundle with other evidence (the exec and Kubernetes steps; a restart's
    post-mortem always has the previous container's logs and the pod's YAML) is kept: the Go
    steps that failed carry the check's message, which says what to fix, and the pod ends
    PartiallyFailed. The bundle's manifest keeps each step's own error."""
    if abandoned:
        collected.discard()
        return collected.failed("abandoned after spec.parameters.deadlineSeconds; bundle not uploaded")
    if not probe_failed:
        return collected
    if not other_evidence(collected.outcome.records):
        collected.discard()
        return collected.failed(probe_failed)
    entries = tuple({**entry, "message": errors.shorten(probe_failed)} if _is_go(entry["name"])
                    and entry["status"] == str(manifest.CollectorStatus.FAILED) else entry
                    for entry in collected.collectors)
    return dataclasses.replace(collected, collectors=entries)


def cut_at_deadline(records: Iterable[manifest.CollectorRecord]) -> bool:
    """Whether the capture's deadline abandoned one of its steps."""
    return any(r.message.startswith(deadline.ABANDONED) for r in records)


def other_evidence(records: Iterable[manifest.CollectorRecord]) -> bool:
    """Whether a step other than a Go one collected something."""
    useful = (manifest.CollectorStatus.OK, manifest.CollectorStatus.PARTIAL)
    return any(r.status in useful and not _is_go(r.name) for r in records)


def _is_go(collector: str) -> bool:
    found = COLLECTORS.get(collector)
    return found is not None and found.kind is base.Kind.GO


def _end_abandoned_steps(prepared: Prepared, ended: threading.Event) -> None:
    """After the deadline, end the steps it abandoned while the caller still holds the pod's lock.

    A CPU profile or trace goes on in the Go process until its connection closes, and the next
    capture of this pod, waiting for the lock, would be refused ("cpu profiling already in use").
    Closing the connections ends those requests at once; an exec command may run on to its own
    timeout, but holds nothing the next capture needs, so the wait is bounded.
    """
    try:
        prepared.close()
    except Exception:  # noqa: BLE001 - the bundle is written; a failed close must not lose it
        logger.warning("closing the connections of %s/%s failed", prepared.target.namespace,
                       prepared.target.pod, exc_info=True)
    ended.wait(ABANDONED_STEPS_SECONDS)


def store_pod(store: delivering.Store, collected: Collected, *, key_sent: threading.Event | None = None,
              capture: delivering.Capture | None = None) -> PodResult:
    """Upload a collected pod's bundle (or spool it) and give the pod's result, not analysed yet.

    ``key_sent`` is set once a status write naming the bundle's key succeeded; the upload waits for
    it (KEY_SENT_SECONDS at most, then :func:`_unnamed`): no bundle is stored under a key no status
    names. A stored bundle's local copy stays for :func:`assess_pod`, which removes it; a spooled
    one has moved to the spool.
    """
    target, outcome = collected.target, collected.outcome
    bundle = outcome.bundle
    if key_sent is not None and not key_sent.wait(timeout=KEY_SENT_SECONDS):
        return _unnamed(store, collected, capture)
    try:
        # Stored before it is analysed: an operator killed while analysing (the analysis is the
        # memory-hungry part) must not take evidence with it.
        delivery, _flushed = delivering.deliver(store, bundle, namespace=target.namespace, pod=target.pod,
                                                when=bundle.manifest.started_at, keep_local=True, capture=capture)
    except errors.DebugcapError as exc:
        # Neither stored nor spooled: the bundle stays where it is (the message says where), and
        # its key stays listed in case the store took it before failing.
        key = delivering.object_key(store, target.namespace, target.pod, bundle.manifest.started_at,
                                    bundle.path.name, capture)
        return dataclasses.replace(collected.failed(str(exc)), upload_key=key)
    phase = str(outcome.phase)
    # Steps cut at the deadline are named also when they kept files (partial): the pod's message
    # says it ran into its deadline.
    cut = [e for e in collected.collectors if str(e.get("message", "")).startswith(deadline.ABANDONED)]
    message = "; ".join(m for m in (step_messages(collected.collectors, "failed"), step_messages(cut, "partial")) if m)
    if phase == "Failed" and not message:  # every step skipped: say why, not nothing
        message = "nothing was collected: " + (step_messages(collected.collectors, "skipped") or "no step ran")
    uri = ""
    if delivery.stored:
        uri = store.backend.uri(key=delivery.key)
    else:
        shutil.rmtree(collected.out_dir, ignore_errors=True)  # the bundle itself is in the spool now
        phase = "Failed" if phase == "Failed" else "PartiallyFailed"
        message = (f"not uploaded: its key holds another object (not replaced); the bundle is set aside at "
                   f"{delivery.location}, never sent: {delivery.error}" if delivery.held
                   else f"upload failed, bundle kept in the operator's spool and sent later: {delivery.error}")
    return PodResult(name=target.pod, phase=phase, container=target.container, node=target.node,
                     message=errors.shorten(message, 512), uri=uri, key=delivery.key if delivery.stored else "",
                     upload_key="" if delivery.stored else delivery.key,
                     sha256=bundle.sha256, size_bytes=bundle.size, collectors=collected.collectors,
                     access=dict(bundle.manifest.access), duration_seconds=time.monotonic() - collected.clock)


def _unnamed(store: delivering.Store, collected: Collected, capture: delivering.Capture | None) -> PodResult:
    """The pod Failed, its bundle set aside in the spool's ``.held/`` (no flush sends it; a restart
    keeps it): no status names its key, and a bundle under such a key is never adopted or deleted."""
    target, bundle = collected.target, collected.outcome.bundle
    key = delivering.object_key(store, target.namespace, target.pod, bundle.manifest.started_at,
                                bundle.path.name, capture)
    why = (f"bundle not uploaded: no status write naming its key {key} succeeded within {KEY_SENT_SECONDS:.0f} s "
           "(can the operator reach the API server?), and a bundle no status names is never adopted or deleted")
    try:
        with store.lock:
            where = f"kept at {store.spool.add(key=key, bundle=bundle.path, sha256=bundle.sha256, held=True).path}"
        shutil.rmtree(collected.out_dir, ignore_errors=True)
    except errors.DebugcapError as exc:  # still in the pod's scratch directory, which exc names
        where = str(exc)
    logger.error("%s/%s: %s; %s", target.namespace, target.pod, why, where)  # no status write may ever succeed
    # The key stays listed: should a later write carry it, the capture's expiry removes the held copy.
    return dataclasses.replace(collected.failed(errors.shorten(
        f"{why}; {where} in the operator's spool, never sent: copy it from there" if where.startswith("kept")
        else f"{why}; {where}", 512)), upload_key=key)


def step_messages(entries: Iterable[Mapping[str, Any]], status: str) -> str:
    """The messages of the steps that ended ``status``, each once with the steps that share it
    ("pprof-heap, expvar: nothing answered on port 6060 ..."): a closed port or a stopped
    container says the same to every step."""
    named: dict[str, list[str]] = {}
    for entry in entries:
        if entry.get("status") == status and entry.get("message"):
            named.setdefault(str(entry["message"]), []).append(str(entry["name"]))
    return "; ".join(f"{', '.join(names)}: {message}" for message, names in named.items())


def assess_pod(collected: Collected, stored: PodResult, *, generation: int | None, trace_limit: int | None,
               analyse: bool = True) -> PodResult:
    """``stored`` (from :func:`store_pod`) with the analysis of the bundle's local copy, which is
    then removed. Only a stored bundle with evidence in it is analysed: a spooled one waits in the
    spool, where the next upload may take it away mid-read, and one whose upload failed is not the
    pod's stored evidence (neither counts as healthy); a Failed pod collected nothing to read.
    ``analyse`` False (the capture is being deleted) only removes the copy."""
    if not stored.key:  # spooled (the spool has it) or refused (left where the message says, for a person)
        return stored
    try:
        if not analyse or stored.phase == "Failed":
            return stored
        return dataclasses.replace(stored, health=health.assess(
            collected.outcome.bundle.path, generation=generation, now=reporting.now(), trace_limit=trace_limit))
    finally:
        shutil.rmtree(collected.out_dir, ignore_errors=True)


def planned_key(store: delivering.Store, namespace: str, pod: str, started: datetime,
                capture: delivering.Capture | None = None) -> str:
    """The key a capture of ``pod`` started at ``started`` stores its bundle under."""
    return delivering.object_key(store, namespace, pod, started, layout.bundle_name(namespace, pod, started),
                                 capture)


def delete_bundles(store: delivering.Store, keys: list[str]) -> None:
    """Delete bundles (and their sidecars), stored or spooled; a missing key is already deleted."""
    delivering.delete(store, keys)


@dataclass(frozen=True)
class PodSteps:
    """The steps of :class:`debugcap.operator.pod_scheduling.PodWork` for the pods of one capture."""

    kube: Kube
    bundles: delivering.Store
    namespace: str
    capture_name: str
    request: CaptureRequest
    template: templates.ExpandedTemplate
    work_dir: Path
    probe_seconds: float
    settings: CaptureSettings  # from capture_settings()
    selection: PodSelection | None = None  # the pods as find_pods read them
    generation: int | None = None  # the capture's metadata.generation, for the pods' conditions
    trace_limit: int | None = health.TRACE_LIMIT_BYTES  # the largest trace the analysis reads
    capture_uid: str = ""  # the capture's metadata.uid: its keys carry <name>_<uid> (delivering.Capture)
    shared: SharedReads | None = None  # what its pods read once for all (kube.shared_reads); None for one pod

    @property
    def capture(self) -> delivering.Capture | None:
        return delivering.Capture(self.capture_name, self.capture_uid) if self.capture_uid else None

    def prepare(self, pod: str) -> Prepared | PodResult:
        read, read_at = self.selection.fresh_read(pod) if self.selection is not None else (None, 0.0)
        if read is not None and self.shared is not None:  # its pod-yaml step stores the pod as resolved
            self.shared.put(("pod", self.namespace, pod), read, read_at)
        return prepare_pod(self.kube, self.namespace, pod, self.request, self.template, settings=self.settings,
                           read=read)

    def planned_key(self, pod: str, started: datetime) -> str:
        return planned_key(self.bundles, self.namespace, pod, started, self.capture)

    def collect(self, prepared: Prepared, *, started: datetime, abandoned: threading.Event,
                window_open: Callable[[], None]) -> Collected | PodResult:
        return collect_pod(self.kube, prepared, self.request, self.template, capture_name=self.capture_name,
                           work_dir=self.work_dir, probe_seconds=self.probe_seconds, abandoned=abandoned,
                           started=started, window_open=window_open, shared=self.shared)

    def store(self, collected: Collected, *, key_sent: threading.Event | None) -> PodResult:
        return store_pod(self.bundles, collected, key_sent=key_sent, capture=self.capture)

    def assess(self, collected: Collected, stored: PodResult, *, analyse: bool) -> PodResult:
        return assess_pod(collected, stored, generation=self.generation, trace_limit=self.trace_limit,
                          analyse=analyse)
