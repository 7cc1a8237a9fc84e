"""Which pod is captured when: concurrency slots, per-pod locks, pods prepared ahead, uploads.

:mod:`~debugcap.operator.captures` hands each pod of a DebugCapture to
:meth:`PodScheduler.capture`; the blocking work of a pod (:class:`PodWork`, implemented by
:class:`debugcap.operator.capturing.PodSteps`) runs in the scheduler's thread executor. Not to be
confused with :mod:`~debugcap.operator.scheduling`, which decides when a DebugSchedule runs.

One scheduler serves the whole process, so its limits hold across all captures:

- ``slots``: pods whose evidence is being collected (``DEBUGCAP_OPERATOR_CONCURRENCY``), each
  given back at the pod's deadline at the latest (see :meth:`PodScheduler._collect`);
- ``lingering``: collection threads still running after their slot was given back; at its limit
  (``DEBUGCAP_OPERATOR_LINGERING_CAPTURES``) a new pod waits before it is prepared
  (:mod:`~debugcap.operator.lingering`);
- a lock per pod: Go serves one CPU profile (and one trace) at a time per process, so a second
  concurrent one fails with "cpu profiling already in use";
- ``ahead``: pods prepared (port-forward open) and waiting for a slot, or being prepared, or
  holding a slot before their window nears its end. The next pods are prepared while the windows
  run, not in the burst of requests that opens them, and a freed slot goes to a pod whose
  connections are up;
- ``uploads``: bundles being stored at once. Storing touches only S3, so it runs outside the pod's
  lock and slot: the next pod's window need not wait for this pod's upload;
- ``analyses``: stored bundles being analysed, one at a time, after the upload and outside its
  limit (:mod:`~debugcap.operator.health` holds a process-wide lock as well). Waiting here, on the
  event loop, rather than in a thread keeps the executor's threads for collecting: a pod whose
  collection waited behind queued analyses for a thread would run into its deadline.

An **urgent** pod (the capture a DebugTrigger fired on memory, racing an OOM kill) waits for none
of the pod lock, a slot, a place ahead or the upload limit: behind a 30 s sweep of the same pod, its
heap would come after the kill. It has places of its own (``urgent``, the operator's
``triggered_captures``) and a small executor of its own, so its work never queues behind long
captures holding the shared executor's threads. Skipping the pod lock is safe because its steps
start no CPU profile or trace (:func:`debugcap.operator.firing_steps.takes_time` is False for it):
Go serves one of each at a time, and a heap or goroutine profile beside another capture's is fine.
Its start is still a distinct second per pod (bundle names carry whole seconds), and it still
analyses one at a time with the others, after its upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from typing import Any, Final, Protocol

from debugcap import capture as engine
from debugcap import templates
from debugcap.capture import deadline
from debugcap.operator import capturing, clocks, lingering, metrics
from debugcap.operator.results import PodResult
from debugcap.operator.status_writing import StatusWriter
from debugcap.settings import CaptureSettings

logger = logging.getLogger(__name__)

# How long before a pod's window ends the next pod is prepared (see prepare_after): a prepare
# took 0.05-0.2 s (p90 0.2) with 8 pods capturing on two cores. It also puts the next pods'
# set-up in the window's quiet second half rather than its busy first half.
PREPARE_LEAD_SECONDS: Final = 0.5
# How long past a pod's deadline (spec.parameters.deadlineSeconds, or the automatic one) the
# scheduler waits for its collection, holding the pod's lock but no longer its slot. The engine
# enforces the deadline itself (steps still running are abandoned, the bundle keeps what was
# collected) and then waits up to 3 s for its abandoned steps once their connections are closed;
# a bundle of hundreds of MB takes seconds to write. This catches an engine that does not finish
# even then. 30 s is a judgement call.
DEADLINE_GRACE_SECONDS: Final = 30.0
# The status write naming a pod's upload key is tried again after these waits while the upload waits
# (capturing.KEY_SENT_SECONDS, 60 s) for one to succeed: 45 s of tries ride out an API server's
# restart and leave the last one time to answer before the upload gives up. Judgement call.
KEY_WRITE_WAITS: Final = (5.0, 10.0, 10.0, 10.0, 10.0)
KEY_WRITE_TRIES: Final = len(KEY_WRITE_WAITS) + 1


class PodWork(Protocol):
    """The blocking steps of one pod's capture; each runs in the scheduler's executor."""

    def prepare(self, pod: str) -> capturing.Prepared | PodResult:
        """Resolve the pod and open its connections; a PodResult ends the pod (not resolved)."""

    def planned_key(self, pod: str, started: datetime) -> str:
        """Where the bundle of the capture of ``pod`` started at ``started`` will be stored."""

    def collect(self, prepared: capturing.Prepared, *, started: datetime, abandoned: threading.Event,
                window_open: Callable[[], None]) -> capturing.Collected | PodResult:
        """Ask the pod for its evidence; call ``window_open`` when its profile window opens."""

    def store(self, collected: capturing.Collected, *, key_sent: threading.Event | None) -> PodResult:
        """Upload the bundle once ``key_sent`` is set (a status write naming its key succeeded)."""

    def assess(self, collected: capturing.Collected, stored: PodResult, *, analyse: bool) -> PodResult:
        """``stored`` with its bundle's local copy analysed (unless ``analyse`` is False); removes the copy."""


class Place:
    """A place ahead (or any semaphore's unit), given back once: on the loop, or from a thread (:meth:`from_thread`)."""

    def __init__(self, semaphore: asyncio.Semaphore, loop: asyncio.AbstractEventLoop) -> None:
        self.semaphore, self.loop, self.done = semaphore, loop, False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.semaphore.release()

    def from_thread(self, delay: float = 0.0) -> None:
        """Give back ``delay`` seconds from now (0: at once), asked from another thread."""
        try:
            self.loop.call_soon_threadsafe(self.loop.call_later, delay, self)
        except RuntimeError:  # the loop is closed: the operator is stopping
            pass


def prepare_after(template: templates.ExpandedTemplate) -> float:
    """How long after a pod's window opens the next pod is prepared: PREPARE_LEAD_SECONDS before
    the window ends. Earlier, its port-forward would wait longer unused (servers close idle
    connections); later, it might not be open when the slot frees."""
    return max(engine.window_seconds(template) - PREPARE_LEAD_SECONDS, 0.0)


def pod_deadline(settings: CaptureSettings, template: templates.ExpandedTemplate) -> float | None:
    """A pod's deadline as its engine fixes it (spec.parameters.deadlineSeconds, else the template's
    length plus the slack): the scheduler frees the pod's slot at it, and abandons its collection
    DEADLINE_GRACE_SECONDS later (see :meth:`PodScheduler._collect`)."""
    return deadline.deadline_seconds(settings, template, engine.COLLECTORS)


async def _write_key(run: StatusWriter, running: PodResult, key_sent: threading.Event, clock: clocks.Clock) -> None:
    """Write ``running`` (it names the pod's upload key); set ``key_sent`` once a write carrying it
    succeeded, trying again (every write carries it) up to KEY_WRITE_TRIES in all."""
    for attempt in range(KEY_WRITE_TRIES):
        if attempt:
            await clock.sleep(KEY_WRITE_WAITS[attempt - 1])
        with contextlib.suppress(Exception):  # a failed write is logged by the writer
            await (run.progress() if attempt else run.set_pod(running))
            key_sent.set()
            return


def deleted_before(pod: str) -> PodResult:
    return PodResult(name=pod, phase="Failed", message="the DebugCapture was deleted before this pod was captured")


class PodScheduler:
    """The process's limits on pod captures (see the module docstring), and the run of one pod."""

    def __init__(self, concurrency: int, executor: Executor, *, uploads: int | None = None,
                 urgent: int = 1, urgent_executor: Executor | None = None,
                 clock: clocks.Clock | None = None,  # None outside tests
                 deadline_grace: float = DEADLINE_GRACE_SECONDS, lingering_limit: int | None = None) -> None:
        """``concurrency`` slots and as many places ahead; ``uploads`` at once (None: ``concurrency``);
        ``urgent`` places for urgent pods, whose work runs in ``urgent_executor`` (None: one of
        this scheduler's own, closed by :meth:`close`); ``lingering_limit`` collection threads past
        their slot before new pods wait (None: ``concurrency``)."""
        self.executor = executor
        self.deadline_grace = deadline_grace
        self.lingering = lingering.Lingering(lingering_limit or concurrency)
        self.slots = asyncio.Semaphore(concurrency)
        self.ahead = asyncio.Semaphore(concurrency)
        self.uploads = asyncio.Semaphore(uploads or concurrency)
        self.analyses = asyncio.Semaphore(1)
        self.urgent = asyncio.Semaphore(urgent)
        # Two threads per place: one pod's collection or upload, and the closing of its connections
        # or its analysis (one at a time in the process) beside the next urgent pod's collection.
        self._own_urgent = urgent_executor is None
        self.urgent_executor = urgent_executor or ThreadPoolExecutor(max_workers=2 * urgent,
                                                                     thread_name_prefix="urgent-capture")
        self._clock = clock or clocks.LoopClock()
        self._pod_locks: dict[tuple[str, str], asyncio.Lock] = {}
        # The second each pod's last capture started in: bundle names carry whole seconds, and two
        # captures of one pod named alike would overwrite each other's bundle. Read and set with no
        # await between, so an urgent capture, which takes no pod lock, keeps to it as well.
        self._pod_started: dict[tuple[str, str], datetime] = {}
        self._key_writes: set[asyncio.Task[None]] = set()  # see _write_key

    def close(self) -> None:
        """Stop the urgent executor if it is this scheduler's own (the operator is stopping)."""
        if self._own_urgent:
            self.urgent_executor.shutdown(wait=False, cancel_futures=True)

    def pod_lock(self, namespace: str, pod: str) -> asyncio.Lock:
        return self._pod_locks.setdefault((namespace, pod), asyncio.Lock())

    async def distinct_start(self, namespace: str, pod: str) -> datetime:
        """Now, to the microsecond, in a later second than the pod's previous capture started in."""
        while True:
            now = self._clock.now()
            previous = self._pod_started.get((namespace, pod))
            if previous is None or now.replace(microsecond=0) > previous.replace(microsecond=0):
                self._pod_started[(namespace, pod)] = now
                return now
            await self._clock.sleep(1.0 - now.microsecond / 1e6)

    async def capture(self, run: StatusWriter, namespace: str, pod: str, work: PodWork, *,
                      prepare_after: float = 0.0, deadline_seconds: float | None = None,
                      on_done: Callable[[PodResult], None] = lambda _r: None, urgent: bool = False) -> PodResult:
        """Capture ``pod`` and store its bundle; ``on_done`` gets the result of every pod that was
        asked for something (not those of a capture deleted before their turn). ``urgent``: the
        pod's steps start no CPU profile or trace, and it waits for no other capture (see the
        module docstring)."""
        if urgent:
            return await self._capture_urgent(run, namespace, pod, work, deadline_seconds, on_done)
        # The pod lock first, then a global slot: a capture queued behind another capture of the
        # same pod must not hold one of the few slots other pods could use meanwhile.
        key_sent: threading.Event | None = None
        async with self.pod_lock(namespace, pod):
            prepared, place = await self._prepare(run, namespace, pod, work)
            if isinstance(prepared, PodResult):
                if run.deleted:  # nothing was asked of the pod: no Event, not counted
                    run.set_pod(prepared)
                    return prepared
                collected: capturing.Collected | PodResult = prepared  # not resolved: a failure like any other
            else:
                def freed() -> None:
                    self.slots.release()
                    place()

                collected, key_sent = await self._collect(
                    run, namespace, prepared, work, executor=self.executor, freed=freed,
                    window_open=functools.partial(place.from_thread, prepare_after), deadline_seconds=deadline_seconds)
        result = await self._store(run, collected, work, key_sent, executor=self.executor, limit=self.uploads)
        return await self._finish(run, collected, result, work, self.executor, on_done)

    async def _capture_urgent(self, run: StatusWriter, namespace: str, pod: str, work: PodWork,
                              deadline_seconds: float | None, on_done: Callable[[PodResult], None]) -> PodResult:
        """An urgent pod: an urgent place and executor, no pod lock, slot, place ahead or upload limit.
        The place is held until the bundle is stored: it bounds what urgent pods cost at once."""
        key_sent: threading.Event | None = None
        async with self.urgent:
            prepared = deleted_before(pod) if run.deleted else await self._prepared(self.urgent_executor, work, pod)
            if run.deleted:  # before or while it was prepared: nothing was asked of the pod
                self.close_later(prepared, self.urgent_executor)
                run.set_pod(deleted_before(pod))
                return deleted_before(pod)
            if isinstance(prepared, PodResult):
                collected: capturing.Collected | PodResult = prepared  # not resolved: a failure like any other
            else:
                collected, key_sent = await self._collect(
                    run, namespace, prepared, work, executor=self.urgent_executor, freed=lambda: None,
                    window_open=lambda: None, deadline_seconds=deadline_seconds)
            result = await self._store(run, collected, work, key_sent, executor=self.urgent_executor,
                                       limit=contextlib.nullcontext())
        return await self._finish(run, collected, result, work, self.urgent_executor, on_done)

    async def _finish(self, run: StatusWriter, collected: capturing.Collected | PodResult, result: PodResult,
                      work: PodWork, executor: Executor, on_done: Callable[[PodResult], None]) -> PodResult:
        if isinstance(collected, capturing.Collected):
            result = await self._assess(run, collected, result, work, executor)
        run.set_pod(result)
        on_done(result)
        return result

    async def _prepared(self, executor: Executor, work: PodWork, pod: str) -> capturing.Prepared | PodResult:
        """``work.prepare(pod)`` in ``executor``; cancelled meanwhile, the connections it opens are
        closed once it ends."""
        job = asyncio.get_running_loop().run_in_executor(executor, work.prepare, pod)
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            job.add_done_callback(
                lambda f: None if f.cancelled() or f.exception() else self.close_later(f.result(), executor))
            raise

    async def _prepare(self, run: StatusWriter, namespace: str, pod: str,
                       work: PodWork) -> tuple[capturing.Prepared | PodResult, Place]:
        """The pod prepared and a slot held for it, which the caller releases; or the result that
        ends the pod. With it, the pod's place ahead, which the caller gives back
        PREPARE_LEAD_SECONDS before the pod's window ends (or when the pod ended).

        While ``lingering`` is full the pod waits before it is prepared, not after: its
        connections would sit idle through a wait that can last the grace period."""
        loop = asyncio.get_running_loop()
        await self.ahead.acquire()
        place = Place(self.ahead, loop)
        prepared: capturing.Prepared | PodResult | None = None
        try:
            await self.lingering.room(f"{namespace}/{pod}")
            if run.deleted:
                place()
                return deleted_before(pod), place
            prepared = await self._prepared(self.executor, work, pod)
            if isinstance(prepared, PodResult):
                place()
                return prepared, place
            await self.slots.acquire()
        except BaseException:
            place()
            if prepared is not None:
                self.close_later(prepared)
            raise
        if run.deleted:  # while it waited for its slot
            self.slots.release()
            place()
            self.close_later(prepared)
            return deleted_before(pod), place
        return prepared, place

    async def _collect(self, run: StatusWriter, namespace: str, prepared: capturing.Prepared, work: PodWork, *,
                       executor: Executor, freed: Callable[[], None], window_open: Callable[[], None],
                       deadline_seconds: float | None) -> tuple[capturing.Collected | PodResult, threading.Event]:
        """Collect a prepared pod on a thread of its own, then call ``freed`` (a regular pod gives
        back the slot and place :meth:`_prepare` held for it). Returns what was collected and the
        event set once a status write naming its key succeeded (:func:`_write_key`).

        ``deadline_seconds`` (the pod's, explicit or automatic; None: none): at it ``freed`` is
        called whether or not the collection ended. The engine then abandons the steps still
        running and writes what they collected, which the pod keeps if it comes within
        ``deadline_grace``; collecting no more, it needs no slot, and four pods whose engine is
        slow to stop must not stop every other capture. A collection that has not ended by then
        is abandoned (:meth:`_abandon`). Its own thread, not the executor's: an abandoned one
        may never return, and the executor's threads are few.
        """
        pod = prepared.target.pod
        once = _Once(freed)
        abandoned, closed_apart = threading.Event(), False
        try:
            started = await self.distinct_start(namespace, pod)
            # The key goes out with the Running status; the upload waits for that write, the capture
            # does not: under a burst of pod starts it queues, which delayed each window by up to 0.3 s.
            key_sent, running = threading.Event(), PodResult(name=pod, phase="Running",
                                                             upload_key=work.planned_key(pod, started))
            writing = asyncio.create_task(_write_key(run, running, key_sent, self._clock))
            self._key_writes.add(writing)  # held: the loop keeps only weak references to tasks
            writing.add_done_callback(self._key_writes.discard)
            job = lingering.own_thread(functools.partial(work.collect, prepared, started=started, abandoned=abandoned,
                                                         window_open=window_open), name=f"capture {namespace}/{pod}")
            metrics.RUNNING.inc()
            try:
                if await self._ended(job, deadline_seconds):
                    return job.result(), key_sent
                once()
                self.lingering.track(job)  # still running with its slot given back
                if await self._ended(job, self.deadline_grace):
                    return job.result(), key_sent
                abandoned.set()
                closed_apart = True
                return await self._abandon(run, namespace, prepared, job, deadline_seconds), key_sent
            except BaseException:  # cancelled (the operator stops): what it returns later is dropped
                abandoned.set()
                self.lingering.track(job)  # its slot is given back below
                job.add_done_callback(lingering.drop_late)
                raise
            finally:
                metrics.RUNNING.dec()
        finally:
            once()
            # The connections close after the slot is free: ending an exec waits for the shell to
            # exit in the pod, and the next pod need not wait for that. (An abandoned pod's are
            # being closed already.)
            if not closed_apart:
                self.close_later(prepared, executor)

    async def _ended(self, job: asyncio.Future[Any], seconds: float | None) -> bool:
        """Whether ``job`` ended within ``seconds`` (None: waits for it) on the scheduler's clock."""
        if seconds is None or job.done():
            await asyncio.wait({job})
            return True
        ended = asyncio.Event()
        job.add_done_callback(lambda _job: ended.set())
        return await self._clock.wait(ended, seconds) or job.done()

    async def _abandon(self, run: StatusWriter, namespace: str, prepared: capturing.Prepared,
                       job: asyncio.Future[Any], deadline_seconds: float | None) -> PodResult:
        """The pod's collection outlived its deadline and the grace after it: the pod ends Failed
        now, saying so; its connections close so that its requests (a CPU profile the next capture
        of the pod would be refused) end, and whatever it returns later is dropped: no upload, no
        status. The pod's lock waits for it ABANDONED_STEPS_SECONDS at most (an exec command may
        run on to its own timeout, and holds nothing the next capture needs)."""
        target = prepared.target
        job.add_done_callback(lingering.drop_late)
        metrics.ABANDONED.inc()
        logger.warning("%s/%s: capture abandoned %.0f s past its deadline of %.10g s; its connections are closed "
                       "and what it returns later is dropped", namespace, target.pod, self.deadline_grace,
                       deadline_seconds or 0.0)
        result = PodResult(
            name=target.pod, phase="Failed", container=target.container, node=target.node,
            duration_seconds=float(deadline_seconds or 0) + self.deadline_grace, message=(
                f"capture deadline of {deadline_seconds or 0:.10g} s (spec.parameters.deadlineSeconds; unset, the "
                f"template's length plus the operator's slack) passed, and the capture had not ended "
                f"{self.deadline_grace:.0f} s after it: abandoned with its connections closed, nothing uploaded; "
                "raise spec.parameters.deadlineSeconds or shorten the template"))
        run.set_pod(result)
        # On a thread of its own: the executor's threads may all be taken.
        threading.Thread(target=lingering.close_quietly, args=(prepared,), name=f"close {namespace}/{target.pod}",
                         daemon=True).start()
        await self._ended(job, capturing.ABANDONED_STEPS_SECONDS)
        return result

    async def _store(self, run: StatusWriter, collected: capturing.Collected | PodResult, work: PodWork,
                     key_sent: threading.Event | None, *, executor: Executor,
                     limit: contextlib.AbstractAsyncContextManager[Any]) -> PodResult:
        try:
            if isinstance(collected, capturing.Collected) and run.deleted:
                collected.discard()
                return collected.failed("the DebugCapture was deleted during this pod's capture; nothing was "
                                        "uploaded")
            if isinstance(collected, capturing.Collected):
                async with limit:
                    return await asyncio.get_running_loop().run_in_executor(
                        executor, functools.partial(work.store, collected, key_sent=key_sent))
            return collected
        except BaseException:
            if isinstance(collected, capturing.Collected):  # cancelled before it was stored: no scratch left
                collected.discard()
            raise

    async def _assess(self, run: StatusWriter, collected: capturing.Collected, stored: PodResult,
                      work: PodWork, executor: Executor) -> PodResult:
        """The analysis of a stored bundle, one at a time (``analyses``), once a status write
        lists the bundle: an operator that dies while analysing (out of memory, say) leaves a
        stored bundle listed as such, which its successor keeps as it is instead of downloading
        and analysing it again. A pod with nothing to analyse does not queue behind other pods'
        analyses for its status, Event and clean-up."""
        loop = asyncio.get_running_loop()
        if not stored.key or stored.phase == "Failed" or run.deleted:
            # Spooled or refused (no key: the bundle stays where it is), Failed (nothing read), or
            # the capture is being deleted: assess only removes the copy, if any.
            return await asyncio.shield(loop.run_in_executor(executor, functools.partial(
                work.assess, collected, stored, analyse=False)))
        job: asyncio.Future[PodResult] | None = None
        try:
            # A failed write is logged by the writer and not fatal: the final one lists it too.
            await asyncio.wait({run.set_pod(stored)})
            async with self.analyses:
                job = loop.run_in_executor(executor, functools.partial(
                    work.assess, collected, stored, analyse=not run.deleted))
                return await asyncio.shield(job)
        except BaseException:
            # Cancelled before the analysis began (it removes the copy itself otherwise). Only a
            # stored bundle's copy is scratch: a refused one is left for a person.
            if job is None and stored.key:
                collected.discard()
            raise

    def close_later(self, prepared: capturing.Prepared | PodResult, executor: Executor | None = None) -> None:
        """Close a prepared pod's connections off the event loop (closing waits on the pod), in
        ``executor`` (None: the shared one)."""
        if isinstance(prepared, capturing.Prepared):
            try:
                (executor or self.executor).submit(prepared.close)
            except RuntimeError:  # the executor is shutting down with the operator
                prepared.close()


class _Once:
    """``fn`` called the first time this is, never again."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn: Callable[[], None] | None = fn

    def __call__(self) -> None:
        fn, self._fn = self._fn, None
        if fn is not None:
            fn()
