"""Rule goroutine-growth: the total grew by at least GROWTH_MIN across snapshots; severity per minute."""

from __future__ import annotations

import dataclasses

import pytest

from debugcap.analysis import goroutines, model
from debugcap.analysis.findings import goroutine_growth, thresholds

from .reports import change, kinds, messages, ownframes_dump, report, the


def _snapshots(first: int, last: int, *, minutes: float | None = None,
               changes: tuple[str, ...] = ("main.grower",)) -> model.Snapshots:
    growth = None if minutes is None else model.HeapGrowth("pprof/snapshots/00", "pprof/snapshots/01", minutes,
                                                           "inuse_space", ())
    return model.Snapshots(
        dirs=("pprof/snapshots/00", "pprof/snapshots/01"), heap_growth=growth,
        goroutine_totals=(model.SnapshotTotal("pprof/snapshots/00", first),
                          model.SnapshotTotal("pprof/snapshots/01", last)),
        goroutine_changes=(change("main.shrinker", 5, 1), *(change(f, 1, 100) for f in changes)))


def test_growth_names_the_group_that_grew() -> None:
    rep = report(snapshots=_snapshots(10, 10 + goroutine_growth.GROWTH_MIN, minutes=0.5))
    assert kinds(rep) == [("goroutine-growth", "main.grower")]
    assert messages(rep) == ["goroutine count grew from 10 to 20 (20/min) across 2 snapshots, most in main.grower"]


@pytest.mark.parametrize(("per_minute", "level"), [(5, "low"), (50, "medium"), (600, "high")])
def test_severity_follows_goroutines_per_minute(per_minute: float, level: str) -> None:
    f = the(report(snapshots=_snapshots(10, 70, minutes=60 / per_minute)), "goroutine-growth")
    assert f.value == pytest.approx(per_minute) and f.unit == "/min"
    assert (f.level, f.severity) == (level, thresholds.BANDS["goroutine-growth"].severity(per_minute))


def test_the_capture_interval_times_snapshots_without_heap_profiles() -> None:
    rep = report(snapshots=_snapshots(10, 70),
                 capture=model.manifest.CaptureInfo("c", "go-leak", {"interval_seconds": 30, "snapshots": 2}))
    assert the(rep, "goroutine-growth").value == pytest.approx(120)


def test_without_times_the_growth_is_low_and_says_so() -> None:
    f = the(report(snapshots=_snapshots(10, 70)), "goroutine-growth")
    assert f.level == "low" and "(no times known for the snapshots)" in f.message


def test_the_group_that_grew_is_named_by_the_applications_function() -> None:
    # Two real dumps of one program (the first the runtime's own, GOTRACEBACK=system): 60 readers in
    # read(2) appear, and the queue on the lock in store.(*Store).Get, outside main, grows from 4 to 50.
    before, after = ownframes_dump("goroutine-sigquit.txt"), ownframes_dump("goroutine-debug2.txt")
    changes = tuple(goroutines.diff_groups(before.summary, after.summary))
    grew = {(c["state"], c["function"]): c["change"] for c in changes if c["change"] > 1}
    # Groups are named by the application's functions, never by the library's frame they wait in.
    assert grew == {("syscall", "main.reader"): 60,
                    ("sync.Mutex.Lock", "debugcap.test/ownframes/store.(*Store).Get"): 46}
    snaps = dataclasses.replace(_snapshots(before.summary["total"], after.summary["total"], minutes=1),
                                goroutine_changes=changes)
    f = the(report(snapshots=snaps), "goroutine-growth")
    assert (f.subject, f.message.rsplit(", ", 1)[-1]) == ("main.reader", "most in main.reader")


def test_a_profiler_group_is_never_the_subject() -> None:
    snaps = _snapshots(10, 300, minutes=1, changes=("net/http/pprof.Profile", "main.grower"))
    assert the(report(snapshots=snaps), "goroutine-growth").subject == "main.grower"


@pytest.mark.parametrize("last", [10, 10 + goroutine_growth.GROWTH_MIN - 1], ids=["flat", "churn"])
def test_small_growth_is_not_a_finding(last: int) -> None:
    assert kinds(report(snapshots=_snapshots(10, last, minutes=1))) == []
