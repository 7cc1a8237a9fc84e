"""Rule fd-limit: open descriptors at LIMIT_SHARE of the limit or more; no limit, no finding."""

from __future__ import annotations

import pytest

from .reports import kinds, messages, report


def test_descriptors_near_the_limit_are_a_finding() -> None:
    rep = report(fd_count=950, fd_limit=1024)
    assert kinds(rep) == [("fd-limit", "file descriptors")]
    assert messages(rep) == ["950 open file descriptors, 93% of the limit 1024"]


@pytest.mark.parametrize(("count", "limit"), [(100, 1024), (950, None), (None, 1024)],
                         ids=["far-below", "unlimited", "no-count"])
def test_no_finding_below_the_share_or_without_both_numbers(count: int | None, limit: int | None) -> None:
    assert kinds(report(fd_count=count, fd_limit=limit)) == []
