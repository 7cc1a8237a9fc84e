"""``debugcap-operator``: run the kopf operator of the modules :mod:`debugcap.operator.handlers` lists.

Namespaces and the liveness port come from :class:`~debugcap.operator.config.DebugcapConfig`
(``DEBUGCAP_OPERATOR_*``); S3 from ``DEBUGCAP_S3_*``. Equivalent to
``kopf run --standalone -m debugcap.operator.handlers [-n NS ...|-A] [--liveness URL]``, after
winning the leader election (:mod:`~debugcap.operator.leadership`,
:mod:`~debugcap.operator.election`) when it is on: a standby replica waits before kopf starts, so
it runs no handler at all until it leads.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys

import kopf

from debugcap import errors
from debugcap.operator import (
    election,
    handlers,  # noqa: F401  (registers every handler module with kopf)
    leadership,
    metrics,
    runtime,
)
from debugcap.operator.config import DebugcapConfig

# glibc's mallopt parameter for the size from which a block is mmapped (malloc.h).
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20


def return_large_blocks_to_the_system() -> bool:
    """Serve every block of 1 MiB or more with its own mmap, given back when freed.

    glibc raises its mmap threshold (up to 32 MiB) each time such a block is freed, then serves the
    next large blocks from per-thread arenas that keep freed memory: seven captures checking 16 MiB
    of decompressed profile each, in threads, took the operator to 493-514 MiB of RSS (a capture
    had at most 62 MiB of live objects), over the chart's 384 MiB limit; with the threshold fixed,
    146-157 MiB (benchmarks/bench_operator_bombs.py, docs/performance.md). False where there is no glibc (musl,
    macOS) or MALLOC_MMAP_THRESHOLD_ already says what to do."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def main() -> None:
    return_large_blocks_to_the_system()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = DebugcapConfig.from_env()
        lease = leadership.LeaseSettings.from_env()
    except errors.ConfigError as exc:
        print(f"debugcap-operator: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    elector = None
    if lease.enabled:
        # A standby serves /metrics too (debugcap_operator_leader 0): Prometheus scrapes each pod.
        metrics.serve(settings.metrics_port)
        try:
            elector = election.elect(lease, settings.liveness_port)
        except errors.ConfigError as exc:  # the Lease refused (RBAC, no namespace): fatal, not a silent standby
            print(f"debugcap-operator: {exc}", file=sys.stderr)
            raise SystemExit(2) from exc
        if elector is None:
            return
    liveness = f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    memo = kopf.Memo()
    # Standalone (no kopf peering): with the election on, only the Lease's holder gets here; off,
    # run a single replica (docs/operator.md, "Replicas and leader election").
    try:
        kopf.run(standalone=True, clusterwide=not settings.namespaces, namespaces=settings.namespaces,
                 liveness_endpoint=liveness, memo=memo)
    finally:
        if elector is not None:
            # kopf has stopped, but capture threads may still upload or write a status: the next
            # replica may take over at once only when they have finished (election.step_down).
            election.step_down(elector, functools.partial(drain, memo))


def drain(memo: kopf.Memo, timeout: float) -> bool:
    """Whether the threads of the runtime kopf's cleanup closed (startup.shutdown) all finished
    within ``timeout``: capture, urgent capture and spool flusher (Runtime.drain); True when kopf
    never built one."""
    rt = memo.get("closed_runtime")
    return not isinstance(rt, runtime.Runtime) or rt.drain(timeout)


if __name__ == "__main__":
    main()
