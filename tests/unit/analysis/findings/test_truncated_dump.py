"""Rule truncated-dump: a goroutine dump cut at Go's 64 MB limit, named by its bundle path."""

from __future__ import annotations

from debugcap.analysis import model

from .reports import kinds, report


def _section(truncated: bool) -> model.GoroutineSection:
    return model.GoroutineSection(source="pprof/snapshots/01/goroutine-debug2.txt", total=5,
                                  truncated=truncated, groups=())


def test_cut_dump_is_a_finding_naming_its_file() -> None:
    assert kinds(report(goroutines=_section(True))) == [
        ("truncated-dump", "pprof/snapshots/01/goroutine-debug2.txt")]


def test_whole_dump_is_not() -> None:
    assert kinds(report(goroutines=_section(False))) == []
