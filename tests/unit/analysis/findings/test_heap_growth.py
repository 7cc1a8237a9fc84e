"""Rule heap-growth: the function whose in-use heap grew most between snapshots, with its rate."""

from __future__ import annotations

from debugcap.analysis import model

from .reports import kinds, messages, report


def _growth(*rows: model.HeapGrowthRow) -> model.Snapshots:
    return model.Snapshots(dirs=("pprof/snapshots/00", "pprof/snapshots/01"), heap_growth=model.HeapGrowth(
        first="pprof/snapshots/00", last="pprof/snapshots/01", minutes=2.0, sample_type="inuse_space", rows=rows))


def test_largest_growth_is_named_with_its_rate_and_the_next_ones() -> None:
    rep = report(snapshots=_growth(model.HeapGrowthRow("main.cache", 4 << 20, 2 << 20),
                                   model.HeapGrowthRow("main.buf", 2048, 1024)))
    assert kinds(rep) == [("heap-growth", "main.cache")]
    assert messages(rep) == ["heap growth: main.cache in-use memory grew by 4.0MB (2.0MB/min) "
                             "from pprof/snapshots/00 to pprof/snapshots/01; next: main.buf +2.0kB"]


def test_snapshots_without_heap_growth_give_no_finding() -> None:
    assert kinds(report(snapshots=_growth())) == []
