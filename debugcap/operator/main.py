"""``debugcap-operator``: run the kopf operator of the modules :mod:`debugcap.operator.handlers` lists.

Namespaces and the liveness port come from :class:`~debugcap.operator.config.DebugcapConfig`
(``DEBUGCAP_OPERATOR_*``); S3 from ``DEBUGCAP_S3_*``. Equivalent to
``kopf run --standalone -m debugcap.operator.handlers [-n NS ...|-A] [--liveness URL]``.
"""

from __future__ import annotations

import logging
import sys

import kopf

from debugcap import errors
from debugcap.operator import handlers  # noqa: F401  (registers every handler module with kopf)
from debugcap.operator.config import DebugcapConfig


def main() -> None:
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
