"""``pprof-goroutineleak``: the goroutines Go 1.26's leak-detecting GC proved blocked forever.

Cases, on goapp recorded with and without GOEXPERIMENT=goroutineleakprofile
(``data/record_go_diagnostics.sh``): the index lists the profile, so each asked format is fetched
and stored (the proto names main.orphanedWaiter); an index that does not list it is a clean skip
with the note, and nothing else is asked; no pprof index at all is a skip naming the port; an
unknown format fails before any GET.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import COLLECTORS, base
from debugcap.collectors.pprof_goroutineleak import NOT_SERVED, GoroutineLeakCollector
from debugcap.formats import pprof


def _serve_all(pprof_port) -> None:
    pprof_port.serve("/debug/pprof/", "pprof-index.html")
    pprof_port.serve("/debug/pprof/goroutineleak", "goroutineleak.pb.gz")
    pprof_port.serve("/debug/pprof/goroutineleak?debug=1", "goroutineleak-debug1.txt")
    pprof_port.serve("/debug/pprof/goroutineleak?debug=2", "goroutineleak-debug2.txt")


def test_registered_under_its_name() -> None:
    assert COLLECTORS["pprof-goroutineleak"] is GoroutineLeakCollector


def test_listed_profile_is_fetched_in_each_format(bundle, pprof_port, data) -> None:
    _serve_all(pprof_port)
    ctx = bundle.context(http=pprof_port, params={"formats": ["proto", "debug1", "debug2"]})
    result = GoroutineLeakCollector().collect(ctx)
    files = (layout.PPROF_GOROUTINELEAK, layout.PPROF_GOROUTINELEAK_DEBUG1, layout.PPROF_GOROUTINELEAK_DEBUG2)
    assert result == base.CollectorResult(base.Status.OK, "", files)
    assert bundle.files == {layout.PPROF_GOROUTINELEAK: data("go/goroutineleak.pb.gz"),
                            layout.PPROF_GOROUTINELEAK_DEBUG1: data("go/goroutineleak-debug1.txt"),
                            layout.PPROF_GOROUTINELEAK_DEBUG2: data("go/goroutineleak-debug2.txt")}
    assert [path for path, _t, _c in pprof_port.gets][0] == "/debug/pprof/"
    prof = pprof.parse(bundle.files[layout.PPROF_GOROUTINELEAK], "goroutineleak.pb.gz")
    assert [(t.type, t.unit) for t in prof.sample_types] == [("goroutineleak", "count")]
    assert b"main.orphanedWaiter" in bundle.files[layout.PPROF_GOROUTINELEAK_DEBUG1]
    assert b"(leaked)]:" in bundle.files[layout.PPROF_GOROUTINELEAK_DEBUG2]


def test_default_formats_are_proto_and_debug2(bundle, pprof_port) -> None:
    _serve_all(pprof_port)
    result = GoroutineLeakCollector().collect(bundle.context(http=pprof_port))
    assert result.files == (layout.PPROF_GOROUTINELEAK, layout.PPROF_GOROUTINELEAK_DEBUG2)


def test_a_program_without_the_experiment_is_a_clean_skip(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/pprof/", "pprof-index-nodiag.html")
    # Were it asked, the profile would be pprof's uninformative "Unknown profile" 404.
    pprof_port.serve("/debug/pprof/goroutineleak", "goroutineleak-nodiag.txt")
    result = GoroutineLeakCollector().collect(bundle.context(http=pprof_port))
    assert result == base.CollectorResult(base.Status.SKIPPED, NOT_SERVED)
    assert NOT_SERVED == ("not served by this process (needs Go 1.26 with GOEXPERIMENT=goroutineleakprofile, "
                          "or Go 1.27+)")
    assert [path for path, _t, _c in pprof_port.gets] == ["/debug/pprof/"]
    assert bundle.files == {}


def test_no_pprof_index_is_a_skip_naming_the_port(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/pprof/", "no-such-page.txt")
    result = GoroutineLeakCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.SKIPPED
    assert "HTTP 404 on port 6060" in result.message and bundle.files == {}


def test_unknown_format_fails_before_any_get(bundle, pprof_port) -> None:
    result = GoroutineLeakCollector().collect(bundle.context(http=pprof_port, params={"formats": ["svg"]}))
    assert result.status is base.Status.FAILED and "svg" in result.message
    assert pprof_port.gets == []
