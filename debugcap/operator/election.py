"""The process around the leader election (:mod:`~debugcap.operator.leadership`): what a standby
serves while it waits, and how the cluster tells the leader's pod from the others.

What each replica serves (docs/operator.md, "Replicas and leader election"):

- ``/healthz`` on the liveness port: the leader's is kopf's; a standby's is :class:`StandbyServer`
  (200 while its election loop turns). A standby is therefore live *and ready*: a rolling update
  (maxUnavailable 0) waits for a new pod to be ready before it stops an old one, and the
  PodDisruptionBudget (minAvailable 1) counts ready pods; a standby kept unready would stall both.
- ``/metrics``: both, each its own process's numbers; ``debugcap_operator_leader`` says which leads.
- The Alertmanager receiver and everything kopf runs (captures, downloads, schedules, triggers):
  the leader only. Since the standby is ready, readiness cannot keep the alerts Service off it;
  the leader labels its own pod ``debugcap.io/leader=true`` (:func:`mark_pod`) and that Service
  selects the label. A replica that starts (a restarted ex-leader too) removes the label first.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from prometheus_client import Gauge

from debugcap import errors
from debugcap.kube.client import Kube, KubeTarget, core_path
from debugcap.operator.leadership import CALL_TIMEOUT, LOST_EXIT, Elector, LeaseSettings
from debugcap.operator.lease_calls import KubeLeases

logger = logging.getLogger(__name__)

LEADER_LABEL: Final = "debugcap.io/leader"
# A stopping leader's budget, from SIGTERM to the kill: the pod's default grace period (the chart
# sets none), kopf's own stop (its cleanup no longer waits on uploads: Runtime.close), the wait for
# the threads that may still upload (Runtime.drain), and the release with whatever is left, never
# less than RELEASE_MINIMUM when the drain used all its time.
GRACE_PERIOD: Final = 30.0
KOPF_EXIT_ALLOWANCE: Final = 5.0
DRAIN_TIMEOUT: Final = 15.0
RELEASE_MINIMUM: Final = GRACE_PERIOD - KOPF_EXIT_ALLOWANCE - DRAIN_TIMEOUT
LEADER = Gauge("debugcap_operator_leader", "1 while this replica holds the leader Lease and runs the operator; "
               "0 while it waits as a standby.")


class StandbyServer:
    """``/healthz`` on the liveness port while this replica waits (kopf serves it once leading);
    the body says who leads."""

    def __init__(self, elector: Elector, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - a probe's port
        outer = elector

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.split("?", 1)[0] != "/healthz":
                    self.send_error(404)
                    return
                ok = outer.alive()
                body = (f"standby: lease {outer.settings.namespace}/{outer.settings.name} held by "
                        f"{outer.holder or 'nobody'}\n").encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - probes every few seconds: quiet
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="standby-healthz", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Free the port for kopf's own /healthz."""
        self.server.shutdown()
        self.server.server_close()


def kube_from_env() -> Kube:
    """The client :func:`debugcap.operator.startup.configure` builds, for the election's calls,
    without urllib3's retries: three of them made one Lease call last four times its timeout,
    and the renew deadline must be met by the loop, not by luck (the loop retries on its own)."""
    kubeconfig = os.environ.get("KUBECONFIG") or None
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and kubeconfig is None
    kube = Kube.load(KubeTarget(kubeconfig=kubeconfig, in_cluster=in_cluster))
    kube.configuration.retries = False
    return kube


def _own_pod(environ: dict[str, str] | None) -> tuple[str, str]:
    """This replica's pod and namespace (the chart's downward API); empty outside a pod."""
    env = os.environ if environ is None else environ
    return env.get("POD_NAME", "").strip(), env.get("POD_NAMESPACE", "").strip()


def _label(kube: Kube, namespace: str, pod: str, leading: bool) -> None:
    kube.merge_patch(core_path("pods", namespace, pod),
                     {"metadata": {"labels": {LEADER_LABEL: "true" if leading else None}}}, timeout=CALL_TIMEOUT)


def _cannot_label(leading: bool, namespace: str, pod: str, exc: errors.KubeError, then: str = "") -> None:
    logger.warning("cannot %s the label %s on pod %s/%s: %s%s (the Alertmanager Service selects it; the chart's "
                   "Role <release>-leader-election grants patch on pods)", "set" if leading else "remove",
                   LEADER_LABEL, namespace, pod, errors.shorten(str(exc)), then)


def mark_pod(kube: Kube, leading: bool, environ: dict[str, str] | None = None) -> bool:
    """Label this replica's pod (``POD_NAME`` in ``POD_NAMESPACE``, from the chart's downward API)
    as the leader, or remove the label; whether a pod was patched. Outside a pod, nothing. A
    failure is logged, never raised: the label steers only the Alertmanager Service."""
    pod, namespace = _own_pod(environ)
    if not pod or not namespace:
        return False
    try:
        _label(kube, namespace, pod, leading)
    except errors.KubeError as exc:
        _cannot_label(leading, namespace, pod, exc)
        return False
    return True


class Unmark:
    """Removes this pod's leader label (an ex-leader's restarted container is a standby until it
    wins again), retried after each failed try of the standby until it succeeds: a label left
    behind would keep the Alertmanager Service sending alerts to a replica that receives none.
    After the try, not before: a patch waiting its CALL_TIMEOUT must not delay a take-over. A
    refused patch (403: no grant) is given up on after one warning, as a retry cannot succeed;
    other failures warn once and are retried quietly."""

    def __init__(self, kube: Kube, environ: dict[str, str] | None = None) -> None:
        self.kube = kube
        self.pod, self.namespace = _own_pod(environ)
        self.pending = bool(self.pod and self.namespace)
        self.warned = False

    def __call__(self) -> None:
        if not self.pending:
            return
        try:
            _label(self.kube, self.namespace, self.pod, leading=False)
        except errors.ForbiddenError as exc:
            _cannot_label(False, self.namespace, self.pod, exc, "; not tried again")
            self.pending = False
        except errors.KubeError as exc:
            if not self.warned:
                _cannot_label(False, self.namespace, self.pod, exc, "; tried again after each election try")
                self.warned = True
        else:
            self.pending = False


def elect(settings: LeaseSettings, liveness_port: int, kube: Kube | None = None) -> Elector | None:
    """Wait as a standby until this replica leads, then renew from a thread: the :class:`Elector`
    to release at shutdown; None when SIGTERM or SIGINT came first (nothing was started)."""
    kube = kube or kube_from_env()
    elector = Elector(settings=settings, api=KubeLeases(kube, settings.namespace, settings.name))
    LEADER.set(0)
    unmark = Unmark(kube)
    previous = {sig: signal.signal(sig, lambda *_: elector.stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = StandbyServer(elector, liveness_port) if liveness_port else None
    try:
        if server is not None:
            server.start()
        logger.info("leader election: lease %s/%s as %s (duration %gs, renew deadline %gs, retry %gs)",
                    settings.namespace, settings.name, settings.identity, settings.lease_duration,
                    settings.renew_deadline, settings.retry_period)
        leading = elector.acquire(between=unmark)
    finally:
        if server is not None:
            server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not leading:
        logger.info("stopped while waiting as a standby")
        return None
    LEADER.set(1)
    elector.start_keeping()
    mark_pod(kube, leading=True)
    return elector


def step_down(elector: Elector, drain: Callable[[float], bool],
              timeout: float = DRAIN_TIMEOUT, exit_now: Callable[[int], None] = os._exit) -> bool:
    """At a clean stop, once kopf has: release the Lease when ``drain`` saw every capture thread
    finish within ``timeout`` (True). Else keep it and end the process at once, so those threads
    die with it: the Lease expires ``lease_duration`` after its last renewal, and nothing of this
    process writes after the next leader took over (it would find an upload it gave up on land)."""
    started = elector.clock.monotonic()
    if drain(timeout):
        # What kopf's stop and this drain left of the grace period, not a fixed 2 x CALL_TIMEOUT
        # plus the renewal thread's join, which could run past the kill.
        elector.release(within=GRACE_PERIOD - KOPF_EXIT_ALLOWANCE - (elector.clock.monotonic() - started))
        return True
    logger.warning("capture threads still running %gs after the stop: not releasing lease %s/%s (it expires "
                   "%gs after its last renewal) and exiting now, ending them", timeout, elector.settings.namespace,
                   elector.settings.name, elector.settings.lease_duration)
    logging.shutdown()
    exit_now(LOST_EXIT)
    return False
