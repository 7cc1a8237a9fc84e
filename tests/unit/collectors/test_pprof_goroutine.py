"""``pprof-goroutine``: the goroutine dump in the formats asked for.

Cases: by default the profile (debug=0) and the full stacks (debug=2) are stored under their
pprof paths; ``formats`` picks others (debug=1 counts); one format failing keeps the others and
makes the result partial; a program without pprof fails every format with the hint (each error body in a
file of its own).
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.pprof_goroutine import GoroutinesCollector


def test_profile_and_full_stacks_are_stored_by_default(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/goroutine", "goroutine.pb.gz")
    pprof_port.serve("/debug/pprof/goroutine?debug=2", "goroutine-debug2.txt")
    result = GoroutinesCollector().collect(bundle.context(http=pprof_port))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PPROF_GOROUTINE, layout.PPROF_GOROUTINE_DEBUG2))
    assert bundle.files == {layout.PPROF_GOROUTINE: data("go/goroutine.pb.gz"),
                            layout.PPROF_GOROUTINE_DEBUG2: data("go/goroutine-debug2.txt")}
    assert "main.leakWorker" in bundle.text(layout.PPROF_GOROUTINE_DEBUG2)


def test_formats_param_picks_the_counts_by_stack(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/goroutine?debug=1", "goroutine-debug1.txt")
    result = GoroutinesCollector().collect(bundle.context(http=pprof_port, params={"formats": ["debug1"]}))
    assert result.status is base.Status.OK
    assert bundle.files == {layout.PPROF_GOROUTINE_DEBUG1: data("go/goroutine-debug1.txt")}


def test_one_format_failing_keeps_the_other_and_is_partial(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/goroutine", "no-such-profile.txt")
    pprof_port.serve("/debug/pprof/goroutine?debug=2", "goroutine-debug2.txt")
    result = GoroutinesCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.PARTIAL
    assert "/debug/pprof/goroutine answered HTTP 404" in result.message
    assert bundle.files[layout.PPROF_GOROUTINE_DEBUG2] == data("go/goroutine-debug2.txt")
    assert layout.PPROF_GOROUTINE not in bundle.files


def test_program_without_pprof_fails_with_the_hint_for_every_format(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/pprof/goroutine", "no-such-page.txt")
    pprof_port.serve("/debug/pprof/goroutine?debug=2", "no-such-page.txt")
    result = GoroutinesCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.FAILED
    assert 'import _ "net/http/pprof"' in result.message
