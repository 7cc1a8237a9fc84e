"""``SharedReads``: the reads the pods of one sweep share (issue 17).

Cases: a value is read once while younger than ``max_age`` and read again after; a value read
elsewhere (``put``) answers until it ages, and an older one never replaces a newer; a read that
fails is not kept (the next caller reads again, and meets its own error); callers that ask while
a read is in flight wait for its answer instead of reading too; a waiter whose shared read failed
reads on its own.
"""

from __future__ import annotations

import threading
import time

import pytest

from debugcap.kube.shared_reads import SharedReads


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Reader:
    def __init__(self, *values: object) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        value = self.values.pop(0)
        if isinstance(value, Exception):
            raise value
        return value


def test_value_is_read_once_while_young_and_again_once_old() -> None:
    clock = Clock()
    shared = SharedReads(max_age=5.0, clock=clock)
    read = Reader("first", "second")
    assert shared.get("k", read) == "first"
    clock.now += 4.9
    assert shared.get("k", read) == "first"
    clock.now += 0.1
    assert shared.get("k", read) == "second"
    assert read.calls == 2 and shared.reads == 2


def test_keys_are_read_apart() -> None:
    shared = SharedReads(clock=Clock())
    assert shared.get(("node", "a"), Reader(1)) == 1
    assert shared.get(("node", "b"), Reader(2)) == 2


def test_age_counts_from_before_the_read() -> None:
    clock = Clock()
    shared = SharedReads(max_age=5.0, clock=clock)

    def slow() -> str:
        clock.now += 3.0  # a read that took 3 s stands for the object as of its start
        return "v"

    shared.get("k", slow)
    clock.now += 2.0
    read = Reader("again")
    assert shared.get("k", read) == "again"


def test_put_answers_until_it_ages_and_never_replaces_a_newer_value() -> None:
    clock = Clock()
    shared = SharedReads(max_age=5.0, clock=clock)
    shared.put("pod", "listed", read_at=clock.now - 1.0)
    shared.put("pod", "older", read_at=clock.now - 3.0)
    read = Reader("got")
    assert shared.get("pod", read) == "listed" and read.calls == 0
    clock.now += 4.0
    assert shared.get("pod", read) == "got"


def test_failed_read_is_not_kept() -> None:
    shared = SharedReads(clock=Clock())
    read = Reader(RuntimeError("503"), "ok")
    with pytest.raises(RuntimeError):
        shared.get("k", read)
    assert shared.get("k", read) == "ok" and read.calls == 2


def test_callers_during_a_read_wait_for_its_answer() -> None:
    shared = SharedReads(clock=Clock())
    inside, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def first() -> str:
        calls.append("first")
        inside.set()
        assert release.wait(30)
        return "shared"

    def second() -> str:
        calls.append("second")
        return "own"

    got: list[str] = []
    t1 = threading.Thread(target=lambda: got.append(shared.get("k", first)))
    t1.start()
    assert inside.wait(30)
    t2 = threading.Thread(target=lambda: got.append(shared.get("k", second)))
    t2.start()
    # Without the wait, the second caller reads at once; give it the chance (its absence cannot fail).
    time.sleep(0.2)
    release.set()
    t1.join(30)
    t2.join(30)
    assert calls == ["first"] and got == ["shared", "shared"]


def test_waiter_reads_on_its_own_when_the_shared_read_fails() -> None:
    shared = SharedReads(clock=Clock())
    inside, release = threading.Event(), threading.Event()

    def failing() -> str:
        inside.set()
        assert release.wait(30)
        raise RuntimeError("shared read failed")

    got: list[object] = []

    def first() -> None:
        try:
            shared.get("k", failing)
        except RuntimeError as exc:
            got.append(exc)

    t1 = threading.Thread(target=first)
    t1.start()
    assert inside.wait(30)
    t2 = threading.Thread(target=lambda: got.append(shared.get("k", lambda: "own")))
    t2.start()
    release.set()
    t1.join(30)
    t2.join(30)
    assert "own" in got and any(isinstance(g, RuntimeError) for g in got)


def test_callers_during_a_slow_read_take_its_answer_however_long_it_took() -> None:
    """A read slower than max_age would otherwise send every caller that waited for it to read on
    its own: the herd sharing is there to prevent."""
    clock = Clock()
    shared = SharedReads(max_age=5.0, clock=clock)
    inside, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow() -> str:
        calls.append("shared")
        inside.set()
        assert release.wait(30)
        clock.now += 8.0  # the LIST took 8 s
        return "namespace"

    def own() -> str:
        calls.append("own")
        return "mine"

    got: list[str] = []
    t1 = threading.Thread(target=lambda: got.append(shared.get("k", slow, alone=own)))
    t1.start()
    assert inside.wait(30)
    waiters = [threading.Thread(target=lambda: got.append(shared.get("k", slow, alone=own))) for _ in range(3)]
    for t in waiters:
        t.start()
    time.sleep(0.2)  # let them queue behind the read (their absence cannot fail the test)
    release.set()
    for t in (t1, *waiters):
        t.join(30)
    assert calls == ["shared"] and got == ["namespace"] * 4


def test_a_failed_shared_read_sends_each_caller_to_its_own_narrower_read() -> None:
    shared = SharedReads(clock=Clock())
    assert shared.get("k", Reader(RuntimeError("410 Expired")), alone=lambda: "mine") == "mine"
    with pytest.raises(ValueError):  # the caller's own read fails with its own error
        shared.get("k", Reader(RuntimeError("410")), alone=Reader(ValueError("403")))


def test_a_waiter_on_a_failed_read_never_takes_the_stale_value() -> None:
    clock = Clock()
    shared = SharedReads(max_age=5.0, clock=clock)
    shared.put("k", "stale", read_at=clock.now - 10.0)
    inside, release = threading.Event(), threading.Event()

    def failing() -> str:
        inside.set()
        assert release.wait(30)
        raise RuntimeError("503")

    got: list[object] = []
    t1 = threading.Thread(target=lambda: got.append(shared.get("k", failing, alone=lambda: "own-1")))
    t1.start()
    assert inside.wait(30)
    t2 = threading.Thread(target=lambda: got.append(shared.get("k", failing, alone=lambda: "own-2")))
    t2.start()
    time.sleep(0.2)
    release.set()
    t1.join(30)
    t2.join(30)
    assert sorted(got) == ["own-1", "own-2"]  # type: ignore[type-var]


def test_a_slow_read_does_not_replace_a_newer_value_put_meanwhile() -> None:
    clock = Clock()
    shared = SharedReads(max_age=5.0, clock=clock)

    def slow() -> str:
        clock.now += 1.0
        shared.put("pod", "re-listed", read_at=clock.now)  # the sweep listed the pod again
        return "older"

    assert shared.get("pod", slow) == "older"
    assert shared.get("pod", Reader("never")) == "re-listed"


def test_a_failed_shared_read_is_not_tried_again_by_the_next_callers_for_max_age() -> None:
    """A namespace LIST that fails (times out) would otherwise be paid again by every later pod
    before its own read."""
    clock = Clock()
    shared = SharedReads(max_age=5.0, clock=clock)
    failing = Reader(*[RuntimeError("timeout")] * 3, "namespace")
    got = [shared.get("k", failing, alone=lambda: "mine") for _ in range(4)]
    assert got == ["mine"] * 4 and failing.calls == 1 and shared.reads == 1
    clock.now += 5.0
    assert shared.get("k", failing, alone=lambda: "mine") == "mine" and failing.calls == 2  # tried again
