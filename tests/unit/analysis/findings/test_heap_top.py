"""Rule heap-top: the function holding the most in-use heap, ranked below every other rule."""

from __future__ import annotations

from .reports import kinds, messages, report, top


def test_largest_holder_is_a_finding() -> None:
    rep = report(heap=top("bytes", 8 << 20, ("main.growingAlloc", 4 << 20, 4 << 20)))
    assert kinds(rep) == [("heap-top", "main.growingAlloc")]
    assert messages(rep) == ["heap: main.growingAlloc holds 4.0MB in use (50.0% of 8.0MB)"]


def test_heap_top_comes_after_cpu_hot() -> None:
    rep = report(heap=top("bytes", 1024, ("main.a", 1024, 1024)), cpu=top("nanoseconds", 10, ("main.b", 10, 10)))
    assert [k for k, _ in kinds(rep)] == ["cpu-hot", "heap-top"]
