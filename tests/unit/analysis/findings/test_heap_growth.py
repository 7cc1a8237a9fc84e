"""Rule heap-growth: the application's function whose in-use heap grew most, rated against the limit.

On two real heap profiles of goapp taken 5 s apart, ``main.(*growingCache).add`` grows and the
flight recorder's buffers (as large, but constant) do not count; the severity is the growth per
minute as a share of the memory limit, or in MiB per minute without one.
"""

from __future__ import annotations

import pytest

from debugcap.analysis import attribution, model
from debugcap.analysis.findings import thresholds

from .reports import container, goapp_code, goapp_profile, kinds, messages, report, the


def _growth(*rows: model.HeapGrowthRow, minutes: float = 2.0) -> model.Snapshots:
    return model.Snapshots(dirs=("pprof/snapshots/00", "pprof/snapshots/01"), heap_growth=model.HeapGrowth(
        first="pprof/snapshots/00", last="pprof/snapshots/01", minutes=minutes, sample_type="inuse_space",
        rows=rows))


def _goapp_growth() -> model.Snapshots:
    first, last = goapp_profile("heap-00"), goapp_profile("heap")
    minutes = (last.time_ns - first.time_ns) / 60e9
    return _growth(*attribution.growth(first, last, goapp_code(), minutes), minutes=minutes)


def test_the_growing_cache_is_named_on_real_snapshots() -> None:
    snaps = _goapp_growth()
    assert snaps.heap_growth and snaps.heap_growth.rows[0].function == "main.(*growingCache).add"
    assert all("runtime/trace" not in r.function for r in snaps.heap_growth.rows)
    f = the(report(snapshots=snaps), "heap-growth")
    assert f.subject == "main.(*growingCache).add"
    per_minute = snaps.heap_growth.rows[0].per_minute
    assert per_minute and f.unit == "MiB/min" and f.value == pytest.approx(per_minute / (1 << 20), rel=1e-3)
    assert "no memory limit known" in f.message


@pytest.mark.parametrize(("pct", "level"), [(0.5, "low"), (2, "medium"), (10, "high")])
def test_severity_is_the_growth_per_minute_against_the_memory_limit(pct: float, level: str) -> None:
    snaps = _goapp_growth()
    assert snaps.heap_growth
    limit = int(snaps.heap_growth.rows[0].per_minute or 0) * 100 / pct
    f = the(report(snapshots=snaps, container=container(memory=int(limit))), "heap-growth")
    assert f.unit == "%/min" and f.value == pytest.approx(pct, rel=1e-3)
    assert (f.level, f.severity) == (level, thresholds.BANDS["heap-growth"].severity(pct))


def test_largest_growth_is_named_with_its_rate_and_the_next_ones() -> None:
    rep = report(snapshots=_growth(model.HeapGrowthRow("main.cache", 4 << 20, 2 << 20),
                                   model.HeapGrowthRow("main.buf", 2048, 1024)))
    assert kinds(rep) == [("heap-growth", "main.cache")]
    assert messages(rep) == ["heap growth: main.cache in-use memory grew by 4.0MB (2.0MB/min; no memory limit known) "
                             "from pprof/snapshots/00 to pprof/snapshots/01; next: main.buf +2.0kB"]


def test_growth_without_an_own_frame_says_so() -> None:
    rep = report(snapshots=_growth(model.HeapGrowthRow("runtime.malg", 4 << 20, None, leaf="runtime.malg", own=False)))
    f = the(rep, "heap-growth")
    assert "no frame of the application's own" in f.message and f.value is None and f.level == "low"


def test_snapshots_without_heap_growth_give_no_finding() -> None:
    assert kinds(report(snapshots=_growth())) == []
