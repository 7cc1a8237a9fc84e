"""The profile window: which steps start when, and when the window counts as open.

Snapshots first: the steps whose collector is ``before_window`` (heap, allocs, goroutines, expvar,
metrics) and are not in the window run before it, and the window's steps wait for them, at most
:data:`BEFORE_WINDOW_SECONDS`. A trace allocates megabytes of buffers and a CPU profile its own
goroutines; a heap profile taken after they start measured the capture itself (the trace
buffers were 41% of the demo pod's heap).

The steps of one ``window`` (CPU profile, goroutine dump, trace) start together so they
describe the same moment; the rest run beside them. The window opens when the requests of the
steps that last (CPU profile, trace: the *opening* steps) are out. Steps outside the window
wait, at most :data:`WINDOW_HEAD_START_SECONDS`, until then: exec sessions, API reads and quick
GETs started beside the window's requests compete for the same API server, kubelet and CPUs,
and delayed the window by up to 0.25 s with 8 pods at once; they fit in the window anyway.

:func:`schedule` and :class:`WindowGate` are used by :mod:`debugcap.capture.run` and
:mod:`debugcap.capture.steps`; :func:`window_seconds` and :func:`forwards_needed` by the
operator, through :mod:`debugcap.capture`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, NamedTuple, Protocol

from debugcap import templates
from debugcap.capture.deadline import Clock
from debugcap.collectors import base
from debugcap.kube.portforward import HttpResult

# Longest the steps outside a window wait for the window's requests to go out.
WINDOW_HEAD_START_SECONDS = 0.5
# Longest the window waits for the snapshots taken before it: a snapshot that hangs (a heap
# profile of a huge heap, a stuck endpoint) delays the window by this, never loses it.
BEFORE_WINDOW_SECONDS = 3.0


class Planned(NamedTuple):
    """One step of a template, when it starts: ``delay`` seconds after the capture began."""

    place: int  # its index in the template: records come back in this order
    step: templates.Step
    delay: float


def seconds(params: Mapping[str, Any]) -> float:
    """A step's ``seconds`` parameter (how long its profile or trace lasts); 0 for an instant step."""
    try:
        return float(params.get("seconds") or 0)
    except (TypeError, ValueError):
        return 0.0


def opens_window(step: templates.Step) -> bool:
    """A windowed step that lasts (CPU profile, trace): the window is open once its request is out."""
    return step.window is not None and seconds(step.params) > 0


def window_seconds(template: templates.ExpandedTemplate) -> float:
    """How long the template's window lasts (its longest CPU profile or trace); 0 without one."""
    return max((seconds(s.params) for s in template.steps if s.window), default=0.0)


def window_size(template: templates.ExpandedTemplate) -> int:
    """Steps in the window: they all start at once, so the capture runs at least this many at a time."""
    return sum(1 for s in template.steps if s.window)


def forwards_needed(template: templates.ExpandedTemplate) -> int:
    """Port-forwards a capture of ``template`` keeps open: one per windowed step that lasts (CPU
    profile, trace), held for the whole window, and one that every quick GET takes turns on,
    the mid-window goroutine dump included. Each forward is a stream through the API server and
    the kubelet; on a busy node those streams are what a capture costs."""
    return sum(1 for s in template.steps if opens_window(s)) + 1


def snapshots_first(steps: Sequence[templates.Step], before: frozenset[str]) -> frozenset[int]:
    """The steps taken before the window: outside it, of a ``before`` collector, and only when
    the template has a window to keep them out of."""
    if not any(s.window for s in steps):
        return frozenset()
    return frozenset(i for i, s in enumerate(steps) if not s.window and s.collector in before)


def schedule(template: templates.ExpandedTemplate, before: frozenset[str] = frozenset()) -> list[Planned]:
    """The snapshots of ``before`` collectors first (:func:`snapshots_first`), then the windowed
    steps, all at once; an instant step in a window (the goroutine dump) waits half the shortest
    windowed duration (after the snapshots) so it lands in the middle of the window. The other
    steps follow, in template order."""
    steps = list(enumerate(template.steps))
    first = snapshots_first(template.steps, before)
    windowed = [(i, s) for i, s in steps if s.window]
    durations = [seconds(s.params) for _i, s in windowed if opens_window(s)]
    middle = min(durations) / 2 if durations else 0.0
    plan = [Planned(i, s, 0.0) for i, s in steps if i in first]
    plan += [Planned(i, s, 0.0 if opens_window(s) else middle) for i, s in windowed]
    return plan + [Planned(i, s, 0.0) for i, s in steps if not s.window and i not in first]


class SendingGets(Protocol):
    """GETs that say when their request is out (``debugcap.kube.portforward.Pool``)."""

    def get(self, path: str, sink: IO[bytes], *, timeout: float, max_bytes: int,
            sent: Callable[[], None] | None = None) -> HttpResult:
        """One GET; ``sent`` is called once the request has gone out."""


class WindowGate:
    """Opens the window once every opening step's request is out (or that step ended), and holds
    the steps outside the window back until then, for at most ``head_start`` seconds.

    ``on_open`` is called once, from the thread that completed the window (the operator gives
    the next pod its turn then); at once from :meth:`start` for a template without a window.
    """

    def __init__(self, steps: Sequence[templates.Step], *, clock: Clock, on_open: Callable[[], None] | None = None,
                 head_start: float = WINDOW_HEAD_START_SECONDS, before: frozenset[str] = frozenset(),
                 before_seconds: float = BEFORE_WINDOW_SECONDS) -> None:
        self._opening = frozenset(i for i, s in enumerate(steps) if opens_window(s))
        self._pending = set(self._opening)
        self._first = snapshots_first(steps, before)
        self._snapshots_left = set(self._first)
        self._windowed = frozenset(i for i, s in enumerate(steps) if s.window)
        self._outside = frozenset(i for i, s in enumerate(steps) if not s.window) - self._first
        self._clock, self._on_open, self._head_start = clock, on_open, head_start
        self._before_seconds = before_seconds
        self._lock = threading.Lock()
        self.opened = threading.Event()  # set once the window is open
        self.snapshots_taken = threading.Event()  # set once every snapshot taken before the window ended
        if not self._first:
            self.snapshots_taken.set()

    def opens(self, index: int) -> bool:
        """Whether step ``index`` opens the window (its request going out is awaited)."""
        return index in self._opening

    def start(self) -> None:
        """Called before any step starts: a template without a window has it open at once."""
        self._complete(set())

    def sent(self, index: int) -> None:
        """Step ``index``'s request is out, or it ended without sending one; no-op for other steps."""
        if index in self._opening:
            self._complete({index})

    def ended(self, index: int) -> None:
        """Step ``index`` ended (recorded or not): a snapshot before the window no longer holds it."""
        with self._lock:
            self._snapshots_left.discard(index)
            if self._snapshots_left:
                return
        self.snapshots_taken.set()

    def release(self) -> None:
        """The capture is over (its steps ended, or its deadline passed): open the window if it
        never opened, whatever is still pending."""
        self.snapshots_taken.set()
        self._complete(set(self._opening))

    def before_step(self, index: int) -> None:
        """Hold a window step until the snapshots before the window are taken (at most
        ``before_seconds``), and a step outside the window until the window is open or the head
        start is over; the snapshots themselves go at once."""
        if index in self._windowed:
            if not self.snapshots_taken.is_set():
                self._clock.wait(self.snapshots_taken, self._before_seconds)
        elif index in self._outside:
            self._clock.wait(self.opened, self._head_start)

    def http_for(self, index: int, gets: SendingGets) -> base.HttpGets:
        """The port-forwards as step ``index`` sees them: an opening step's say when they sent."""
        if index not in self._opening:
            return gets
        return _Announcing(gets, lambda: self.sent(index))

    def _complete(self, done: set[int]) -> None:
        with self._lock:
            self._pending -= done
            if self._pending or self.opened.is_set():
                return
            self.opened.set()
        if self._on_open is not None:
            self._on_open()


class _Announcing:
    """The port-forward pool as an opening step sees it: ``sent`` is called once its request is out."""

    def __init__(self, gets: SendingGets, sent: Callable[[], None]) -> None:
        self._gets, self._sent = gets, sent

    def get(self, path: str, sink: IO[bytes], *, timeout: float, max_bytes: int) -> HttpResult:
        return self._gets.get(path, sink, timeout=timeout, max_bytes=max_bytes, sent=self._sent)
