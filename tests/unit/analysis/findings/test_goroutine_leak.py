"""Rule goroutine-leak: every leak suspect is a finding; one that grew across snapshots ranks first."""

from __future__ import annotations

from debugcap.analysis import goroutines, model

from .reports import change, goapp_dump, goapp_waiting, group, kinds, messages, report, the


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


def test_a_group_keyed_by_a_library_frame_is_named_by_the_applications_function() -> None:
    # Grouped by the first frame outside the runtime, goapp's lock waiters sit in the library's
    # internal/sync.(*Mutex).lockSlow; the real dump's stacks show they run in main.contendedSection.
    suspect = group("internal/sync.(*Mutex).lockSlow", 60, state="sync.Mutex.Lock")
    f = the(report(leak_suspects=(suspect,), waiting=goapp_waiting()), "goroutine-leak")
    assert (f.subject, f.leaf) == ("main.contendedSection", "internal/sync.(*Mutex).lockSlow")
    assert f.message.startswith("goroutine leak suspect at main.contendedSection (parked in "
                                "internal/sync.(*Mutex).lockSlow): 60 goroutines in [sync.Mutex.Lock]")


def test_a_pool_of_the_profilers_own_goroutines_is_not_a_leak() -> None:
    rep = report(leak_suspects=(group("net/http/pprof.Profile", 80, state="select"), group("main.worker", 60)))
    assert kinds(rep) == [("goroutine-leak", "main.worker")]


def test_no_suspects_no_finding() -> None:
    assert kinds(report()) == []
