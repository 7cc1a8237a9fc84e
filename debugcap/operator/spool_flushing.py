"""Sending the bundles that wait in the spool once the store answers again, with no new capture.

A bundle whose upload failed (S3 down, its bucket gone) waits in the spool, and
:func:`debugcap.delivering.deliver` sends the spool first before each new bundle. An operator
with no capture after the outage kept them there for good: on local disk (an emptyDir goes with
the pod), under a key a status names but the store does not hold, so a download of it failed. The
:class:`SpoolFlusher` thread tries every :data:`FLUSH_SECONDS` while anything is spooled.

The spool is one replica's: a replica that spooled capture X's bundle, lost its leadership and
leads again later would send X's bundle after X was deleted, an object no status names and no
expiry deletes. :func:`watch_owners` makes every flush of the store (this thread's and the one
before each delivery) ask the API server first whether the key's capture still exists, with the
UID the key names, and name the stored bundle in that capture's status afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from debugcap import delivering, errors, resources
from debugcap.kube.client import Kube, group_path
from debugcap.operator.reporting import now, stamp
from debugcap.storage import spool

logger = logging.getLogger(__name__)

# An outage's bundles reach the store at most this long after it answers again; each try of a
# store that is still down waits through one bundle's retries (the flush stops at the first failure).
FLUSH_SECONDS: Final = 15.0
# A status patch that lost a race with another writer (409) is tried on a fresh read this often.
STATUS_TRIES: Final = 3
SENT_LATER: Final = "bundle stored later by the operator's spool flush ({when}); its first upload had failed"


def find_capture(kube: Kube, owner: delivering.SpooledOwner) -> Mapping[str, Any] | None:
    """The DebugCapture ``owner`` names, with that UID; None when it is gone (or is another one
    of the same name now). A name cut to 63 characters in the key is looked for by UID."""
    path = group_path(resources.GROUP, resources.VERSION, resources.CAPTURES, owner.namespace, owner.name)
    try:
        found = kube.get_json(path)
    except errors.NotFoundError:
        found = None
    if found is not None and (found.get("metadata") or {}).get("uid") == owner.uid:
        return dict(found)
    if not owner.cut:
        return None
    listed = kube.get_json(group_path(resources.GROUP, resources.VERSION, resources.CAPTURES, owner.namespace))
    for item in (listed or {}).get("items") or []:
        meta = item.get("metadata") or {}
        if meta.get("uid") == owner.uid and str(meta.get("name", "")).startswith(owner.name):
            return dict(item)
    return None


def capture_exists(kube: Kube, store: delivering.Store, key: str) -> bool:
    """Whether ``key``'s capture still exists; a key naming no capture (older layout) is sent as
    before. Raises KubeError when the API server cannot tell: the bundle then stays spooled."""
    owner = delivering.owner_of_key(store, key)
    if owner is None:
        return True
    if find_capture(kube, owner) is None:
        logger.warning("spooled %s belongs to debugcapture %s/%s (uid %s), which no longer exists", key,
                       owner.namespace, owner.name, owner.uid)
        return False
    return True


def record_sent(kube: Kube, store: delivering.Store, key: str, sha256: str, size: int) -> bool:
    """Name the bundle stored from the spool in its capture's ``status.pods[]`` entry (the one whose
    ``uploadKey`` is ``key``): ``bundle`` replaces ``uploadKey``, and the message says it was sent
    later. Guarded by the read's resourceVersion, so a concurrent status write is never undone.
    Whether an entry was patched."""
    owner = delivering.owner_of_key(store, key)
    if owner is None:
        return False
    for _ in range(STATUS_TRIES):
        capture = find_capture(kube, owner)
        if capture is None:
            return False
        meta, status = capture.get("metadata") or {}, capture.get("status") or {}
        pods = [dict(p) for p in status.get("pods") or []]
        waiting = [p for p in pods if p.get("uploadKey") == key]
        if not waiting:
            return False  # already named, or the status never listed it: nothing says "spooled"
        for entry in waiting:
            entry.pop("uploadKey", None)
            entry["bundle"] = {"uri": store.backend.uri(key=key), "key": key, "sha256": sha256, "sizeBytes": size}
            entry["message"] = errors.shorten(f"{SENT_LATER.format(when=stamp(now()))}: {entry.get('message', '')}",
                                              512)
        path = group_path(resources.GROUP, resources.VERSION, resources.CAPTURES, owner.namespace,
                          str(meta.get("name")), "status")
        try:
            kube.merge_patch(path, {"metadata": {"resourceVersion": meta.get("resourceVersion")},
                                    "status": {"pods": pods}})
        except errors.ConflictError:
            continue  # written meanwhile: read it again
        except errors.NotFoundError:
            return False
        logger.info("recorded %s, sent from the spool, in the status of debugcapture %s/%s", key,
                    owner.namespace, meta.get("name"))
        return True
    logger.warning("could not record %s in the status of debugcapture %s/%s: it kept changing; the bundle is "
                   "stored, its pod entry still names it as uploadKey", key, owner.namespace, owner.name)
    return False


def watch_owners(kube: Kube, store: delivering.Store) -> delivering.Store:
    """``store`` with its spool flushes asking ``kube`` whether each key's capture still exists,
    and naming each bundle they store in its capture's status."""
    def sent(key: str, sha256: str, size: int) -> None:
        record_sent(kube, store, key, sha256, size)

    return dataclasses.replace(store, wanted=lambda key: capture_exists(kube, store, key), sent=sent)


class SpoolFlusher:
    """A daemon thread flushing ``store``'s spool every ``every`` seconds while it holds bundles.

    ``wait(seconds)`` returns True when the flusher is to stop; the default waits on :meth:`close`.
    A flush stops between bundles once :meth:`close` was called; the upload in flight then ends
    on its own, and whoever must know it ended joins :attr:`thread` with a timeout.
    """

    def __init__(self, store: delivering.Store, *, every: float = FLUSH_SECONDS,
                 wait: Callable[[float], bool] | None = None) -> None:
        self.store, self.every = store, every
        self._stopped = threading.Event()
        self._wait = wait or self._stopped.wait
        self._thread = threading.Thread(target=self.run, name="spool-flush", daemon=True)

    def start(self) -> SpoolFlusher:
        self._thread.start()
        return self

    def flush_once(self) -> spool.FlushReport | None:
        """One flush (the store's lock taken per bundle); None when nothing waits."""
        if self._stopped.is_set() or not self.store.spool.entries():
            return None
        report = delivering.flush(self.store, stopped=self._stopped.is_set)
        if report.uploaded or report.already_stored:
            logger.info("sent %d spooled bundle(s) to %s", len(report.uploaded) + len(report.already_stored),
                        self.store.backend.describe())
        if report.failed:
            key, why = report.failed[0]
            logger.warning("%d spooled bundle(s) still wait in %s (tried again in %.0f s): %s: %s",
                           len(report.failed) + len(report.not_attempted), self.store.spool.directory, self.every,
                           key, why)
        return report

    def run(self) -> None:
        while not self._wait(self.every) and not self._stopped.is_set():
            try:
                self.flush_once()
            except Exception:  # noqa: BLE001 - a flush that broke is tried again, the thread lives on
                logger.exception("flushing the spool %s failed; tried again in %.0f s", self.store.spool.directory,
                                 self.every)

    def close(self) -> None:
        """Ask the thread to stop between bundles; returns at once. Called from kopf's cleanup,
        which must not wait on a slow S3 put past the pod's grace period: the upload in flight is
        waited for by :meth:`Runtime.drain <debugcap.operator.runtime.Runtime.drain>`, under the
        deadline it gives the capture threads, before the Lease is released."""
        self._stopped.set()

    @property
    def thread(self) -> threading.Thread:
        """The flushing thread, for a bounded join after :meth:`close`."""
        return self._thread
