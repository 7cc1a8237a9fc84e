"""Rule goroutine-leak-proven: what Go's goroutineleak profile names outranks every heuristic suspect."""

from __future__ import annotations

from debugcap.analysis import model

from .reports import change, group, kinds, messages, report


def _proven(*groups: tuple[str, int]) -> model.ProvenLeaks:
    return model.ProvenLeaks(source="pprof/goroutineleak.pb.gz", total=sum(c for _f, c in groups),
                             groups=tuple({"function": f, "count": c} for f, c in groups))


def test_a_proven_leak_outranks_a_growing_suspect() -> None:
    snaps = model.Snapshots(dirs=("pprof/snapshots/00", "pprof/snapshots/01"),
                            goroutine_changes=(change("main.grower", 60, 120),))
    rep = report(leak_suspects=(group("main.grower", 120),), snapshots=snaps,
                 proven_leaks=_proven(("main.orphan", 3)))
    assert kinds(rep) == [("goroutine-leak-proven", "main.orphan"), ("goroutine-leak", "main.grower")]
    assert messages(rep)[0] == ("goroutine leak proven by the Go runtime at main.orphan: 3 goroutines blocked "
                                "forever on something no running goroutine can reach (pprof/goroutineleak.pb.gz)")
    assert messages(rep)[1].endswith("not proven by the runtime's leak check: what it waits on is still reachable)")


def test_a_suspect_the_runtime_proved_is_not_repeated() -> None:
    rep = report(leak_suspects=(group("main.orphan", 80),), proven_leaks=_proven(("main.orphan", 80)))
    assert kinds(rep) == [("goroutine-leak-proven", "main.orphan")]


def test_an_empty_leak_profile_gives_no_finding_and_suspects_stay_unproven() -> None:
    rep = report(leak_suspects=(group("main.pool", 80),), proven_leaks=_proven())
    assert kinds(rep) == [("goroutine-leak", "main.pool")]
    assert "still reachable" in messages(rep)[0]


def test_without_a_leak_profile_suspects_read_as_before() -> None:
    rep = report(leak_suspects=(group("main.pool", 80),))
    assert "reachable" not in messages(rep)[0]
