"""Sending the bundles that wait in the spool once the store answers again, with no new capture.

A bundle whose upload failed (S3 down, its bucket gone) waits in the spool, and
:func:`debugcap.delivering.deliver` sends the spool first before each new bundle. An operator
with no capture after the outage kept them there for good: on local disk (an emptyDir goes with
the pod), under a key a status names but the store does not hold, so a download of it failed. The
:class:`SpoolFlusher` thread tries every :data:`FLUSH_SECONDS` while anything is spooled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

from debugcap import delivering
from debugcap.storage import spool

logger = logging.getLogger(__name__)

# An outage's bundles reach the store at most this long after it answers again; each try of a
# store that is still down waits through one bundle's retries (the flush stops at the first failure).
FLUSH_SECONDS: Final = 15.0


class SpoolFlusher:
    """A daemon thread flushing ``store``'s spool every ``every`` seconds while it holds bundles.

    ``wait(seconds)`` returns True when the flusher is to stop; the default waits on :meth:`close`.
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
        """One flush, under the store's lock (a delete must never run in its middle); None when
        nothing waits."""
        if not self.store.spool.entries():
            return None
        with self.store.lock:
            report = spool.flush_spool(self.store.backend, self.store.spool)
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
        while not self._wait(self.every):
            try:
                self.flush_once()
            except Exception:  # noqa: BLE001 - a flush that broke is tried again, the thread lives on
                logger.exception("flushing the spool %s failed; tried again in %.0f s", self.store.spool.directory,
                                 self.every)

    def close(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
