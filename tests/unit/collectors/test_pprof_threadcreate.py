"""``pprof-threadcreate``: the threadcreate profile from ``/debug/pprof/threadcreate``.

Cases: the recorded profile is stored under pprof/threadcreate.pb.gz and is ok; a text answer is
kept but partial; a pprof error answer fails and keeps the body under errors/pprof-threadcreate.txt.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.pprof_threadcreate import ThreadcreateProfileCollector


def test_threadcreate_profile_is_stored_under_the_pprof_path(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/threadcreate", "threadcreate.pb.gz")
    result = ThreadcreateProfileCollector().collect(bundle.context(http=pprof_port))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PPROF_THREADCREATE,))
    assert bundle.files == {layout.PPROF_THREADCREATE: data("go/threadcreate.pb.gz")}
    assert [path for path, _t, _c in pprof_port.gets] == ["/debug/pprof/threadcreate"]


def test_pprof_error_answer_fails_and_keeps_the_body(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/threadcreate", "no-such-profile.txt")
    result = ThreadcreateProfileCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.FAILED
    assert result.message.startswith("/debug/pprof/threadcreate answered HTTP 404: Unknown profile")
    assert bundle.files == {layout.error_path("pprof-threadcreate"): data("go/no-such-profile.txt")}


def test_text_instead_of_a_profile_is_kept_but_partial(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/threadcreate", "goroutine-debug1.txt")
    result = ThreadcreateProfileCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.PARTIAL and "not a valid profile" in result.message
    assert list(bundle.files.values()) == [data("go/goroutine-debug1.txt")]
