"""Rule goroutine-leak: every leak suspect is a finding; one that grew across snapshots ranks first.

On real dumps (tests/fixtures/ownframes-data): a suspect named by its own function with the frame it
is parked in; a debug=1 dump's large groups are low and say their state is unknown; a pool of
pprof handlers under the application's middleware is not a leak.
"""

from __future__ import annotations

from debugcap.analysis import appcode, findings, goroutines, model
from debugcap.operator import health

from .reports import change, dump_report, goapp_dump, group, kinds, messages, ownframes_dump, report, the

STORE_GET = "debugcap.test/ownframes/store.(*Store).Get"


def test_parked_group_is_a_leak_suspect_naming_its_creator() -> None:
    rep = report(leak_suspects=(group("main.worker", 120, wait=7),))
    assert kinds(rep) == [("goroutine-leak", "main.worker")]
    assert messages(rep) == ["goroutine leak suspect at main.worker: 120 goroutines in [chan receive], "
                             "parked up to 7 min (created by main.start)"]


def test_suspect_that_grew_across_snapshots_outranks_one_that_did_not() -> None:
    snaps = model.Snapshots(dirs=("pprof/snapshots/00", "pprof/snapshots/01"),
                            goroutine_changes=(change("main.grower", 60, 120),))
    rep = report(leak_suspects=(group("main.pool", 200), group("main.grower", 120)), snapshots=snaps)
    assert kinds(rep) == [("goroutine-leak", "main.grower"), ("goroutine-leak", "main.pool")]
    assert "grew from 60 to 120 across snapshots" in messages(rep)[0]


def test_real_dump_names_the_leaking_function() -> None:
    rep = report(leak_suspects=tuple(goroutines.suspects(goapp_dump())))
    assert kinds(rep) == [("goroutine-leak", "main.leakWorker")]


def test_a_real_suspect_is_named_by_its_own_function_parked_in_the_librarys_frame() -> None:
    # 50 goroutines queued on a lock in store.(*Store).Get, a package of the program outside main.
    rep = dump_report(ownframes_dump("goroutine-debug2.txt"))
    f = the(rep, "goroutine-leak")
    assert (f.subject, f.leaf, f.level) == (STORE_GET, "internal/sync.(*Mutex).lockSlow", "high")
    assert f.message == (f"goroutine leak suspect at {STORE_GET} (parked in internal/sync.(*Mutex).lockSlow): "
                         "50 goroutines in [sync.Mutex.Lock] (created by main.main)")
    # The 60 goroutines busy in read(2) are [syscall]: no suspect.
    assert kinds(rep) == [("goroutine-leak", STORE_GET)]


def test_a_debug1_dump_gives_low_findings_that_say_the_state_is_unknown() -> None:
    # The same moment as debug=1: the busy readers and the lock's queue cannot be told apart.
    rep = dump_report(ownframes_dump("goroutine-debug1.txt"), "pprof/goroutine-debug1.txt")
    leaks = [f for f in findings.evaluate(rep) if f.kind == "goroutine-leak"]
    assert [(f.subject, f.level) for f in leaks] == [("main.reader", "low"), (STORE_GET, "low")]
    assert leaks[0].message == ("60 goroutines at main.reader (in syscall.Syscall), state unknown: debug=1 dump "
                                "(a leak if they are parked, a busy pool if they are not; a debug=2 dump tells which)")
    assert "[]" not in leaks[0].message and "created by unknown" not in leaks[0].message
    assert not any(health.makes_unhealthy(f.kind, f.level) for f in leaks)


def test_a_pool_of_the_profilers_own_goroutines_is_not_a_leak() -> None:
    # 50 pprof handlers serving delta profiles, each under the app's middleware main.countRequests.func1.
    rep = dump_report(ownframes_dump("goroutine-pprof-pool-debug2.txt.gz"))
    subjects = {s for k, s in kinds(rep) if k == "goroutine-leak"}
    assert not any(appcode.is_profiler(s) for s in subjects)
    assert "main.countRequests.func1" not in subjects
    # What is left is net/http's own: a background reader per in-flight request, no frame of the app's.
    assert subjects <= {"internal/poll.(*pollDesc).wait"}


def test_no_suspects_no_finding() -> None:
    assert kinds(report()) == []
