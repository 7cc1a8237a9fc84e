"""The two numbers a trigger reads, parsed from what net/http/pprof and expvar serve; and the GC
pauses of expvar's memstats (a recorded goapp page, the ring wrapped and not, odd pages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


# A /debug/vars page recorded from the goapp fixture (tests/unit/collectors/data/go): real memstats.
GOAPP_VARS = Path(__file__).resolve().parents[1] / "collectors" / "data" / "go" / "vars.json"


def test_gc_pauses_of_a_real_memstats_are_its_longest_recent_pause_and_its_total() -> None:
    mem = json.loads(GOAPP_VARS.read_bytes())["memstats"]
    pauses = gostats.gc_pauses(mem)
    assert pauses is not None
    assert (pauses.num_gc, pauses.total_ns) == (mem["NumGC"], mem["PauseTotalNs"]) == (3, 254_610)
    assert pauses.recent_cycles == 3 and pauses.recent_max_ns == max(mem["PauseNs"][:3]) == 123_622
    # The ring's unwritten slots are 0, and every pause is in the total.
    assert sum(mem["PauseNs"]) == mem["PauseTotalNs"]


def test_gc_pauses_read_the_whole_ring_once_it_wrapped_and_nothing_before_the_first_cycle() -> None:
    ring = [1_000] * 256
    ring[7] = 9_000_000  # written by cycle 8, or 264, or ...: still among the last 256
    assert gostats.gc_pauses({"NumGC": 300, "PauseTotalNs": 10**9, "PauseNs": ring}) == gostats.GcPauses(
        num_gc=300, total_ns=10**9, recent_max_ns=9_000_000, recent_cycles=256)
    ring = [0] * 256
    ring[3] = 5  # a slot no cycle wrote (NumGC 2) is not read, whatever it holds
    early = gostats.gc_pauses({"NumGC": 2, "PauseTotalNs": 0, "PauseNs": ring})
    assert early is not None and early.recent_max_ns == 0
    none = gostats.gc_pauses({"NumGC": 0, "PauseTotalNs": 0, "PauseNs": [0] * 256})
    assert none is not None and none.recent_max_ns == 0 and none.recent_cycles == 0


@pytest.mark.parametrize("mem", [
    {"NumGC": 3, "PauseTotalNs": 5},  # no ring
    {"NumGC": 3, "PauseTotalNs": 5, "PauseNs": [1] * 255},  # not the runtime's 256
    {"NumGC": "3", "PauseTotalNs": 5, "PauseNs": [1] * 256},
    {"NumGC": 3, "PauseTotalNs": -5, "PauseNs": [1] * 256},
    {"NumGC": 3, "PauseTotalNs": 5, "PauseNs": [True] * 256},
    {"NumGC": 3, "PauseTotalNs": 5, "PauseNs": [1.5] * 256},
])
def test_gc_pauses_of_odd_memstats_are_none(mem: dict[str, object]) -> None:
    assert gostats.gc_pauses(mem) is None
