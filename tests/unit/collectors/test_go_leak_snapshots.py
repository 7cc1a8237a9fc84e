"""``go-leak-snapshots``: heap and goroutine snapshots spaced in time.

Time is the stand-in clock of conftest's ``fetch_clock``: nothing waits.
Cases: N snapshots land under pprof/snapshots/00.. with the heap forced through a GC first; the
snapshots are ``interval_seconds`` apart, counted from the first one's start; ``gc: false`` and
``profiles`` change what is asked; one failed snapshot keeps the others and is partial; a
profile failing in every snapshot is recorded, not lost (each error body in a file of its own).
"""

from __future__ import annotations

import pytest

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.go_leak_snapshots import GoLeakSnapshotsCollector

from .conftest import FetchClock


@pytest.fixture
def clock(fetch_clock: FetchClock) -> FetchClock:
    return fetch_clock


def _serve(pprof_port) -> None:
    pprof_port.serve("/debug/pprof/heap?gc=1", "heap.pb.gz")
    pprof_port.serve("/debug/pprof/heap", "heap.pb.gz")
    pprof_port.serve("/debug/pprof/goroutine?debug=2", "goroutine-debug2.txt")
    pprof_port.serve("/debug/pprof/allocs", "allocs.pb.gz")


def test_snapshots_are_stored_under_numbered_directories(bundle, pprof_port, data, clock) -> None:
    _serve(pprof_port)
    result = GoLeakSnapshotsCollector().collect(bundle.context(http=pprof_port, params={"snapshots": 2}))
    paths = ("pprof/snapshots/00/heap.pb.gz", "pprof/snapshots/00/goroutine-debug2.txt",
             "pprof/snapshots/01/heap.pb.gz", "pprof/snapshots/01/goroutine-debug2.txt")
    assert paths[0] == layout.snapshot_path(0, "heap.pb.gz")
    assert result == base.CollectorResult(base.Status.OK, "", paths)
    assert bundle.files[paths[2]] == data("go/heap.pb.gz")
    assert bundle.files[paths[3]] == data("go/goroutine-debug2.txt")
    asked = [path for path, _t, _c in pprof_port.gets]
    assert asked == ["/debug/pprof/heap?gc=1", "/debug/pprof/goroutine?debug=2"] * 2


def test_snapshots_are_interval_apart_counted_from_the_first_start(bundle, pprof_port, clock) -> None:
    _serve(pprof_port)

    class SlowPort:  # each GET takes 2 s of the stand-in clock
        def get(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            clock.now += 2
            return pprof_port.get(*args, **kwargs)

    ctx = bundle.context(http=SlowPort(), params={"snapshots": 3, "interval_seconds": 60})
    GoLeakSnapshotsCollector().collect(ctx)
    assert clock.slept == [56, 56]  # 60 s from the start of one snapshot to the next, not 60 s of waiting
    assert clock.now == 1000 + 60 * 2 + 4


def test_a_late_snapshot_is_followed_an_interval_later_not_at_once(bundle, pprof_port, clock) -> None:
    _serve(pprof_port)
    began: list[float] = []

    class FirstSlowPort:  # the first snapshot's heap takes 7 s of the stand-in clock, longer than the interval
        def get(self, path, *args, **kwargs):  # type: ignore[no-untyped-def]
            if path.startswith("/debug/pprof/heap"):
                began.append(clock.now)
            if not began[1:]:
                clock.now += 7
            return pprof_port.get(path, *args, **kwargs)

    ctx = bundle.context(http=FirstSlowPort(), params={"snapshots": 3, "interval_seconds": 5})
    GoLeakSnapshotsCollector().collect(ctx)
    assert [b - began[0] for b in began] == [0, 14, 19]  # at least 5 s apart, never back to back


def test_a_slow_heap_fetch_does_not_put_two_goroutine_dumps_back_to_back(bundle, pprof_port, clock) -> None:
    _serve(pprof_port)
    asked: dict[str, list[float]] = {"heap": [], "goroutine": []}

    class SlowFirstHeap:  # the first heap fetch (gc=1) takes 7 s of the stand-in clock, longer than the interval
        def get(self, path, *args, **kwargs):  # type: ignore[no-untyped-def]
            kind = "heap" if "heap" in path else "goroutine"
            asked[kind].append(clock.now - 1000)
            if kind == "heap" and len(asked["heap"]) == 1:
                clock.now += 7
            return pprof_port.get(path, *args, **kwargs)

    ctx = bundle.context(http=SlowFirstHeap(), params={"snapshots": 3, "interval_seconds": 5})
    GoLeakSnapshotsCollector().collect(ctx)
    for kind, times in asked.items():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert len(times) == 3 and min(gaps) >= 5, (kind, times)


def test_gc_false_and_profiles_change_what_is_asked(bundle, pprof_port, clock) -> None:
    _serve(pprof_port)
    params = {"snapshots": 1, "gc": False, "profiles": ["heap", "allocs"]}
    result = GoLeakSnapshotsCollector().collect(bundle.context(http=pprof_port, params=params))
    assert result.files == ("pprof/snapshots/00/heap.pb.gz", "pprof/snapshots/00/allocs.pb.gz")
    assert [path for path, _t, _c in pprof_port.gets] == ["/debug/pprof/heap", "/debug/pprof/allocs"]
    assert clock.slept == []


def test_one_failed_snapshot_keeps_the_others_and_is_partial(bundle, pprof_port, clock) -> None:
    pprof_port.serve("/debug/pprof/heap?gc=1", "no-such-profile.txt")
    pprof_port.serve("/debug/pprof/goroutine?debug=2", "goroutine-debug2.txt")
    result = GoLeakSnapshotsCollector().collect(bundle.context(http=pprof_port, params={"snapshots": 1}))
    assert result.status is base.Status.PARTIAL
    assert result.files == (layout.error_path("go-leak-snapshots"), "pprof/snapshots/00/goroutine-debug2.txt")
    assert "/debug/pprof/heap?gc=1 answered HTTP 404" in result.message


def test_a_profile_failing_in_every_snapshot_is_recorded_not_lost(bundle, pprof_port, clock) -> None:
    pprof_port.serve("/debug/pprof/heap?gc=1", "no-such-profile.txt")
    pprof_port.serve("/debug/pprof/goroutine?debug=2", "goroutine-debug2.txt")
    result = GoLeakSnapshotsCollector().collect(bundle.context(http=pprof_port, params={"snapshots": 2}))
    assert result.status is base.Status.PARTIAL
    assert "pprof/snapshots/01/goroutine-debug2.txt" in result.files
