"""The profile window without a cluster: :class:`debugcap.capture.window.WindowGate`, and the
capture that uses it, on a fake clock.

Cases for the gate:
- the window opens (``on_open``, once) only when every opening step (CPU profile, trace) sent its request;
- an instant window step (the goroutine dump) does not hold the window;
- a template without a window has it open at start;
- a step outside the window waits for the window to open, and no longer;
- it waits at most the head start when the window is late, and the window is then still not open;
- window steps never wait;
- ``release`` (the capture ended) opens a window that never opened, once;
- an opening step's port-forwards open the window as its request goes out, before it ends.
Cases for a capture: window steps start together, the outside step after the window opened, the
goroutine dump half the shortest window later; ``window_open`` is called once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from io import BytesIO

from debugcap.bundle import manifest
from debugcap.capture import WINDOW_HEAD_START_SECONDS, window
from debugcap.collectors import base

from .conftest import HANG, FakeClock, FakeForwards, Rig, stand_in, step, template

# Template order: outside, CPU profile, goroutine dump, trace.
STEPS = (step("ps"), step("cpu", seconds=10, window="profile"), step("goroutine", window="profile"),
         step("trace", seconds=4, window="profile"))
PS, CPU, GOROUTINE, TRACE = range(4)


class Opened:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def _gate(clock: FakeClock, opened: Opened, steps: tuple[object, ...] = STEPS) -> window.WindowGate:
    gate = window.WindowGate(steps, clock=clock, on_open=opened)  # type: ignore[arg-type]
    gate.start()
    return gate


def _in_thread(fn: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def test_window_opens_once_when_every_opening_request_is_out(clock: FakeClock) -> None:
    opened = Opened()
    gate = _gate(clock, opened)
    gate.sent(CPU)
    assert (opened.calls, gate.opened.is_set()) == (0, False)
    gate.sent(TRACE)
    gate.sent(TRACE)
    gate.release()
    assert (opened.calls, gate.opened.is_set()) == (1, True)


def test_instant_window_step_does_not_hold_the_window(clock: FakeClock) -> None:
    opened = Opened()
    gate = _gate(clock, opened)
    assert (gate.opens(CPU), gate.opens(TRACE), gate.opens(GOROUTINE), gate.opens(PS)) == (True, True, False, False)
    gate.sent(GOROUTINE)
    gate.sent(PS)
    assert opened.calls == 0


def test_template_without_window_is_open_at_start(clock: FakeClock) -> None:
    opened = Opened()
    gate = _gate(clock, opened, (step("ps"), step("disk")))
    assert (opened.calls, gate.opened.is_set()) == (1, True)


def test_outside_step_waits_for_the_window_and_no_longer(clock: FakeClock) -> None:
    gate = _gate(clock, Opened())
    passed = threading.Event()
    waiter = _in_thread(lambda: (gate.before_step(PS), passed.set()))
    clock.until_waiting(1)
    assert not passed.is_set()
    gate.sent(CPU)
    gate.sent(TRACE)
    waiter.join(HANG)
    assert passed.is_set()
    assert clock.now() == 1000.0  # no time had to pass


def test_outside_step_goes_after_the_head_start_when_the_window_is_late(clock: FakeClock) -> None:
    opened = Opened()
    gate = _gate(clock, opened)
    passed = threading.Event()
    waiter = _in_thread(lambda: (gate.before_step(PS), passed.set()))
    clock.until_waiting(1)
    clock.advance(WINDOW_HEAD_START_SECONDS - 0.01)
    assert not passed.is_set()
    clock.advance(0.01)
    waiter.join(HANG)
    assert passed.is_set()
    assert (opened.calls, gate.opened.is_set()) == (0, False)


def test_window_steps_never_wait(clock: FakeClock) -> None:
    gate = _gate(clock, Opened())
    for index in (CPU, GOROUTINE, TRACE):
        _in_thread(lambda index=index: gate.before_step(index)).join(HANG)  # type: ignore[misc]
    assert clock.now() == 1000.0


def test_release_opens_a_window_that_never_opened_once(clock: FakeClock) -> None:
    opened = Opened()
    gate = _gate(clock, opened)
    gate.release()
    gate.sent(CPU)
    gate.sent(TRACE)
    gate.release()
    assert (opened.calls, gate.opened.is_set()) == (1, True)


def test_opening_step_opens_the_window_as_its_request_goes_out(clock: FakeClock) -> None:
    gate = _gate(clock, Opened())
    forwards = FakeForwards()
    gate.sent(TRACE)
    http = gate.http_for(CPU, forwards)
    getting = _in_thread(lambda: http.get("/debug/pprof/profile", BytesIO(), timeout=30, max_bytes=100))
    assert gate.opened.wait(HANG)
    assert getting.is_alive()  # the profile is still being taken: the window is open while it runs
    forwards.release("/debug/pprof/profile")
    getting.join(HANG)
    assert gate.http_for(PS, forwards) is forwards


def test_capture_starts_the_window_together_and_the_rest_after_it(rig: Rig, clock: FakeClock,
                                                                  registry: dict[str, type[base.Collector]]) -> None:
    started: dict[str, float] = {}
    window_open_at_ps: list[bool] = []

    send_cpu = threading.Event()  # the CPU profile's request goes out only when the test says

    def profile(path: str) -> Callable[[base.CollectContext], base.CollectorResult]:
        def behaviour(ctx: base.CollectContext) -> base.CollectorResult:
            started[path] = clock.now() - 1000.0
            assert ctx.http is not None
            assert path != "cpu" or send_cpu.wait(HANG)
            ctx.http.get(path, BytesIO(), timeout=30, max_bytes=100)
            return base.CollectorResult(base.Status.OK)
        return behaviour

    def ps(_ctx: base.CollectContext) -> base.CollectorResult:
        window_open_at_ps.append(rig.window_opened.is_set())
        return base.CollectorResult(base.Status.OK)

    def goroutine(_ctx: base.CollectContext) -> base.CollectorResult:
        started["goroutine"] = clock.now() - 1000.0
        return base.CollectorResult(base.Status.OK)

    stand_in(registry, "ps", ps)
    stand_in(registry, "cpu", profile("cpu"))
    stand_in(registry, "goroutine", goroutine)
    stand_in(registry, "trace", profile("trace"))
    running = rig.start(template(*STEPS))
    clock.until_waiting(3)  # the capture on its deadline, the goroutine dump on its turn, ps on the window
    assert not rig.window_opened.is_set()
    send_cpu.set()
    rig.until_reported("ps")
    assert window_open_at_ps == [True]
    clock.until_waiting(2)  # the capture, the goroutine dump
    clock.advance(2.0)  # half the shortest window (the 4 s trace)
    rig.until_reported("goroutine")
    rig.forwards.release_all()
    outcome = running.result(HANG)
    assert started == {"cpu": 0.0, "trace": 0.0, "goroutine": 2.0}
    assert [(r.name, r.status) for r in outcome.records] == [
        ("ps", manifest.CollectorStatus.OK), ("cpu", manifest.CollectorStatus.OK),
        ("goroutine", manifest.CollectorStatus.OK), ("trace", manifest.CollectorStatus.OK)]
    assert rig.window_calls == 1


# Template order: a heap snapshot, then the STEPS; the heap is a ``before_window`` collector.
SNAPSHOT_STEPS = (step("heap"), *STEPS)
HEAP, S_PS, S_CPU, S_GOROUTINE, S_TRACE = range(5)


def _snapshot_gate(clock: FakeClock, steps: tuple[object, ...] = SNAPSHOT_STEPS) -> window.WindowGate:
    gate = window.WindowGate(steps, clock=clock, on_open=Opened(), before=frozenset({"heap"}))  # type: ignore[arg-type]
    gate.start()
    return gate


def test_window_steps_wait_for_the_snapshots_taken_before_the_window(clock: FakeClock) -> None:
    gate = _snapshot_gate(clock)
    passed: list[int] = []
    waiters = [_in_thread(lambda i=i: (gate.before_step(i), passed.append(i))) for i in (S_CPU, S_GOROUTINE, S_TRACE)]
    _in_thread(lambda: gate.before_step(HEAP)).join(HANG)  # the snapshot itself goes at once
    clock.until_waiting(3)
    assert passed == []
    gate.ended(S_PS)  # a step that is no snapshot does not let the window start
    assert passed == [] and not gate.snapshots_taken.is_set()
    gate.ended(HEAP)
    for w in waiters:
        w.join(HANG)
    assert sorted(passed) == [S_CPU, S_GOROUTINE, S_TRACE]
    assert clock.now() == 1000.0  # no time had to pass


def test_a_hung_snapshot_delays_the_window_by_the_bound_and_no_longer(clock: FakeClock) -> None:
    gate = _snapshot_gate(clock)
    passed = threading.Event()
    waiter = _in_thread(lambda: (gate.before_step(S_CPU), passed.set()))
    clock.until_waiting(1)
    clock.advance(window.BEFORE_WINDOW_SECONDS - 0.01)
    assert not passed.is_set()
    clock.advance(0.01)
    waiter.join(HANG)
    assert passed.is_set()


def test_release_lets_window_steps_go_and_a_template_without_window_takes_no_snapshot_first(clock: FakeClock) -> None:
    gate = _snapshot_gate(clock)
    gate.release()
    _in_thread(lambda: gate.before_step(S_TRACE)).join(HANG)
    assert gate.snapshots_taken.is_set() and clock.now() == 1000.0
    no_window = _snapshot_gate(clock, (step("heap"), step("ps")))
    assert no_window.snapshots_taken.is_set()
    assert window.snapshots_first((step("heap"), step("ps")), frozenset({"heap"})) == frozenset()  # type: ignore[arg-type]


def test_capture_takes_the_heap_before_the_trace_and_cpu_profile_start(
        rig: Rig, clock: FakeClock, registry: dict[str, type[base.Collector]]) -> None:
    order: list[str] = []
    heap_began, heap_may_end = threading.Event(), threading.Event()

    def heap(_ctx: base.CollectContext) -> base.CollectorResult:
        order.append("heap begins")
        heap_began.set()
        assert heap_may_end.wait(HANG)
        order.append("heap ends")
        return base.CollectorResult(base.Status.OK)

    def profile(path: str) -> Callable[[base.CollectContext], base.CollectorResult]:
        def behaviour(ctx: base.CollectContext) -> base.CollectorResult:
            order.append(f"{path} begins")
            assert ctx.http is not None
            ctx.http.get(path, BytesIO(), timeout=30, max_bytes=100)
            return base.CollectorResult(base.Status.OK)
        return behaviour

    def instant(_ctx: base.CollectContext) -> base.CollectorResult:
        return base.CollectorResult(base.Status.OK)

    stand_in(registry, "heap", heap)
    registry["heap"].before_window = True
    stand_in(registry, "ps", instant)
    stand_in(registry, "cpu", profile("cpu"))
    stand_in(registry, "goroutine", instant)
    stand_in(registry, "trace", profile("trace"))
    running = rig.start(template(*SNAPSHOT_STEPS))
    clock.until_waiting(4)  # the deadline, and the three window steps held back by the snapshot
    assert heap_began.wait(HANG)
    assert order == ["heap begins"] and not rig.window_opened.is_set()
    heap_may_end.set()
    assert rig.window_opened.wait(HANG)
    outcome = rig.finish(running)
    assert order[:2] == ["heap begins", "heap ends"]
    assert sorted(order[2:]) == ["cpu begins", "trace begins"]
    assert all(r.status is manifest.CollectorStatus.OK for r in outcome.records)


def test_every_window_step_waits_beside_the_snapshots_however_few_workers_are_asked_for(
        rig: Rig, clock: FakeClock, registry: dict[str, type[base.Collector]]) -> None:
    snapshots_may_end = threading.Event()

    def snapshot(_ctx: base.CollectContext) -> base.CollectorResult:
        assert snapshots_may_end.wait(HANG)
        return base.CollectorResult(base.Status.OK)

    def instant(_ctx: base.CollectContext) -> base.CollectorResult:
        return base.CollectorResult(base.Status.OK)

    for name in ("heap", "allocs"):
        stand_in(registry, name, snapshot)
        registry[name].before_window = True
    for name in ("ps", "cpu", "goroutine", "trace"):
        stand_in(registry, name, instant)
    running = rig.start(template(step("heap"), step("allocs"), *STEPS), parallelism=1)
    # The deadline, and all three window steps held back by the snapshots: none is still queued
    # behind them, waiting for a worker, to start late and apart from the others.
    clock.until_waiting(4)
    snapshots_may_end.set()
    assert rig.window_opened.wait(HANG)
    assert all(r.status is manifest.CollectorStatus.OK for r in rig.finish(running).records)
