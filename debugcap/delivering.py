"""Where finished bundles go: S3 when configured, else a local store; a spool when the store fails.

Shared by the kubectl plugin and the operator so both name objects the same
way (``<prefix>/<cluster>/<namespace>/<pod>/<YYYY>/<MM>/<DD>/<directory>/<bundle>``, the
directory the writer's own: the operator's ``<capture>_<uid>``, see :class:`Capture`; a CLI
upload's ``cli-<32 hex>``, see :class:`Upload`) and both keep a bundle whose upload failed, to
be sent by the next run. The directory makes keys unique by construction: the bundle name alone
repeats for two writers of one pod in one second (the CLI and the operator, two clusters left
at the default cluster name). Keys without a directory are the older layout: still read, and
never written by a writer that passes one.

:func:`key_refusal` says whether a key belongs to a capture: the operator deletes and adopts only
keys it passes, never a key it merely reads back from a capture's status.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from debugcap import errors
from debugcap.bundle import layout, writer
from debugcap.errors import BundleError, ConfigError, StorageError
from debugcap.settings import S3Settings
from debugcap.storage import base, local, spool

DEFAULT_PREFIX = S3Settings.prefix  # one default for both backends
DEFAULT_CLUSTER = S3Settings.cluster

logger = logging.getLogger(__name__)


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "debugcap"


def spool_dir() -> Path:
    return Path(os.environ.get("DEBUGCAP_SPOOL_DIR") or data_home() / "spool")


# A multipart upload begun this long ago and never finished is abandoned: its writer was killed,
# and no later put retries its key (the bundle was lost with the process, or spooled under a
# fresh upload). A bundle of gigabytes on a slow link takes well under an hour; MinIO's own expiry
# is 24 h, AWS S3 has none without a lifecycle rule.
STALE_UPLOAD_AGE: Final = timedelta(hours=6)
STALE_UPLOAD_SWEEP_EVERY: Final = timedelta(hours=1)


# In the spool directory (a dot file: never taken for a bundle): when the last sweep began, so a
# process per run (the CLI's --upload) sweeps at most once per interval too.
LAST_SWEEP_FILE: Final = ".last-upload-sweep"


@dataclass
class StaleSweep:
    """When a store last looked for abandoned multipart uploads under its own prefix."""

    older_than: timedelta = STALE_UPLOAD_AGE
    every: timedelta = STALE_UPLOAD_SWEEP_EVERY
    last: float | None = None  # clock() of the last sweep this process knows of
    # Wall time, not monotonic: it is compared with a time another process wrote down.
    clock: Callable[[], float] = time.time
    running: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)


@dataclass(frozen=True)
class Store:
    backend: base.StorageBackend
    prefix: str
    cluster: str
    spool: spool.Spool
    # Held while the spool is flushed and while bundles are deleted: a delete that ran in the
    # middle of a flush could see a bundle in neither place, and the flush then stored it after.
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)
    sweep: StaleSweep = field(default_factory=StaleSweep, compare=False, repr=False)
    # The operator's (None elsewhere): whether a spooled key's capture still exists. A replica's
    # spool outlives its leadership; a bundle of a capture deleted meanwhile is discarded, not sent.
    wanted: Callable[[str], bool] | None = field(default=None, compare=False, repr=False)
    # The operator's: told (key, sha256, size) of each bundle a flush stored, to name it in its
    # capture's status (which says "spooled" until then).
    sent: Callable[[str, str, int], None] | None = field(default=None, compare=False, repr=False)

    @property
    def own_prefix(self) -> str:
        """``<prefix>/<cluster>/``: every key this store writes, and nothing another cluster does."""
        return f"{self.prefix}/{self.cluster}/" if self.prefix else f"{self.cluster}/"


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


def sweep_stale_uploads(store: Store) -> Sequence[str]:
    """Abort the store's abandoned multipart uploads (under :attr:`Store.own_prefix`, begun more than
    ``store.sweep.older_than`` ago), at most once per ``store.sweep.every``; the keys aborted.
    Called by :func:`deliver`, so the operator sweeps while it captures and the CLI on ``--upload``."""
    sweep = store.sweep
    if not sweep.running.acquire(blocking=False):
        return []  # another thread of this process is sweeping right now
    try:
        now = sweep.clock()
        marker = store.spool.directory / LAST_SWEEP_FILE
        last = max(sweep.last or 0.0, _read_last_sweep(marker))
        # A time ahead of now (a clock set back) would stop sweeps until it came round again.
        if 0 < last <= now and now - last < sweep.every.total_seconds():
            return []
        sweep.last = now
        _write_last_sweep(marker, now)
        return store.backend.abort_stale_uploads(prefix=store.own_prefix, older_than=sweep.older_than)
    finally:
        sweep.running.release()


def _read_last_sweep(marker: Path) -> float:
    try:
        return float(marker.read_text(encoding="ascii").strip() or 0)
    except (OSError, ValueError, UnicodeDecodeError):
        return 0.0  # none yet, or unreadable: sweep (hourly at worst is the point, not exactness)


def _write_last_sweep(marker: Path, now: float) -> None:
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        with base.atomic_file(marker, durable=False) as fh:
            fh.write(f"{now:.3f}\n".encode())
    except OSError as exc:  # housekeeping: never a reason to fail a delivery
        logger.debug("cannot record the stale-upload sweep in %s: %s", marker, exc.strerror or exc)


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


# An old-layout key (no <capture>_<uid>/) is taken as the capture's only if its bundle's time is
# within this window from the capture's creation: a capture runs minutes; its deadline is hours.
OLD_KEY_SLACK: Final = timedelta(minutes=1)
OLD_KEY_WINDOW: Final = timedelta(days=2)


@dataclass(frozen=True)
class Capture:
    """The DebugCapture a bundle belongs to, as the API server names it (never as its status says):
    its keys carry ``<name>_<uid>`` as their last directory (the name cut to 63 characters: a name
    may have 253, and a file name on the spool's or a local store's disk only 255). A name has no
    ``_`` and a UID is never reused, so no other capture's key has that directory."""

    name: str
    uid: str

    @property
    def directory(self) -> str:
        return layout.check_key_segment("capture", f"{self.name[:63]}_{self.uid}")


@dataclass(frozen=True)
class Upload:
    """A bundle no capture names (``kubectl debugcap create --upload``): its keys carry a directory
    of its own, ``cli-<32 hex>`` from a random UUID, made once per upload (:meth:`new`). It has no
    ``_``, so it is never a capture's ``<name>_<uid>`` and :func:`key_refusal` refuses it to every
    capture."""

    token: str

    @classmethod
    def new(cls) -> Upload:
        return cls(uuid.uuid4().hex)

    @property
    def directory(self) -> str:
        return layout.check_key_segment("upload", f"cli-{self.token}")


@dataclass(frozen=True)
class KeyOwner:
    """What the operator knows itself about a capture, to judge keys by: its store's prefix and
    cluster, the capture's namespace, name and UID, and the one pod its spec targets (None for a
    selector or a workload)."""

    prefix: str
    cluster: str
    namespace: str
    capture: Capture
    target_pod: str | None = None
    created: datetime | None = None  # the capture's creationTimestamp (metadata: no status patch changes it)

    @property
    def head(self) -> str:
        return f"{self.prefix}/{self.cluster}/{self.namespace}/" if self.prefix else \
            f"{self.cluster}/{self.namespace}/"


def key_refusal(key: object, owner: KeyOwner, pod: object) -> str | None:
    """None when ``key`` (read back from ``status.pods[]``, entry of ``pod``) belongs to ``owner``;
    else why not, naming the key. Pure: nothing is looked up.

    A key belongs when it is exactly ``<prefix>/<cluster>/<namespace>/<pod>/<YYYY>/<MM>/<DD>/
    <name>_<uid>/<namespace>_<pod>_<stamp>.tar.gz`` with this capture's namespace, name and UID,
    the entry's pod and the day of the stamp. A key of the older layout (no ``<name>_<uid>``
    directory) belongs when all the rest matches and, if the spec targets one pod, it is that
    pod: it is tied to the namespace and pod only, not to the capture.
    """
    shown = errors.shorten(repr(key), 300)
    if not isinstance(key, str) or not key:
        return f"key {shown} is empty or not a string"
    try:
        base.check_key(key)
    except StorageError:
        return f"key {shown} is not a valid object key ('..', '/' at an end, or characters outside [A-Za-z0-9._/-])"
    head = owner.head
    if not key.startswith(head):
        return f"key {shown} is not under this capture's prefix {head!r}"
    parts = key[len(head):].split("/")
    if len(parts) not in (5, 6):
        return f"key {shown} does not have the layout {head}<pod>/<YYYY>/<MM>/<DD>/[<capture>_<uid>/]<bundle>"
    try:
        namespace, named_pod, when = layout.parse_bundle_name(parts[-1])
    except BundleError:
        return f"key {shown} does not end in a bundle name <namespace>_<pod>_<YYYYMMDDTHHMMSSZ>.tar.gz"
    if (namespace, named_pod) != (owner.namespace, parts[0]) or parts[1:4] != when.strftime("%Y/%m/%d").split("/"):
        return f"key {shown} names another namespace, pod or day in its bundle name than in its prefix"
    if parts[0] != pod:
        listed = errors.shorten(repr(pod), 80)
        return f"key {shown} is under pod {parts[0]!r}, not under the pod {listed} it is listed for"
    if len(parts) == 6 and parts[4] != owner.capture.directory:
        return f"key {shown} belongs to another capture or a CLI upload, not to {owner.capture.directory!r}"
    if len(parts) == 5 and owner.target_pod is not None and parts[0] != owner.target_pod:
        return f"key {shown} is under pod {parts[0]!r}, not the pod {owner.target_pod!r} this capture targets"
    if len(parts) == 5 and owner.created is not None and not (
            owner.created - OLD_KEY_SLACK <= when <= owner.created + OLD_KEY_WINDOW):
        # An old-layout key names no capture: at least its bundle must have been made while this
        # capture ran (a CLI upload or an older capture of the namespace was not).
        return f"key {shown} was not made while this capture ran (its bundle is of {when:%Y-%m-%dT%H:%M:%SZ})"
    return None


def object_key(store: Store, namespace: str, pod: str, when: datetime, bundle_name: str,
               capture: Capture | Upload | None = None) -> str:
    """Where a bundle is stored: in the directory of ``capture`` (the operator's) or of an
    :class:`Upload` (the CLI's). None gives the older layout without one, which two writers can
    share: only for reading old keys and for tests."""
    directory = None if capture is None else capture.directory
    return layout.object_key(store.prefix, store.cluster, namespace, pod, when, bundle_name, directory)


def flush(store: Store, *, stopped: Callable[[], bool] | None = None) -> spool.FlushReport:
    """Send what waits in ``store``'s spool, taking its lock per bundle (a delete never runs in
    the middle of one upload, and never waits for a whole backlog); ``stopped``: see flush_spool."""
    report = spool.flush_spool(store.backend, store.spool, lock=store.lock, wanted=store.wanted, stopped=stopped)
    record = store.sent
    if record is None:
        return report
    for key, sha256, size in report.sent:
        try:
            record(key, sha256, size)
        except Exception:  # noqa: BLE001 - the bundle is stored; only its status entry lags
            logger.exception("%s was sent from the spool, but recording it in its capture's status failed", key)
    return report


@dataclass(frozen=True)
class SpooledOwner:
    """The capture a key's directory names: its namespace, its name (cut to 63 characters, as
    :attr:`Capture.directory` cuts it) and its UID."""

    namespace: str
    name: str
    uid: str

    @property
    def cut(self) -> bool:
        """Whether the name may be cut: the full name is then found by UID."""
        return len(self.name) >= 63


def owner_of_key(store: Store, key: str) -> SpooledOwner | None:
    """The capture whose directory ``key`` is under (``<own prefix><namespace>/<pod>/<YYYY>/<MM>/
    <DD>/<name>_<uid>/<bundle>``); None for a key of another layout (an older key, a CLI upload)."""
    if not key.startswith(store.own_prefix):
        return None
    parts = key[len(store.own_prefix):].split("/")
    if len(parts) != 7 or "_" not in parts[5]:
        return None
    name, _, uid = parts[5].rpartition("_")
    return SpooledOwner(parts[0], name, uid) if name and uid else None


def deliver(store: Store, bundle: writer.WrittenBundle, *, namespace: str, pod: str, when: datetime,
            keep_local: bool = True, capture: Capture | Upload | None = None,
            ) -> tuple[spool.Delivery, spool.FlushReport]:
    """Send bundles spooled by earlier runs first, then this one; a failure spools it. A key that
    holds another object is never replaced: the bundle is held in the spool (``Delivery.held``)."""
    flushed = flush(store)
    # Outside the lock: listing the bucket's uploads can take minutes against a slow store, and
    # every other delivery and delete of this process waits on the lock meanwhile.
    sweep_stale_uploads(store)
    key = object_key(store, namespace, pod, when, bundle.path.name, capture)
    delivery = spool.deliver(store.backend, store.spool, key=key, bundle=bundle.path, sha256=bundle.sha256,
                             keep_local=keep_local)
    return delivery, flushed
