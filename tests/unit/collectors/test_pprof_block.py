"""``pprof-block``: the block profile from ``/debug/pprof/block``.

Cases: the recorded profile is stored under pprof/block.pb.gz and is ok (the recorded app never set
the block profile rate: its profile is valid but empty, which is still ok); a text answer is kept
but partial; a pprof error answer fails and keeps the body under errors/pprof-block.txt.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.pprof_block import BlockProfileCollector


def test_block_profile_is_stored_under_the_pprof_path(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/block", "block.pb.gz")
    result = BlockProfileCollector().collect(bundle.context(http=pprof_port))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PPROF_BLOCK,))
    assert bundle.files == {layout.PPROF_BLOCK: data("go/block.pb.gz")}
    assert [path for path, _t, _c in pprof_port.gets] == ["/debug/pprof/block"]


def test_pprof_error_answer_fails_and_keeps_the_body(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/block", "no-such-profile.txt")
    result = BlockProfileCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.FAILED
    assert result.message.startswith("/debug/pprof/block answered HTTP 404: Unknown profile")
    assert bundle.files == {layout.error_path("pprof-block"): data("go/no-such-profile.txt")}


def test_text_instead_of_a_profile_is_kept_but_partial(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/block", "goroutine-debug1.txt")
    result = BlockProfileCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.PARTIAL and "not a valid profile" in result.message
    assert list(bundle.files.values()) == [data("go/goroutine-debug1.txt")]
