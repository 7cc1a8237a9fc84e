"""``debugcap-operator``: run the kopf operator of the modules :mod:`debugcap.operator.handlers` lists.

Namespaces and the liveness port come from :class:`~debugcap.operator.config.DebugcapConfig`
(``DEBUGCAP_OPERATOR_*``); S3 from ``DEBUGCAP_S3_*``. Equivalent to
``kopf run --standalone -m debugcap.operator.handlers [-n NS ...|-A] [--liveness URL]``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

import kopf

from debugcap import errors
from debugcap.operator import handlers  # noqa: F401  (registers every handler module with kopf)
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
    except errors.ConfigError as exc:
        print(f"debugcap-operator: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    liveness = f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    # Standalone: one replica, no peering CRDs to install. Run a single replica (Deployment
    # strategy Recreate) so two operators never capture the same DebugCapture.
    kopf.run(standalone=True, clusterwide=not settings.namespaces, namespaces=settings.namespaces,
             liveness_endpoint=liveness)


if __name__ == "__main__":
    main()
