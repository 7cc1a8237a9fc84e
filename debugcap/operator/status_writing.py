"""The status of one running DebugCapture, written to its ``/status`` subresource as work goes on.

:mod:`~debugcap.operator.captures` makes one :class:`StatusWriter` per capture it runs or closes;
:mod:`~debugcap.operator.pod_scheduling` reports pods through it. Why not kopf's own ``patch``:
kopf applies it only when the handler returns, which for a capture can be many minutes.

Pods of a capture start and end in bursts; each write sends the whole status (tens of kB with 20
pods' entries) and wakes every watcher of the object, the operator's own kopf included. So the
writer coalesces: changes made while a write is in flight go out together in the next one, and a
write of pod progress alone waits until :data:`PROGRESS_WRITE_SECONDS` after the last write,
gathering what else happens meanwhile; with many pods the interval grows with them
(:data:`PROGRESS_WRITE_PODS`). Capture-level changes (phase, completion) go at once.

Progress writes carry each pod's entry without the records of its steps that ended ok
(``PodResult.as_status`` ``brief``): those were about three quarters of a debug-full entry's bytes,
written again by every write while the capture runs; the capture-level writes (its end among them)
carry them whole. A reader of a running capture still sees each pod's phase, bundle, findings and
the steps that failed or were skipped, and why; the bundle's manifest has every record (issue 17).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from debugcap import errors
from debugcap.operator import clocks
from debugcap.operator.results import PodResult

# Least time between two status writes that carry only pod progress: a person watching sees pods
# move within it, and a 20-pod capture makes half the writes.
PROGRESS_WRITE_SECONDS: Final = 0.3
# ...for a status of up to this many pods; with more, the interval grows in proportion. Every
# write carries every pod's entry (2-3 kB each for debug-full whole, about a quarter of it in a
# progress write's brief one, without the ok steps' records), which the API server decodes,
# validates against the schema, stores and sends to each watcher, the operator's kopf included: at
# a fixed interval a sweep's writes cost the square of its pods. Growing with them keeps the status
# bytes written per second flat (a 100-pod status every 2 s) and a sweep's write cost linear.
PROGRESS_WRITE_PODS: Final = 15
# A capture-level write (its phase, its end) that the API server did not answer is tried again after
# these waits (as the upload key's, pod_scheduling.KEY_WRITE_WAITS). Given up at once, it ended the
# capture's handler: kopf ran it again 60 s later, took the capture for one a dead operator left
# Running and closed it so ("the operator restarted"), its pods' records replaced. The fault suite's
# API server restart found it. A refused write (invalid, forbidden) is not tried again.
PHASE_WRITE_WAITS: Final = (2.0, 5.0, 10.0, 10.0, 10.0, 10.0)
# ...and all its tries end within this, the waits and a last try of its own: each try may take only
# the time left (a try the API server never answers would otherwise wait out the request timeout,
# 30 s, each time: minutes in all, while the capture's handler and its pods' results wait).
PHASE_WRITE_LAST_TRY: Final = 5.0
PHASE_WRITE_SECONDS: Final = sum(PHASE_WRITE_WAITS) + PHASE_WRITE_LAST_TRY
# One try waits at most this for the API server's answer (the kube client's own request timeout is
# 30 s): a first try given the whole bound waited 52 s on an API server that never answered, and
# left no time for a second one once it came back.
PHASE_WRITE_TRY_SECONDS: Final = 10.0
KUBE_REQUEST_SECONDS: Final = 30.0

# Sends a whole status; answers whether the object is being deleted (or is gone).
Send = Callable[[dict[str, Any]], Awaitable[bool]]
# The same, waiting at most the given seconds for the API server's answer.
SendWithin = Callable[[dict[str, Any], float], Awaitable[bool]]

logger = logging.getLogger(__name__)


class StatusWriter:
    """The status of one capture (``status``, ``pods``) and the writes that carry it.

    ``deleted`` turns true once a write's answer says the object is being deleted: kopf runs one
    handler of an object at a time, so the delete handler cannot tell the running capture.
    """

    def __init__(self, send: Send, *, what: str = "", interval: float = PROGRESS_WRITE_SECONDS,
                 clock: clocks.Clock | None = None,  # clock: None outside tests
                 send_within: SendWithin | None = None) -> None:  # for capture-level writes
        self.status: dict[str, Any] = {}
        self._send_within = send_within
        self.pods: dict[str, PodResult] = {}
        self.deleted = False
        self._send_status = send
        self._what = what  # for log messages: "namespace/name"
        self._interval = interval
        self._clock = clock or clocks.LoopClock()
        self._lock = asyncio.Lock()
        self._version = 0  # changes made to status / pods
        self._written = 0  # the last of them a write has carried
        self._last_write: float | None = None  # clock time the last write ended
        self._hurry = asyncio.Event()  # set by a capture-level write: a waiting pod write goes now
        self._progress: set[asyncio.Task[None]] = set()

    def progress(self) -> asyncio.Task[None]:
        """Write pod progress soon, without waiting for it: the capture's end must not wait out the
        interval, and its final :meth:`write` carries whatever is still unwritten. The task ends once
        a write carrying this change has gone out (or failed, which is logged)."""
        self._version += 1  # now, not when the task starts: a write made before that carries it
        task = asyncio.create_task(self._send(self._version, urgent=False))
        self._progress.add(task)
        task.add_done_callback(self._progress_done)
        return task

    def set_pod(self, result: PodResult) -> asyncio.Task[None]:
        """Record a pod's result and write it as progress (see :meth:`progress`)."""
        self.pods[result.name] = result
        return self.progress()

    async def write(self, **changes: Any) -> None:
        """Send the status with ``changes`` (at once), or with no changes pod progress (within
        the interval); returns once a write carrying them has gone out."""
        self.status.update(changes)
        self._version += 1
        wanted = self._version
        if not changes:
            await self._send(wanted, urgent=False)
            return
        deadline = self._clock.time() + PHASE_WRITE_SECONDS
        for wait in (*PHASE_WRITE_WAITS, None):
            try:
                await self._send(wanted, urgent=True, deadline=deadline)
                return
            except (errors.InvalidError, errors.ForbiddenError):
                raise
            except errors.KubeError as exc:
                left = deadline - self._clock.time() - PHASE_WRITE_LAST_TRY
                if wait is None or left <= 0:
                    raise
                logger.warning("writing the status of %s failed (%s); trying again in %.0f s", self._what,
                               errors.shorten(str(exc)), min(wait, left))
                await self._clock.sleep(min(wait, left))

    async def settle(self) -> None:
        """Wait for progress writes still queued; a failed one lost nothing (see :meth:`progress`)."""
        await asyncio.gather(*self._progress, return_exceptions=True)

    def _progress_done(self, task: asyncio.Task[None]) -> None:
        self._progress.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Not fatal: the next write sends the whole status again.
            logger.warning("a status write of %s failed: %s", self._what, task.exception())

    async def _send(self, wanted: int, *, urgent: bool, deadline: float | None = None) -> None:
        if urgent:
            self._hurry.set()
        while True:
            async with self._lock:
                if self._written >= wanted:
                    return
                interval = self._interval * max(1.0, len(self.pods) / PROGRESS_WRITE_PODS)
                wait = 0.0 if self._last_write is None else self._last_write + interval - self._clock.time()
                if not urgent and wait > 0 and not self._hurry.is_set():
                    if await self._clock.wait(self._hurry, wait):
                        continue  # a capture-level write is queued behind us: it carries this too
                # Whole when a capture-level write is queued: this write then carries its change, and
                # the capture-level write, finding it written, sends nothing more.
                whole = urgent or self._hurry.is_set()
                self._hurry.clear()
                if self.pods:
                    self.status["pods"] = [p.as_status(brief=not whole) for p in self.pods.values()]
                version, snapshot = self._version, dict(self.status)
                within = self._send_within
                timeout = None
                if deadline is not None:
                    # Measured now, the lock held: a progress write in flight may have used some of it.
                    timeout = min(KUBE_REQUEST_SECONDS, PHASE_WRITE_TRY_SECONDS, deadline - self._clock.time())
                    if timeout <= 0:
                        raise errors.KubeError(f"cannot write the status of {self._what}: no time was left "
                                               f"within {PHASE_WRITE_SECONDS:.0f} s for another try")
                if await (self._send_status(snapshot) if within is None or timeout is None
                          else within(snapshot, timeout)):
                    self.deleted = True
                self._written = version
                self._last_write = self._clock.time()
                return
