"""Rule mutex-delay: the function whose lock kept others waiting longest; ranks after block-delay."""

from __future__ import annotations

from .reports import kinds, messages, report, top


def test_longest_lock_wait_is_named() -> None:
    rep = report(mutex=top("nanoseconds", 2 * 10**9, ("sync.(*Mutex).Unlock", 2 * 10**9, 2 * 10**9)))
    assert kinds(rep) == [("mutex-delay", "sync.(*Mutex).Unlock")]
    assert messages(rep) == ["mutex delay: sync.(*Mutex).Unlock waited 2s (100.0% of 2s)"]


def test_block_and_mutex_delays_keep_their_order() -> None:
    both = top("nanoseconds", 10**9, ("main.f", 10**9, 10**9))
    assert kinds(report(mutex=both, block=both)) == [("block-delay", "main.f"), ("mutex-delay", "main.f")]
