"""Blocking work behind one DebugCapture: find its pods, expand its template, capture one pod.

:mod:`debugcap.operator.handlers` runs these functions in a thread executor, never on kopf's event
loop, and turns their results into status patches and Events. Collection itself is
:func:`debugcap.capture.capture` and upload is :func:`debugcap.delivering.deliver`; this module only
adds what a controller needs around them: selectors, workloads, DebugCaptureTemplates, a pprof
pre-flight check, and messages that name the spec field to fix.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import yaml
from kubernetes.client.exceptions import ApiException

from debugcap import capture as engine
from debugcap import delivering, errors, resources, templates
from debugcap.bundle import layout, manifest, verify
from debugcap.collectors import COLLECTORS, base
from debugcap.kube import portforward, shell
from debugcap.kube.client import Kube, segment
from debugcap.operator.requests import CaptureRequest, camel_parameter
from debugcap.settings import CaptureSettings

GROUP: Final = resources.GROUP
VERSION: Final = resources.VERSION
TEMPLATES_PLURAL: Final = resources.TEMPLATES
# Longest an upload waits for the status write that names its key (see store_pod).
KEY_SENT_SECONDS: Final = 60.0


@dataclass(frozen=True)
class PodSelection:
    pods: tuple[str, ...]
    note: str = ""  # pods left out (not running, over maxPods), for status.message
    objects: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # name -> pod JSON
    read_at: float = dataclasses.field(default_factory=time.monotonic)  # when ``objects`` were read


@dataclass(frozen=True)
class PodResult:
    """One pod's entry in ``status.pods``."""

    name: str
    phase: str
    container: str = ""
    node: str = ""
    message: str = ""
    uri: str = ""
    key: str = ""
    sha256: str = ""
    size_bytes: int = 0
    collectors: tuple[Mapping[str, Any], ...] = ()
    duration_seconds: float = 0.0
    # Where the bundle will be stored, written with the pod's Running status before any capture
    # work: an operator that dies between the upload and the status write that lists the bundle
    # leaves this behind, and its successor adopts (or deletes) what it names.
    upload_key: str = ""

    def as_status(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "phase": self.phase}
        if self.container:
            entry["container"] = self.container
        if self.node:
            entry["node"] = self.node
        if self.message:
            entry["message"] = self.message
        if self.key:
            entry["bundle"] = {"uri": self.uri, "key": self.key, "sha256": self.sha256, "sizeBytes": self.size_bytes}
        elif self.upload_key:
            entry["uploadKey"] = self.upload_key
        if self.collectors:
            entry["collectors"] = [dict(c) for c in self.collectors]
        return entry


def _api_error(exc: ApiException, what: str) -> errors.TargetError:
    return errors.TargetError(f"cannot read {what}: {exc.status} {errors.shorten(str(exc.reason))}")


def find_pods(kube: Kube, namespace: str, request: CaptureRequest) -> PodSelection:
    """The pods ``request`` targets, only in ``namespace``: a DebugCapture never reaches another one.

    Pods are read as raw JSON and handed on to the capture of each (``PodSelection.objects``),
    which would otherwise read each one again just before its window.
    """
    if request.pod is not None:
        try:
            pod: Any = kube.get_json(f"/api/v1/namespaces/{segment(namespace)}/pods/{segment(request.pod)}")
        except ApiException as exc:
            if exc.status == 404:
                raise errors.TargetError(
                    f'spec.target.pod: no pod "{request.pod}" in namespace "{namespace}" (a DebugCapture only '
                    f"captures pods in its own namespace); list them with: kubectl get pods -n {namespace}") from exc
            raise _api_error(exc, f'pod "{request.pod}"') from exc
        _check_container(pod, request.container)
        phase = (pod.get("status") or {}).get("phase")
        if phase != "Running":
            raise errors.TargetError(
                f'spec.target.pod: pod "{request.pod}" is {phase}, not Running; evidence can only be '
                f"captured from a running pod (see: kubectl describe pod {request.pod} -n {namespace})")
        return PodSelection((request.pod,), objects={request.pod: pod})

    if request.workload is not None:
        selector, where = _workload_selector(kube, namespace, request), "spec.target.workload"
        what = f'{request.workload.kind} "{request.workload.name}"'
    else:
        selector, where, what = request.selector or "", "spec.target.selector", f'selector "{request.selector}"'
    try:
        listed: Any = kube.get_json(f"/api/v1/namespaces/{segment(namespace)}/pods", [("labelSelector", selector)])
    except ApiException as exc:
        if exc.status == 400:
            raise errors.ConfigError(f'{where}: "{selector}" is not a valid label selector: '
                                     f"{errors.shorten(str(exc.body or exc.reason))}") from exc
        raise _api_error(exc, f"pods matching {selector}") from exc
    items = sorted(listed.get("items") or [], key=_pod_name)
    if not items:
        raise errors.TargetError(f'{where}: no pod in namespace "{namespace}" matches {what} ({selector}); '
                                 f"check the labels with: kubectl get pods -n {namespace} --show-labels")
    for pod in items:
        _check_container(pod, request.container)
    running = [p for p in items if (p.get("status") or {}).get("phase") == "Running"
               and not p["metadata"].get("deletionTimestamp")]
    if not running:
        raise errors.TargetError(f'{where}: {len(items)} pod(s) match {what} but none is Running; '
                                 f"see: kubectl get pods -n {namespace} -l '{selector}'")
    notes = []
    if len(running) < len(items):
        notes.append(f"{len(items) - len(running)} matching pod(s) not Running were skipped")
    if len(running) > request.max_pods:
        notes.append(f"{len(running) - request.max_pods} running pod(s) over spec.target.maxPods="
                     f"{request.max_pods} were skipped")
    chosen = running[: request.max_pods]
    return PodSelection(tuple(_pod_name(p) for p in chosen), "; ".join(notes),
                        objects={_pod_name(p): p for p in chosen})


def _pod_name(pod: Mapping[str, Any]) -> str:
    return str(pod["metadata"]["name"])


def _check_container(pod: Mapping[str, Any], container: str | None) -> None:
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    if container is not None and container not in names:
        raise errors.TargetError(f'spec.target.container: pod "{_pod_name(pod)}" has no container "{container}"; '
                                 f"its containers are: {', '.join(names)}")


def _workload_selector(kube: Kube, namespace: str, request: CaptureRequest) -> str:
    from debugcap.operator.requests import selector_to_string

    assert request.workload is not None
    kind, name = request.workload.kind, request.workload.name
    apps = kube.apps()
    read = {
        "Deployment": apps.read_namespaced_deployment,
        "StatefulSet": apps.read_namespaced_stateful_set,
        "DaemonSet": apps.read_namespaced_daemon_set,
        "ReplicaSet": apps.read_namespaced_replica_set,
    }[kind]
    try:
        obj: Any = read(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise errors.TargetError(f'spec.target.workload: no {kind} "{name}" in namespace "{namespace}"; '
                                     f"list them with: kubectl get {kind.lower()}s -n {namespace}") from exc
        raise _api_error(exc, f'{kind} "{name}"') from exc
    wanted = obj.spec.selector
    raw = {"matchLabels": wanted.match_labels or {},
           "matchExpressions": [{"key": e.key, "operator": e.operator, "values": e.values or []}
                                for e in wanted.match_expressions or []]}
    return selector_to_string(raw, where=f"{kind} {name} spec.selector")


def builtin_template_names() -> list[str]:
    return [t.name for t in templates.list_templates()]


def expand_template(kube: Kube, request: CaptureRequest) -> templates.ExpandedTemplate:
    """A built-in template, else the cluster-scoped DebugCaptureTemplate of that name.

    Built-in names win: a cluster admin cannot silently change what ``go-profile`` means for
    every namespace by creating a DebugCaptureTemplate called ``go-profile``.
    """
    builtin = builtin_template_names()
    try:
        if request.template in builtin:
            return templates.expand(request.template, request.template_parameters, collectors=COLLECTORS)
        body = _read_template_object(kube, request.template, builtin)
        with tempfile.TemporaryDirectory(prefix="debugcap-template-") as tmp:
            document = template_document(request.template, body.get("spec") or {})
            (Path(tmp) / f"{request.template}.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
            return templates.expand(request.template, request.template_parameters, collectors=COLLECTORS,
                                    directory=Path(tmp))
    except errors.ConfigError as exc:
        raise errors.ConfigError(_field_for_template_error(str(exc), request)) from exc


def template_document(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A DebugCaptureTemplate spec as the YAML template format :func:`templates.parse_template` reads."""
    document: dict[str, Any] = {"name": name, "description": spec.get("description", ""),
                                "parameters": dict(spec.get("parameters") or {}), "steps": []}
    for step in spec.get("steps") or []:
        entry: dict[str, Any] = {"collector": step.get("collector")}
        if step.get("params"):
            entry["params"] = dict(step["params"])
        if step.get("window"):
            entry["window"] = step["window"]
        document["steps"].append(entry)
    return document


def _read_template_object(kube: Kube, name: str, builtin: list[str]) -> Mapping[str, Any]:
    try:
        body: Any = kube.custom().get_cluster_custom_object(GROUP, VERSION, TEMPLATES_PLURAL, name)
        return dict(body)
    except ApiException as exc:
        if exc.status == 404:
            raise errors.ConfigError(
                f'spec.template: unknown template "{name}"; built-in templates: {", ".join(builtin)}; '
                "cluster templates: kubectl get debugcapturetemplates") from exc
        raise errors.ConfigError(f'spec.template: cannot read DebugCaptureTemplate "{name}": '
                                 f"{exc.status} {errors.shorten(str(exc.reason))}") from exc


def _field_for_template_error(message: str, request: CaptureRequest) -> str:
    if message.startswith("spec."):
        return message
    for snake in request.template_parameters:
        if f'"{snake}"' in message:
            return f"spec.parameters.{camel_parameter(snake)}: {message}"
    return f"spec.template: {message}"


def _uses(template: templates.ExpandedTemplate, kind: base.Kind) -> bool:
    return any(COLLECTORS[s.collector].kind is kind for s in template.steps)


def probe_pprof(http: portforward.Pool, target: base.Target, timeout: float) -> None:
    """Fail fast, naming spec.parameters.pprofPort, when nothing serves pprof on the target port.

    Without this, a wrong port makes every Go collector fail one by one, each after its own
    connection attempt, and the message speaks of a collector rather than the field to fix.
    The forward it opens is kept for the capture's own requests.
    """
    try:
        http.get("/debug/pprof/", io.BytesIO(), timeout=timeout, max_bytes=64 << 10)
    except errors.CollectorError as exc:
        raise errors.TargetError(
            f"spec.parameters.pprofPort: nothing serves /debug/pprof on port {target.pprof_port} of pod "
            f'"{target.pod}" ({exc}); set spec.parameters.pprofPort to the port of the Go program\'s '
            f"pprof server, or annotate the pod with {engine.PPROF_PORT_ANNOTATION}") from exc


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
                         node=self.target.node, message=message,
                         duration_seconds=time.monotonic() - self.clock)


@dataclass(frozen=True)
class Prepared:
    """A pod resolved, with its port-forward open, waiting for a concurrency slot. Its shell
    sessions open during the capture, beside the window; the caller closes both afterwards."""

    target: base.Target
    settings: CaptureSettings
    http: portforward.Pool
    commands: shell.Pool

    def close(self) -> None:
        """Close the pod's connections. After its capture this runs outside the slot: ending an exec
        waits for the shell to exit in the pod, 10-70 ms under load."""
        try:
            self.commands.close()
        finally:
            self.http.close()


def prepare_pod(
    kube: Kube,
    namespace: str,
    pod: str,
    request: CaptureRequest,
    template: templates.ExpandedTemplate,
    *,
    read: Mapping[str, Any] | None = None,
) -> Prepared | PodResult:
    """Resolve the pod and open its port-forward, before the pod holds a concurrency slot.

    A tunnel is a TLS handshake and a stream set up through the API server, the kubelet and the
    runtime: 0.1 s median, 0.2 s p90, with 8 pods capturing on two cores, and all of it stood
    between a slot and its profile window. Opened while earlier pods' windows run, it costs the
    slot nothing. Nothing is asked of the pod's program until :func:`collect_pod`. A tunnel that
    fails to open is met again, and reported, by the capture's own requests. The shell session is
    not opened here: it takes a ``runc exec`` (0.2-0.3 s), which for the first pods would delay
    their windows, and inside the capture it runs beside the window anyway (measured: opening it
    here made a 20-pod capture 0.15 s slower). ``read``: the pod's JSON from :func:`find_pods`.
    """
    try:
        target = engine.resolve_target(kube, namespace, pod, request.container, request.pprof_port, read=read)
    except errors.DebugcapError as exc:
        return PodResult(name=pod, phase="Failed", message=str(exc))
    settings = _capture_settings(request)
    http = portforward.Pool(kube, namespace=namespace, pod=pod, port=target.pprof_port,
                            size=engine.forwards_needed(template))
    commands = engine.command_pool(kube, target, settings)
    if _uses(template, base.Kind.GO):
        http.open()
    return Prepared(target=target, settings=settings, http=http, commands=commands)


def _capture_settings(request: CaptureRequest) -> CaptureSettings:
    settings = CaptureSettings(durable_bundles=False)
    if request.timeout_seconds:
        settings = dataclasses.replace(settings, exec_timeout_seconds=float(request.timeout_seconds),
                                       http_timeout_seconds=float(request.timeout_seconds))
    if request.deadline_seconds:
        settings = dataclasses.replace(settings, capture_timeout_seconds=float(request.deadline_seconds))
    return settings


def collect_pod(
    kube: Kube,
    prepared: Prepared,
    request: CaptureRequest,
    template: templates.ExpandedTemplate,
    *,
    capture_name: str,
    work_dir: Path,
    probe_seconds: float,
    abandoned: threading.Event,
    started: datetime,
    window_open: Callable[[], None] | None = None,
) -> Collected | PodResult:
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
    namespace, pod = target.namespace, target.pod
    # The pprof check runs beside the capture rather than before it: it is one round trip on a
    # busy API server, and waiting for it delayed every pod's window. Its verdict still decides:
    # a closed port ends the pod Failed and nothing is uploaded.
    probe_failed: list[errors.TargetError] = []

    def probe() -> None:
        try:
            probe_pprof(http, target, probe_seconds)
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
                                 started=started, window_open=window_open)
        if checking.ident is not None:  # started: its verdict decides
            checking.join()
    except errors.DebugcapError as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        return PodResult(name=pod, phase="Failed", container=target.container, node=target.node,
                         message=str(exc), duration_seconds=time.monotonic() - clock)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    collected = Collected(target=target, outcome=outcome, out_dir=out_dir, clock=clock,
                          collectors=_collector_entries(outcome.records))
    problem = str(probe_failed[0]) if probe_failed else ""
    if abandoned.is_set():
        problem = "abandoned after spec.parameters.deadlineSeconds; bundle not uploaded"
    if problem:
        shutil.rmtree(out_dir, ignore_errors=True)
        return collected.failed(problem)
    return collected


def store_pod(store: delivering.Store, collected: Collected, *, key_sent: threading.Event | None = None) -> PodResult:
    """Upload a collected pod's bundle (or spool it) and give the pod's result.

    ``key_sent`` is set once the status naming the bundle's key was written; the upload waits
    for it, so a bundle is never stored under a key no status names.
    """
    target, outcome = collected.target, collected.outcome
    bundle = outcome.bundle
    try:
        if key_sent is not None:
            # Bounded: an API server that never answers that write fails the final one too, and
            # the bundle is better stored than lost.
            key_sent.wait(timeout=KEY_SENT_SECONDS)
        delivery, _flushed = delivering.deliver(store, bundle, namespace=target.namespace, pod=target.pod,
                                                when=bundle.manifest.started_at, keep_local=False)
    except errors.DebugcapError as exc:
        # Neither stored nor spooled: the bundle stays where it is (the message says where), and
        # its key stays listed in case the store took it before failing.
        key = delivering.object_key(store, target.namespace, target.pod, bundle.manifest.started_at,
                                    bundle.path.name)
        return dataclasses.replace(collected.failed(str(exc)), upload_key=key)
    shutil.rmtree(collected.out_dir, ignore_errors=True)
    phase = str(outcome.phase)
    message = "; ".join(f"{c['name']}: {c['message']}" for c in collected.collectors
                        if c["status"] == "failed" and "message" in c)
    uri = ""
    if delivery.stored:
        uri = f"{_uri_base(store)}/{delivery.key}"
    else:
        phase = "Failed" if phase == "Failed" else "PartiallyFailed"
        message = f"upload failed, bundle kept in the operator's spool and sent later: {delivery.error}"
    return PodResult(name=target.pod, phase=phase, container=target.container, node=target.node,
                     message=errors.shorten(message, 512), uri=uri, key=delivery.key if delivery.stored else "",
                     upload_key="" if delivery.stored else delivery.key,
                     sha256=bundle.sha256, size_bytes=bundle.size, collectors=collected.collectors,
                     duration_seconds=time.monotonic() - collected.clock)


def _collector_entries(records: Iterable[manifest.CollectorRecord]) -> tuple[dict[str, Any], ...]:
    """``status.pods[].collectors``: a pod's collector records as the CRD describes them."""
    return tuple({"name": r.name, "status": str(r.status), "bytes": r.bytes, "durationMs": r.duration_ms,
                  **({"message": errors.shorten(r.message)} if r.message else {})} for r in records)


def planned_key(store: delivering.Store, namespace: str, pod: str, started: datetime) -> str:
    """The key a capture of ``pod`` started at ``started`` stores its bundle under."""
    return delivering.object_key(store, namespace, pod, started, layout.bundle_name(namespace, pod, started))


def adopt_upload(store: delivering.Store, entry: Mapping[str, Any], work_dir: Path) -> PodResult:
    """The result of a pod whose capture a dead operator left unfinished, from what its
    ``uploadKey`` names in storage.

    A stored bundle that verifies means only the status write listing it was lost: it is adopted,
    with the phase its own manifest gives, so it is listed (and deleted at expiry) like any other.
    A damaged one is deleted. When storage cannot be read the pod is Failed but the key stays
    listed, so the expiry of the capture still deletes whatever is there: nothing is orphaned.
    """
    name, key = str(entry["name"]), str(entry["uploadKey"])
    # The key stays listed: a bundle spooled just before the crash is sent later, under it.
    lost = PodResult(name=name, phase="Failed", container=entry.get("container", ""), node=entry.get("node", ""),
                     message="the operator restarted while this pod was being captured; nothing was uploaded; "
                             "create a new DebugCapture to capture it again", upload_key=key)
    try:
        if store.backend.sha256(key=key) is None:
            return lost
        work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="debugcap-adopt-", dir=work_dir) as tmp:
            local = Path(tmp) / key.rsplit("/", 1)[-1]
            stored = store.backend.get(key=key, dest=local)
            checked = verify.verify(local)
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
                     node=entry.get("node", ""), uri=f"{_uri_base(store)}/{key}", key=key, sha256=stored.sha256,
                     size_bytes=stored.size, collectors=_collector_entries(records),
                     message="the operator restarted after storing this bundle; adopted from storage")


def _uri_base(store: delivering.Store) -> str:
    bucket = getattr(getattr(store.backend, "settings", None), "bucket", None)
    return f"s3://{bucket}" if bucket else f"file://{store.backend.describe()}"


def delete_bundles(store: delivering.Store, keys: list[str]) -> None:
    """Delete bundles (and their sidecars), stored or spooled; a missing key is already deleted."""
    delivering.delete(store, keys)
