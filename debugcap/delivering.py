"""Where finished bundles go: S3 when configured, else a local store; a spool when the store fails.

Shared by the kubectl plugin and the operator so both name objects the same
way (``<prefix>/<cluster>/<namespace>/<pod>/<YYYY>/<MM>/<DD>/<bundle>``) and
both keep a bundle whose upload failed, to be sent by the next run.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from debugcap.bundle import layout, writer
from debugcap.errors import ConfigError
from debugcap.settings import S3Settings
from debugcap.storage import base, local, spool

DEFAULT_PREFIX = S3Settings.prefix  # one default for both backends
DEFAULT_CLUSTER = S3Settings.cluster


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "debugcap"


def spool_dir() -> Path:
    return Path(os.environ.get("DEBUGCAP_SPOOL_DIR") or data_home() / "spool")


@dataclass(frozen=True)
class Store:
    backend: base.StorageBackend
    prefix: str
    cluster: str
    spool: spool.Spool
    # Held while the spool is flushed and while bundles are deleted: a delete that ran in the
    # middle of a flush could see a bundle in neither place, and the flush then stored it after.
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)


def store_from_env() -> Store:
    """S3 from ``DEBUGCAP_S3_*`` when an endpoint is set, else a directory (``DEBUGCAP_LOCAL_STORE``)."""
    s3 = S3Settings.from_env()
    if s3 is not None:
        from debugcap.storage import s3 as s3_backend  # the minio client is only needed here

        return Store(s3_backend.S3Backend(s3), s3.prefix, s3.cluster,
                     spool.Spool(spool_dir()))
    root = Path(os.environ.get("DEBUGCAP_LOCAL_STORE") or data_home() / "bundles")
    return Store(local.LocalBackend(root), DEFAULT_PREFIX, os.environ.get("DEBUGCAP_CLUSTER") or DEFAULT_CLUSTER,
                 spool.Spool(spool_dir()))


def delete(store: Store, keys: list[str]) -> None:
    """Delete bundles wherever they are: stored, or still waiting in the spool to be sent."""
    with store.lock:
        for key in keys:
            store.spool.discard(key)
            store.backend.delete(key=key)


def download_url(store: Store, key: str, expires: timedelta, endpoint: str | None = None) -> str:
    """A presigned GET URL of the stored ``key``, valid for ``expires``; at ``endpoint``, the S3
    address its user reaches, when that is not the store's own. Only S3 signs URLs: a store in a
    directory is a ConfigError saying so."""
    from debugcap.storage import s3  # the minio client is only needed here

    if not isinstance(store.backend, s3.S3Backend):
        raise ConfigError(f"the operator keeps bundles in {store.backend.describe()}, not in S3, and only S3 "
                          "hands out presigned URLs; configure the operator with DEBUGCAP_S3_ENDPOINT (the chart's "
                          "s3.endpoint), or copy the bundle from that directory")
    return store.backend.url(key=key, expires=expires, endpoint=endpoint)


def object_key(store: Store, namespace: str, pod: str, when: datetime, bundle_name: str) -> str:
    return layout.object_key(store.prefix, store.cluster, namespace, pod, when, bundle_name)


def deliver(store: Store, bundle: writer.WrittenBundle, *, namespace: str, pod: str, when: datetime,
            keep_local: bool = True) -> tuple[spool.Delivery, spool.FlushReport]:
    """Send bundles spooled by earlier runs first, then this one; a failure spools it."""
    with store.lock:
        flushed = spool.flush_spool(store.backend, store.spool)
    key = object_key(store, namespace, pod, when, bundle.path.name)
    delivery = spool.deliver(store.backend, store.spool, key=key, bundle=bundle.path, sha256=bundle.sha256,
                             keep_local=keep_local)
    return delivery, flushed
