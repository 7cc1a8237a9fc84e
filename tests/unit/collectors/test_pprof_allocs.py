"""``pprof-allocs``: the allocs profile from ``/debug/pprof/allocs``.

Cases: the recorded profile is stored under pprof/allocs.pb.gz and is ok; a text answer is kept but
partial; a pprof error answer fails and keeps the body under errors/pprof-allocs.txt.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.pprof_allocs import AllocsProfileCollector


def test_allocs_profile_is_stored_under_the_pprof_path(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/allocs", "allocs.pb.gz")
    result = AllocsProfileCollector().collect(bundle.context(http=pprof_port))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PPROF_ALLOCS,))
    assert bundle.files == {layout.PPROF_ALLOCS: data("go/allocs.pb.gz")}
    assert [path for path, _t, _c in pprof_port.gets] == ["/debug/pprof/allocs"]


def test_pprof_error_answer_fails_and_keeps_the_body(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/allocs", "no-such-profile.txt")
    result = AllocsProfileCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.FAILED
    assert result.message.startswith("/debug/pprof/allocs answered HTTP 404: Unknown profile")
    assert bundle.files == {layout.error_path("pprof-allocs"): data("go/no-such-profile.txt")}


def test_text_instead_of_a_profile_is_kept_but_partial(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/allocs", "goroutine-debug1.txt")
    result = AllocsProfileCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.PARTIAL and "not a valid profile" in result.message
    assert list(bundle.files.values()) == [data("go/goroutine-debug1.txt")]
