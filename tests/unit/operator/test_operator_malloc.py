"""The operator fixes glibc's mmap threshold at start (issue 16: seven concurrent bombs took it to
493-514 MiB of RSS; benchmarks/bench_operator_bombs.py)."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from debugcap.operator import main


class _Mallopt:
    """Stands for ctypes' function object: callable, and takes argtypes and restype."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


class _Libc:
    def __init__(self) -> None:
        self.mallopt = _Mallopt()
        self.calls = self.mallopt.calls


def test_blocks_of_a_mib_or_more_are_mmapped(monkeypatch: pytest.MonkeyPatch) -> None:
    libc = _Libc()
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setattr(ctypes, "CDLL", lambda _name: libc)
    assert main.return_large_blocks_to_the_system() is True
    assert libc.calls == [(-3, 1 << 20)]  # M_MMAP_THRESHOLD, which also ends glibc's raising it


def test_an_explicit_malloc_setting_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    libc = _Libc()
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4194304")
    monkeypatch.setattr(ctypes, "CDLL", lambda _name: libc)
    assert main.return_large_blocks_to_the_system() is False
    assert libc.calls == []


def test_without_glibc_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)

    def no_libc(_name: Any) -> Any:
        raise OSError("no C library to load")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert main.return_large_blocks_to_the_system() is False


def test_on_this_machine_glibc_takes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    if not hasattr(ctypes.CDLL(None), "mallopt"):
        pytest.fail("this test runs where the operator's image runs: a glibc Linux")
    assert main.return_large_blocks_to_the_system() is True
