"""Rule goroutine-growth: the total grew by at least GROWTH_MIN across snapshots, naming where."""

from __future__ import annotations

import pytest

from debugcap.analysis import model
from debugcap.analysis.findings import goroutine_growth

from .reports import change, kinds, messages, report


def _snapshots(first: int, last: int) -> model.Snapshots:
    return model.Snapshots(
        dirs=("pprof/snapshots/00", "pprof/snapshots/01"),
        goroutine_totals=(model.SnapshotTotal("pprof/snapshots/00", first),
                          model.SnapshotTotal("pprof/snapshots/01", last)),
        goroutine_changes=(change("main.shrinker", 5, 1), change("main.grower", 1, 100)))


def test_growth_names_the_group_that_grew() -> None:
    rep = report(snapshots=_snapshots(10, 10 + goroutine_growth.GROWTH_MIN))
    assert kinds(rep) == [("goroutine-growth", "main.grower")]
    assert messages(rep) == ["goroutine count grew from 10 to 20 across 2 snapshots, most in main.grower"]


@pytest.mark.parametrize("last", [10, 10 + goroutine_growth.GROWTH_MIN - 1], ids=["flat", "churn"])
def test_small_growth_is_not_a_finding(last: int) -> None:
    assert kinds(report(snapshots=_snapshots(10, last))) == []
