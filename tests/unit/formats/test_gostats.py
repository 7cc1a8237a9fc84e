"""The two numbers a trigger reads, parsed from what net/http/pprof and expvar serve."""

from __future__ import annotations

import json

from debugcap.formats import gostats

GOROUTINE_HEAD = (b"goroutine profile: total 5021\n5000 @ 0x43e2ae 0x40a1c5 0x4b2f4d 0x473581\n"
                  b"#\t0x4b2f4c\tmain.leakWorker+0x2c\t/app/main.go:98\n")
HEAP_TAIL = (b"heap profile: 3: 2408448 [10: 4014080] @ heap/1048576\n1: 1048576 [1: 1048576] @ 0x4a\n\n"
             b"# runtime.MemStats\n# Alloc = 133692928\n# TotalAlloc = 199837696\n# Sys = 157627672\n"
             b"# Lookups = 0\n# Mallocs = 1000\n# HeapAlloc = 133692928\n# HeapSys = 146931712\n"
             b"# HeapIdle = 12083200\n# HeapInuse = 134848512\n# HeapReleased = 7716864\n")


def test_goroutine_total_is_the_first_lines_count() -> None:
    assert gostats.goroutine_total(GOROUTINE_HEAD) == 5021
    assert gostats.goroutine_total(GOROUTINE_HEAD[:30]) == 5021  # the first line only, even unterminated


def test_goroutine_total_refuses_other_pages() -> None:
    assert gostats.goroutine_total(b"<html>404 page not found</html>") is None
    assert gostats.goroutine_total(b"goroutine 1 [running]:\nmain.main()\n") is None  # a debug=2 dump
    assert gostats.goroutine_total(b"x\ngoroutine profile: total 7\n") is None  # not on the first line


def test_memory_held_from_expvar_is_sys_minus_released() -> None:
    body = json.dumps({"cmdline": ["/app"], "memstats": {"Sys": 157627672, "HeapReleased": 7716864,
                                                         "PauseNs": [0] * 256}}).encode()
    assert gostats.held_from_expvar(body) == 157627672 - 7716864


def test_expvar_without_memstats_or_with_odd_values_is_none() -> None:
    assert gostats.held_from_expvar(b'{"cmdline": ["/app"]}') is None
    assert gostats.held_from_expvar(b'{"memstats": {"Sys": "157627672", "HeapReleased": 0}}') is None
    assert gostats.held_from_expvar(b'{"memstats": {"Sys": true, "HeapReleased": 0}}') is None
    assert gostats.held_from_expvar(b"not json") is None
    assert gostats.held_from_expvar(b"[" * 100_000) is None  # nested past the parser's depth: no crash
    assert gostats.held_from_expvar(b"[1, 2]") is None


def test_memory_held_from_the_heap_texts_memstats_tail() -> None:
    assert gostats.held_from_heap_text(HEAP_TAIL) == 157627672 - 7716864
    assert gostats.held_from_heap_text(HEAP_TAIL[:HEAP_TAIL.index(b"# HeapReleased")]) is None  # cut short
