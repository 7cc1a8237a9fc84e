"""Rule block-delay: the function that waited longest in the block profile, in seconds."""

from __future__ import annotations

from .reports import kinds, messages, report, top


def test_longest_wait_is_named_whatever_the_row_order() -> None:
    rep = report(block=top("nanoseconds", 4 * 10**9, ("main.short", 10**9, 10**9), ("main.long", 3 * 10**9, 3 * 10**9)))
    assert kinds(rep) == [("block-delay", "main.long")]
    assert messages(rep) == ["block delay: main.long waited 3s (75.0% of 4s)"]


def test_empty_block_profile_is_not_a_finding() -> None:
    assert kinds(report(block=top("nanoseconds", 0))) == []
