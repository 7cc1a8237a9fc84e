"""Stand-ins for the engine's unit tests: no cluster, no wall clock.

``clock``: a :class:`FakeClock` whose time moves only when the test calls ``advance``.
``registry``: a fresh collector registry per test; :func:`stand_in` registers a collector
whose ``collect`` is a test function (it usually waits on ``threading.Event``s the test sets).
``rig``: runs :func:`debugcap.capture.capture` on its own thread with these, so the test can
move the clock and release steps while the capture runs, then read the bundle it wrote.
"""

from __future__ import annotations

import json
import tarfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest

from debugcap import capture, templates
from debugcap.bundle import manifest
from debugcap.collectors import base
from debugcap.kube.portforward import HttpResult
from debugcap.settings import CaptureSettings

# How long a test waits for something that should happen at once before it fails instead of
# hanging; it is never what a test asserts.
HANG = 10.0
STARTED = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
TARGET = base.Target(namespace="prod", pod="api-1", container="app", node="n1", image="img:1")

Behaviour = Callable[[base.CollectContext], base.CollectorResult]


class FakeClock:
    """Monotonic time that moves only with :meth:`advance`; :meth:`wait` ends when its event is
    set or this clock reaches its timeout."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._cond = threading.Condition()
        self._waiting = 0

    def now(self) -> float:
        with self._cond:
            return self._now

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        with self._cond:
            until = None if timeout is None else self._now + timeout
            self._waiting += 1
            self._cond.notify_all()
            try:
                while not event.is_set() and (until is None or self._now < until):
                    # Event.set() cannot notify this condition: look again every millisecond.
                    self._cond.wait(0.001)
                return event.is_set()
            finally:
                self._waiting -= 1
                self._cond.notify_all()

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    def until_waiting(self, n: int) -> None:
        """Return once ``n`` threads wait on this clock (so an ``advance`` now reaches them)."""
        with self._cond:
            assert self._cond.wait_for(lambda: self._waiting >= n, HANG), f"{self._waiting} waiting, not {n}"


class NoKube:
    """The Kubernetes client a stand-in capture must never use."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Must not be called: Kube.{name}")


class FakeForwards:
    """Port-forwards to a pod that answers every GET with ``path``'s name: says ``sent`` and
    writes at once, then holds the answer until ``release(path)`` (or returns at once when
    ``hold`` is False)."""

    def __init__(self, *, hold: bool = True) -> None:
        self._hold = hold
        self._released: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._all_released = False

    def _event(self, path: str) -> threading.Event:
        with self._lock:
            if path not in self._released:
                self._released[path] = threading.Event()
                if self._all_released:
                    self._released[path].set()
            return self._released[path]

    def release(self, path: str) -> None:
        self._event(path).set()

    def release_all(self) -> None:
        with self._lock:
            self._all_released = True
            for event in self._released.values():
                event.set()

    def get(self, path: str, sink: IO[bytes], *, timeout: float, max_bytes: int,
            sent: Callable[[], None] | None = None) -> HttpResult:
        if sent is not None:
            sent()
        sink.write(path.encode())
        if self._hold:
            assert self._event(path).wait(HANG), f"GET {path} never released"
        return HttpResult(status=200, body_bytes=len(path))


def stand_in(registry: dict[str, type[base.Collector]], name: str, behaviour: Behaviour) -> None:
    """Register collector ``name`` whose ``collect`` is ``behaviour``."""

    def collect(_self: base.Collector, ctx: base.CollectContext) -> base.CollectorResult:
        return behaviour(ctx)

    registry[name] = type(f"StandIn_{name}", (base.Collector,), {
        "name": name, "kind": base.Kind.KUBERNETES, "description": "stand-in", "collect": collect})


def writes(path: str, data: bytes = b"evidence\n") -> Behaviour:
    """A collector that adds one file and is done."""

    def behaviour(ctx: base.CollectContext) -> base.CollectorResult:
        ctx.add_bytes(path, data)
        return base.CollectorResult(base.Status.OK)

    return behaviour


def template(*steps: templates.Step) -> templates.ExpandedTemplate:
    return templates.ExpandedTemplate(name="stand-in", description="", parameters={}, steps=steps)


def step(collector: str, *, seconds: float = 0, window: str | None = None) -> templates.Step:
    return templates.Step(collector=collector, params={"seconds": seconds} if seconds else {}, window=window)


class Rig:
    """One stand-in capture at a time, run on its own thread."""

    def __init__(self, tmp_path: Path, clock: FakeClock, registry: dict[str, type[base.Collector]]) -> None:
        self.out_dir, self.clock, self.registry = tmp_path, clock, registry
        self.forwards = FakeForwards()
        self.reported: list[tuple[str, manifest.CollectorRecord | None]] = []
        self.window_opened = threading.Event()
        self.window_calls = 0
        self._reported = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=1)

    def _progress(self, message: str, record: manifest.CollectorRecord | None) -> None:
        with self._reported:
            self.reported.append((message, record))
            self._reported.notify_all()

    def until_reported(self, *names: str) -> None:
        """Return once a record of each collector in ``names`` was reported."""
        with self._reported:
            assert self._reported.wait_for(lambda: set(names) <= {m for m, r in self.reported if r}, HANG), (
                f"{names} not all reported: {self.reported}")

    def _window_open(self) -> None:
        self.window_calls += 1
        self.window_opened.set()

    def start(self, expanded: templates.ExpandedTemplate, *, deadline: float | None = 900.0,
              **kwargs: Any) -> Future[capture.CaptureOutcome]:
        settings = CaptureSettings(capture_timeout_seconds=deadline, durable_bundles=False,
                                   capture_slack_seconds=None if deadline is None else 900.0)
        return self._pool.submit(
            capture.capture, NoKube(), TARGET, expanded, out_dir=self.out_dir, capture_name="cap-1",  # type: ignore[arg-type]
            settings=settings, progress=self._progress, http=self.forwards, started=STARTED,
            window_open=self._window_open, collectors=self.registry, clock=self.clock, **kwargs)

    def run(self, expanded: templates.ExpandedTemplate, **kwargs: Any) -> capture.CaptureOutcome:
        return self.start(expanded, **kwargs).result(HANG)

    def finish(self, running: Future[capture.CaptureOutcome]) -> capture.CaptureOutcome:
        """Release every GET and move the clock on until the capture ends. The mid-window
        goroutine dump waits on the fake clock from when its step begins, which a test cannot
        observe without racing it: counting waiters also counts those about to leave. Moving in
        small steps ends every such wait, whenever it began, and asserts nothing about time."""
        self.forwards.release_all()
        for _ in range(1000):  # 500 s of the fake clock: under the rig's 900 s deadline
            try:
                return running.result(0.01)
            except TimeoutError:
                self.clock.advance(0.5)
        return running.result(HANG)

    def close(self) -> None:
        self.forwards.release_all()
        # A capture a failed test left waiting on the fake clock would keep its (non-daemon)
        # thread, and so pytest, alive: move the clock past any deadline.
        self.clock.advance(10_000)
        self._pool.shutdown(wait=False, cancel_futures=True)


def members(bundle: Path) -> dict[str, bytes]:
    """The bundle's files by bundle path (the stem directory left out)."""
    with tarfile.open(bundle) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers() if m.isfile()}


def manifest_of(bundle: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(members(bundle)["manifest.json"])
    return loaded


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> dict[str, type[base.Collector]]:
    return {}


@pytest.fixture
def rig(tmp_path: Path, clock: FakeClock, registry: dict[str, type[base.Collector]]) -> Iterator[Rig]:
    r = Rig(tmp_path, clock, registry)
    yield r
    r.close()
