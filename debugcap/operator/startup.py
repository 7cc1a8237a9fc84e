"""kopf's start-up, login and clean-up handlers of the debugcap operator.

:func:`configure` tunes kopf and builds the :class:`~debugcap.operator.runtime.Runtime` every
resource handler reads from ``memo``; :func:`shutdown` closes it. Registered through
:mod:`debugcap.operator.handlers`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import kopf

from debugcap import delivering
from debugcap.kube.client import Kube, KubeTarget
from debugcap.operator import metrics, runtime, spool_flushing
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.pod_scheduling import PodScheduler

FINALIZER: Final = "debugcap.io/operator"


def kopf_settings(settings: kopf.OperatorSettings) -> None:
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
    # No watching of namespaces and CRDs: the chart grants neither list (served namespaces are
    # exact names; CRDs are installed before the operator), and kopf retried the forbidden lists
    # with backoff for ~55 s after every start before falling back to this, handling nothing
    # meanwhile (seen in helm test right after install; a standby taking over would pay it too).
    settings.scanning.disabled = True


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    kopf_settings(settings)
    config = DebugcapConfig.from_env()
    kubeconfig = os.environ.get("KUBECONFIG") or None
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and kubeconfig is None
    # Explicit: the kubernetes package reads $KUBECONFIG once, at import, not at load time.
    kube = Kube.load(KubeTarget(kubeconfig=kubeconfig, in_cluster=in_cluster))
    # Every flush of its spool asks whether the bundle's capture still exists (spool_flushing).
    store = spool_flushing.watch_owners(kube, delivering.store_from_env())
    config.work_dir.mkdir(parents=True, exist_ok=True)
    metrics.serve(config.metrics_port)
    # A thread for each pod being captured, prepared, and each bundle being stored.
    executor = ThreadPoolExecutor(max_workers=3 * config.concurrency, thread_name_prefix="capture")
    memo.runtime = runtime.Runtime(config=config, kube=kube, store=store, executor=executor,
                                   pods=PodScheduler(config.concurrency, executor,
                                                     urgent=config.triggered_captures,
                                                     lingering_limit=config.lingering_captures),
                                   flusher=spool_flushing.SpoolFlusher(store).start())
    logger.info("debugcap operator ready: bundles go to %s, %d pods at once", store.backend.describe(),
                config.concurrency)


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
def shutdown(memo: kopf.Memo, **_: Any) -> None:
    rt = memo.pop("runtime", None)
    if isinstance(rt, runtime.Runtime):
        rt.close()
        memo.closed_runtime = rt  # main() waits for its capture threads before releasing the Lease
