"""Running a template's steps: each collector once, on worker threads, into one shared bundle.

:class:`StepRunner` runs the steps :func:`debugcap.capture.window.schedule` planned, at most
``workers`` at a time, each in its :class:`~debugcap.capture.window.WindowGate` turn. A collector
that fails or raises is recorded Failed and the others go on: one collector's bug must not lose
the others' evidence. :class:`Evidence` is what the steps share: the bundle (one writer at a
time) and their records, in template order, until the capture closes it. After that (its
deadline passed) a late step adds nothing and records nothing; what it added before stays.

Used by :mod:`debugcap.capture.run`.
"""

from __future__ import annotations

import collections
import functools
import threading
from collections.abc import Callable, Mapping, Sequence

from debugcap import errors, templates
from debugcap.bundle import manifest, writer
from debugcap.capture.deadline import Clock, Deadline
from debugcap.capture.window import Planned, SendingGets, WindowGate
from debugcap.collectors import base

Progress = Callable[[str, manifest.CollectorRecord | None], None]


class Evidence:
    """The bundle and the step records, shared by the steps until :meth:`close`."""

    def __init__(self, bundle: writer.BundleWriter, steps: Sequence[templates.Step]) -> None:
        self._bundle, self._steps = bundle, tuple(steps)
        self._lock = threading.Lock()
        self._files: list[list[str]] = [[] for _ in steps]
        self._started: list[float | None] = [None] * len(steps)
        self._records: list[manifest.CollectorRecord | None] = [None] * len(steps)
        self._left = len(steps)
        self._closed = False
        self.abandoned: tuple[int, ...] = ()  # steps without a record when closed
        self.error: BaseException | None = None  # the engine's own bug, raised by the capture
        self.done = threading.Event()  # every step recorded, or the engine failed
        if not steps:
            self.done.set()

    def add(self, index: int, path: str, scratch: base.Scratch) -> None:
        """Step ``index`` adds a file (``CollectContext.add_file``)."""
        with self._lock:
            if self._closed:
                raise errors.CollectorError(f"{path} not added: the capture is over (its deadline passed)")
            self._bundle.add_stream(path, scratch.reader())
            self._files[index].append(path)

    def started(self, index: int, at: float) -> None:
        with self._lock:
            self._started[index] = at

    def size(self, files: Sequence[str]) -> int:
        """Bytes the bundle holds for ``files``."""
        with self._lock:
            entries = self._bundle.files
        return sum(entries[f].size for f in files if f in entries)

    def record(self, index: int, record: manifest.CollectorRecord) -> bool:
        """Step ``index`` ended with ``record``; False when it came too late (after :meth:`close`)."""
        with self._lock:
            if self._closed:
                return False
            self._records[index] = record
            self._left -= 1
            if self._left == 0:
                self.done.set()
        return True

    def failed(self, exc: BaseException) -> None:
        """The engine itself failed on a worker thread: the capture raises ``exc``."""
        with self._lock:
            self.error = self.error or exc
        self.done.set()

    def close(self, deadline: Deadline, now: float) -> list[manifest.CollectorRecord]:
        """No more files or records; a step without a record was abandoned at ``deadline``:
        Partial when it added files before, else Failed. Records in template order."""
        with self._lock:
            self._closed = True
            entries = self._bundle.files
            self.abandoned = tuple(i for i, record in enumerate(self._records) if record is None)
            return [record or self._abandoned(i, deadline, now, entries) for i, record in enumerate(self._records)]

    def _abandoned(self, index: int, deadline: Deadline, now: float,
                   entries: Mapping[str, manifest.FileEntry]) -> manifest.CollectorRecord:
        files, started = tuple(dict.fromkeys(self._files[index])), self._started[index]
        return manifest.CollectorRecord(
            name=self._steps[index].collector,
            status=manifest.CollectorStatus.PARTIAL if files else manifest.CollectorStatus.FAILED,
            duration_ms=0 if started is None else int((now - started) * 1000),
            bytes=sum(entries[f].size for f in files if f in entries),
            message=deadline.abandoned(started=started is not None, kept=bool(files)), files=files)


class StepRunner:
    """Runs planned steps on up to ``workers`` daemon threads, recording into ``evidence``.

    ``context`` builds a step's :class:`~debugcap.collectors.base.CollectContext` from its
    ``params``, ``add_file`` and ``http``; the rest of the context is the capture's. Daemon
    threads, not an executor: a step the deadline abandoned may hang on its pod for minutes, and
    neither the capture nor the process exit may wait for it.
    """

    def __init__(self, *, collectors: Mapping[str, type[base.Collector]],
                 context: Callable[..., base.CollectContext], http: SendingGets, gate: WindowGate,
                 evidence: Evidence, clock: Clock, progress: Progress) -> None:
        self._collectors, self._context, self._http = collectors, context, http
        self._gate, self._evidence, self._clock, self._say = gate, evidence, clock, progress
        self.stop = threading.Event()  # set when the capture is over: steps not begun never begin
        # Set once every worker thread has returned: after a deadline, abandoned steps may still be
        # talking to the pod (a CPU profile runs until its connection closes).
        self.ended = threading.Event()
        self._live = 0
        self._live_lock = threading.Lock()

    def start(self, plan: Sequence[Planned], workers: int) -> None:
        """Start the steps in ``plan`` order; returns at once (wait on ``evidence.done``)."""
        queue = collections.deque(plan)

        def work() -> None:
            try:
                while not self.stop.is_set():
                    try:
                        planned = queue.popleft()
                    except IndexError:
                        return
                    try:
                        self.run(planned)
                    except BaseException as exc:  # the engine's own bug: the capture raises it
                        self._evidence.failed(exc)
                        return
            finally:
                with self._live_lock:
                    self._live -= 1
                    if self._live == 0:
                        self.ended.set()

        count = min(workers, len(plan))
        self._live = count
        if count == 0:
            self.ended.set()
        for n in range(count):
            threading.Thread(target=work, name=f"debugcap-step-{n}", daemon=True).start()

    def run(self, planned: Planned) -> None:
        """Run one step in its turn and record it (and report it) unless the capture is over."""
        index, step, delay = planned
        try:
            self._gate.before_step(index)
            # The mid-window goroutine dump waits here, counted from when the window's steps
            # start (after the snapshots); a capture that ends meanwhile wakes it.
            if delay > 0 and self._clock.wait(self.stop, delay):
                return
            if self.stop.is_set():
                return
            record = self.collect(index, step)
        finally:
            self._gate.sent(index)  # an opening step that ended without sending its request
            self._gate.ended(index)  # a snapshot that ended lets the window start
        if self._evidence.record(index, record):
            self._say(step.collector, record)

    def collect(self, index: int, step: templates.Step) -> manifest.CollectorRecord:
        """Run step ``index``'s collector; whatever it raises becomes a Failed record."""
        if step.skipped:  # the caller left it out: said in the manifest, not silently missing
            return manifest.CollectorRecord(name=step.collector, status=manifest.CollectorStatus.SKIPPED,
                                            duration_ms=0, bytes=0, message=step.skipped)
        collector = self._collectors[step.collector]()
        ctx = self._context(params=step.params, add_file=functools.partial(self._evidence.add, index),
                            http=self._gate.http_for(index, self._http))
        t0 = self._clock.now()
        self._evidence.started(index, t0)
        try:
            result = collector.collect(ctx)
        except errors.DebugcapError as exc:
            result = base.CollectorResult(base.Status.FAILED, str(exc), tuple(ctx.added))
        except Exception as exc:  # one collector's bug must not lose the others' evidence
            result = base.CollectorResult(base.Status.FAILED, _internal(step.collector, exc), tuple(ctx.added))
        files = tuple(dict.fromkeys(ctx.added))
        return manifest.CollectorRecord(
            name=step.collector, status=result.status, duration_ms=int((self._clock.now() - t0) * 1000),
            bytes=self._evidence.size(files), message=result.message, files=files)


def _internal(collector: str, exc: Exception) -> str:
    return f"internal error in {collector}: {type(exc).__name__}: {errors.shorten(str(exc))}"

