"""Collection threads that outlive their pod's slot, counted and capped.

:class:`~debugcap.operator.pod_scheduling.PodScheduler` collects each pod on a thread of its own
(:func:`own_thread`) and frees the pod's slot at its deadline, whether or not the thread ended:
the engine then writes and compresses what it collected, up to the grace period, and a thread
abandoned after that may hang for as long as its stuck request does. Each such thread still
costs memory (a bundle writer, buffers) that the concurrency slot no longer counts. Without a
limit, four slots with trickling pods meant eight bundle writers at once, and stuck threads piled
up for good. :class:`Lingering` counts them (``debugcap_pod_captures_lingering``) and, at its
limit (``DEBUGCAP_OPERATOR_LINGERING_CAPTURES``), holds new captures back before they take a slot.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from debugcap.operator import capturing, metrics

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Lingering:
    """Collection threads still running after their slot was freed; at most ``limit`` before new
    captures wait (see the module docstring). Used on the event loop only: a thread's end reaches
    it through its job's done callback, which the loop runs."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._jobs: set[asyncio.Future[Any]] = set()
        self._room = asyncio.Event()
        self._room.set()

    @property
    def count(self) -> int:
        return len(self._jobs)

    def track(self, job: asyncio.Future[Any]) -> None:
        """Count ``job``'s thread until it ends, unless it has ended or is counted already."""
        if job.done() or job in self._jobs:
            return
        self._jobs.add(job)
        metrics.LINGERING.inc()
        if self.count >= self.limit:
            self._room.clear()
        job.add_done_callback(self._ended)

    def _ended(self, job: asyncio.Future[Any]) -> None:
        self._jobs.discard(job)
        metrics.LINGERING.dec()
        if self.count < self.limit:
            self._room.set()

    async def room(self, what: str) -> None:
        """Return once fewer than ``limit`` threads linger; ``what`` (namespace/pod) names the
        capture that waits in the log line. A thread that never ends keeps its place: the gauge
        and this line show it, and an operator restart ends it."""
        if self.count < self.limit:
            return
        logger.warning("%s: capture waits before taking a slot: %d collection thread(s) of earlier pods are "
                       "still running past their deadline (DEBUGCAP_OPERATOR_LINGERING_CAPTURES=%d); it starts "
                       "when one ends", what, self.count, self.limit)
        while self.count >= self.limit:
            await self._room.wait()
        logger.info("%s: capture goes on: %d collection thread(s) still past their deadline", what, self.count)


def own_thread(fn: Callable[[], T], *, name: str) -> asyncio.Future[T]:
    """``fn()`` on a new daemon thread; its result (or exception) on the running loop's future.
    A result that comes after the loop closed or the future was cancelled is dropped (:func:`drop`)."""
    loop = asyncio.get_running_loop()
    job: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, exc: BaseException | None) -> None:
        if job.cancelled():
            drop(result)
        elif exc is not None:
            job.set_exception(exc)
        else:
            job.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result: T | None = None
        exc: BaseException | None = None
        try:
            result = fn()
        except BaseException as caught:  # noqa: BLE001 - handed to the loop, raised where it is awaited
            exc = caught
        try:
            loop.call_soon_threadsafe(settle, result, exc)
        except RuntimeError:  # the loop is closed: the operator stopped
            drop(result)

    threading.Thread(target=run, name=name, daemon=True).start()
    return job


def drop_late(job: asyncio.Future[Any]) -> None:
    """What an abandoned collection returned, dropped: its bundle is removed, never uploaded."""
    if job.cancelled() or job.exception() is not None:
        return
    drop(job.result())


def drop(result: object) -> None:
    if isinstance(result, capturing.Collected):
        logger.info("%s/%s: a late bundle of an abandoned capture was dropped", result.target.namespace,
                    result.target.pod)
        result.discard()


def close_quietly(prepared: capturing.Prepared) -> None:
    try:
        prepared.close()
    except Exception:  # noqa: BLE001 - a thread of its own: the failure is logged, nothing waits for it
        logger.warning("closing the connections of %s/%s failed", prepared.target.namespace, prepared.target.pod,
                       exc_info=True)
