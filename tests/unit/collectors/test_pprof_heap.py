"""``pprof-heap``: the heap profile, optionally after a forced GC.

Cases: ``/debug/pprof/heap`` is stored under pprof/heap.pb.gz; ``gc: true`` asks ``?gc=1``; a
text answer is kept but partial.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.pprof_heap import HeapProfileCollector


def test_heap_profile_is_stored_under_the_pprof_path(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/heap", "heap.pb.gz")
    result = HeapProfileCollector().collect(bundle.context(http=pprof_port))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PPROF_HEAP,))
    assert bundle.files == {layout.PPROF_HEAP: data("go/heap.pb.gz")}


def test_gc_true_forces_a_collection_first(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/pprof/heap?gc=1", "heap.pb.gz")
    result = HeapProfileCollector().collect(bundle.context(http=pprof_port, params={"gc": True}))
    assert result.status is base.Status.OK
    assert [path for path, _t, _c in pprof_port.gets] == ["/debug/pprof/heap?gc=1"]


def test_text_instead_of_a_heap_profile_is_partial(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/pprof/heap", "metrics.txt")
    result = HeapProfileCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.PARTIAL and "not a valid profile" in result.message
