"""Go's ``slices.SortFunc`` (pattern-defeating quicksort), step for step.

Why not ``list.sort``: Go's reader sorts its frontier of threads by the time of their next
event when the earliest one cannot go first, and then tries them in that order. The sort is
not stable, so when several threads' next events have the same time, which one goes first,
and so which one the reader's monotonic clock pushes one nanosecond later, depends on where
pdqsort leaves equal elements. Ported from the Go project's ``src/slices/zsortanyfunc.go`` and
``sort.go`` (Copyright 2022 The Go Authors; BSD-style license, https://go.dev/LICENSE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
Less = Callable[[T, T], bool]

_MAX_INSERTION = 12
_UNKNOWN, _INCREASING, _DECREASING = range(3)
_MASK64 = (1 << 64) - 1


def sort_func(data: list[T], less: Less[T]) -> None:
    """Sort ``data`` in place exactly as Go's ``slices.SortFunc`` with ``cmp(a, b) < 0 == less(a, b)``."""
    n = len(data)
    _pdqsort(data, 0, n, n.bit_length(), less)


def _insertion_sort(data: list[T], a: int, b: int, less: Less[T]) -> None:
    for i in range(a + 1, b):
        j = i
        while j > a and less(data[j], data[j - 1]):
            data[j], data[j - 1] = data[j - 1], data[j]
            j -= 1


def _sift_down(data: list[T], lo: int, hi: int, first: int, less: Less[T]) -> None:
    root = lo
    while True:
        child = 2 * root + 1
        if child >= hi:
            return
        if child + 1 < hi and less(data[first + child], data[first + child + 1]):
            child += 1
        if not less(data[first + root], data[first + child]):
            return
        data[first + root], data[first + child] = data[first + child], data[first + root]
        root = child


def _heap_sort(data: list[T], a: int, b: int, less: Less[T]) -> None:
    first, hi = a, b - a
    for i in range((hi - 1) // 2, -1, -1):
        _sift_down(data, i, hi, first, less)
    for i in range(hi - 1, -1, -1):
        data[first], data[first + i] = data[first + i], data[first]
        _sift_down(data, 0, i, first, less)


def _pdqsort(data: list[T], a: int, b: int, limit: int, less: Less[T]) -> None:
    was_balanced = was_partitioned = True
    while True:
        length = b - a
        if length <= _MAX_INSERTION:
            _insertion_sort(data, a, b, less)
            return
        if limit == 0:
            _heap_sort(data, a, b, less)
            return
        if not was_balanced:
            _break_patterns(data, a, b)
            limit -= 1
        pivot, hint = _choose_pivot(data, a, b, less)
        if hint == _DECREASING:
            data[a:b] = data[a:b][::-1]
            pivot = (b - 1) - (pivot - a)
            hint = _INCREASING
        if was_balanced and was_partitioned and hint == _INCREASING and _partial_insertion_sort(data, a, b, less):
            return
        if a > 0 and not less(data[a - 1], data[pivot]):
            a = _partition_equal(data, a, b, pivot, less)
            continue
        mid, was_partitioned = _partition(data, a, b, pivot, less)
        left, right = mid - a, b - mid
        threshold = length // 8
        if left < right:
            was_balanced = left >= threshold
            _pdqsort(data, a, mid, limit, less)
            a = mid + 1
        else:
            was_balanced = right >= threshold
            _pdqsort(data, mid + 1, b, limit, less)
            b = mid


def _partition(data: list[T], a: int, b: int, pivot: int, less: Less[T]) -> tuple[int, bool]:
    data[a], data[pivot] = data[pivot], data[a]
    i, j = a + 1, b - 1
    while i <= j and less(data[i], data[a]):
        i += 1
    while i <= j and not less(data[j], data[a]):
        j -= 1
    if i > j:
        data[j], data[a] = data[a], data[j]
        return j, True
    data[i], data[j] = data[j], data[i]
    i += 1
    j -= 1
    while True:
        while i <= j and less(data[i], data[a]):
            i += 1
        while i <= j and not less(data[j], data[a]):
            j -= 1
        if i > j:
            break
        data[i], data[j] = data[j], data[i]
        i += 1
        j -= 1
    data[j], data[a] = data[a], data[j]
    return j, False


def _partition_equal(data: list[T], a: int, b: int, pivot: int, less: Less[T]) -> int:
    data[a], data[pivot] = data[pivot], data[a]
    i, j = a + 1, b - 1
    while True:
        while i <= j and not less(data[a], data[i]):
            i += 1
        while i <= j and less(data[a], data[j]):
            j -= 1
        if i > j:
            return i
        data[i], data[j] = data[j], data[i]
        i += 1
        j -= 1


def _partial_insertion_sort(data: list[T], a: int, b: int, less: Less[T]) -> bool:
    max_steps, shortest_shifting = 5, 50
    i = a + 1
    for _ in range(max_steps):
        while i < b and not less(data[i], data[i - 1]):
            i += 1
        if i == b:
            return True
        if b - a < shortest_shifting:
            return False
        data[i], data[i - 1] = data[i - 1], data[i]
        if i - a >= 2:
            for j in range(i - 1, 0, -1):
                if not less(data[j], data[j - 1]):
                    break
                data[j], data[j - 1] = data[j - 1], data[j]
        if b - i >= 2:
            for j in range(i + 1, b):
                if not less(data[j], data[j - 1]):
                    break
                data[j], data[j - 1] = data[j - 1], data[j]
    return False


def _break_patterns(data: list[T], a: int, b: int) -> None:
    length = b - a
    if length < 8:
        return
    random = length
    modulus = 1 << length.bit_length()
    idx = a + (length // 4) * 2 - 1
    while idx <= a + (length // 4) * 2 + 1:
        random ^= (random << 13) & _MASK64
        random ^= random >> 7
        random ^= (random << 17) & _MASK64
        other = random & (modulus - 1)
        if other >= length:
            other -= length
        data[idx], data[a + other] = data[a + other], data[idx]
        idx += 1


def _choose_pivot(data: list[T], a: int, b: int, less: Less[T]) -> tuple[int, int]:
    shortest_ninther, max_swaps = 50, 4 * 3
    n = b - a
    swaps = [0]
    i, j, k = a + n // 4 * 1, a + n // 4 * 2, a + n // 4 * 3
    if n >= 8:
        if n >= shortest_ninther:
            i = _median(data, i - 1, i, i + 1, swaps, less)
            j = _median(data, j - 1, j, j + 1, swaps, less)
            k = _median(data, k - 1, k, k + 1, swaps, less)
        j = _median(data, i, j, k, swaps, less)
    if swaps[0] == 0:
        return j, _INCREASING
    if swaps[0] == max_swaps:
        return j, _DECREASING
    return j, _UNKNOWN


def _order2(data: list[T], a: int, b: int, swaps: list[int], less: Less[T]) -> tuple[int, int]:
    if less(data[b], data[a]):
        swaps[0] += 1
        return b, a
    return a, b


def _median(data: list[T], a: int, b: int, c: int, swaps: list[int], less: Less[T]) -> int:
    a, b = _order2(data, a, b, swaps, less)
    b, c = _order2(data, b, c, swaps, less)
    a, b = _order2(data, a, b, swaps, less)
    return b
