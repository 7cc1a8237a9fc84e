"""``pprof-mutex``: the mutex profile from ``/debug/pprof/mutex``.

Cases: the recorded profile is stored under pprof/mutex.pb.gz and is ok (the recorded app never set
the mutex profile rate: its profile is valid but empty, which is still ok); a text answer is kept
but partial; a pprof error answer fails and keeps the body under errors/pprof-mutex.txt.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.pprof_mutex import MutexProfileCollector


def test_mutex_profile_is_stored_under_the_pprof_path(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/mutex", "mutex.pb.gz")
    result = MutexProfileCollector().collect(bundle.context(http=pprof_port))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PPROF_MUTEX,))
    assert bundle.files == {layout.PPROF_MUTEX: data("go/mutex.pb.gz")}
    assert [path for path, _t, _c in pprof_port.gets] == ["/debug/pprof/mutex"]


def test_pprof_error_answer_fails_and_keeps_the_body(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/mutex", "no-such-profile.txt")
    result = MutexProfileCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.FAILED
    assert result.message.startswith("/debug/pprof/mutex answered HTTP 404: Unknown profile")
    assert bundle.files == {layout.error_path("pprof-mutex"): data("go/no-such-profile.txt")}


def test_text_instead_of_a_profile_is_kept_but_partial(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/mutex", "goroutine-debug1.txt")
    result = MutexProfileCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.PARTIAL and "not a valid profile" in result.message
    assert list(bundle.files.values()) == [data("go/goroutine-debug1.txt")]
