"""Goroutine dump grouping.

Cases: the real profgen dump (parked group found, counted, suspect); runtime
frames skipped as GOTRACEBACK=system shows them; wait minutes, (scan) and
locked-to-thread headers; gp=/m= headers; elided frames; stack unavailable;
created-by with and without "in goroutine N"; dumps cut mid-line, after a
frame line and at exactly 64 MiB; lines straddling the sniffed head; not a
dump; group diffs.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from debugcap.analysis import goroutines
from debugcap.errors import AnalysisError


def test_real_dump_finds_parked_function_and_marks_it_suspect(profdir: Path) -> None:
    dump = goroutines.load_dump(profdir / "goroutine-debug2.txt")
    first = dump["groups"][0]
    assert (first["state"], first["function"], first["count"]) == ("chan receive", "main.parkedWorker", 120)
    assert first["suspect"] and first["created_by"] == "main.startParked"
    assert dump["total"] == sum(g["count"] for g in dump["groups"])
    assert not dump["truncated"]
    assert [g["function"] for g in goroutines.suspects(dump)] == ["main.parkedWorker"]


def test_snapshot_dumps_diff_by_group(profdir: Path) -> None:
    before = goroutines.load_dump(profdir / "snapshots/00/goroutine-debug2.txt")
    after = goroutines.load_dump(profdir / "snapshots/01/goroutine-debug2.txt")
    changes = goroutines.diff_groups(before, after)
    assert changes[0] == {"state": "chan receive", "function": "main.parkedWorker",
                          "before": 60, "after": 120, "change": 60}


SYSTEM_DUMP = b"""goroutine 1 gp=0xc000002380 m=nil [chan receive, 12 minutes]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
\t/usr/local/go/src/runtime/proc.go:435 +0xce
runtime.chanrecv(0xc000024120, 0x0, 0x1)
\t/usr/local/go/src/runtime/chan.go:664 +0x445
main.worker(...)
\t/app/main.go:10
main.main()
\t/app/main.go:20 +0x25

goroutine 7 gp=0xc000003500 m=nil [chan receive (scan), 3 minutes, locked to thread]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
\t/usr/local/go/src/runtime/proc.go:435 +0xce
main.worker(0xc000024120)
\t/app/main.go:10 +0x1d
...2 frames elided...
created by main.start in goroutine 1
\t/app/main.go:30 +0x3f

goroutine 8 [semacquire]:
sync.runtime_SemacquireMutex(0xc0000a0008, 0x0, 0x1)
\t/usr/local/go/src/runtime/sema.go:95 +0x25
sync.(*Mutex).lockSlow(0xc0000a0000)
\t/usr/local/go/src/sync/mutex.go:173 +0x15d
sync.(*Mutex).Lock(...)
\t/usr/local/go/src/sync/mutex.go:92
main.(*Store).Get(0xc0000a0000, {0x4b2f1e, 0x3})
\t/app/store.go:40 +0x45
created by main.serve
\t/app/main.go:50 +0x3f

goroutine 9 [running]:
\tgoroutine running on other thread; stack unavailable
"""


def test_runtime_frames_are_skipped_and_headers_parsed() -> None:
    dump = goroutines.parse_dump(io.BytesIO(SYSTEM_DUMP))
    groups = {(g["state"], g["function"]): g for g in dump["groups"]}
    assert dump["total"] == 4 and not dump["truncated"]
    worker = groups[("chan receive", "main.worker")]
    assert worker["count"] == 2 and worker["max_wait_minutes"] == 12
    assert worker["created_by"] == "main.start"
    # Linkname shims of the runtime are skipped, the rest of sync is not.
    assert ("semacquire", "sync.(*Mutex).lockSlow") in groups
    assert groups[("semacquire", "sync.(*Mutex).lockSlow")]["created_by"] == "main.serve"
    assert ("running", goroutines.UNAVAILABLE) in groups
    assert not any(g["suspect"] for g in dump["groups"])


def _block(goid: int, func: str = "main.leakWorker") -> bytes:
    return (f"goroutine {goid} [chan receive, 5 minutes]:\n{func}(0xc000012345)\n"
            f"\t/app/leak.go:12 +0x1d\ncreated by main.spawn in goroutine 1\n"
            f"\t/app/leak.go:20 +0x3f\n\n").encode()


def test_group_of_fifty_is_a_suspect_and_forty_nine_is_not() -> None:
    data = b"".join(_block(i) for i in range(50)) + b"".join(_block(100 + i, "main.pool") for i in range(49))
    dump = goroutines.parse_dump(io.BytesIO(data))
    by_func = {g["function"]: g for g in dump["groups"]}
    assert by_func["main.leakWorker"]["suspect"] and by_func["main.leakWorker"]["count"] == 50
    assert not by_func["main.pool"]["suspect"]
    assert dump["groups"][0]["function"] == "main.leakWorker"


def test_stream_reading_keeps_lines_that_straddle_the_sniffed_head(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_bytes(b"".join(_block(i) for i in range(3000)))  # well past the 64 KiB head
    dump = goroutines.load_dump(path)
    assert dump["total"] == 3000 and dump["groups"][0]["count"] == 3000 and not dump["truncated"]


@pytest.mark.parametrize("cut", [-7, -30], ids=["mid-line", "after-frame-line"])
def test_cut_dump_is_reported_truncated(cut: int) -> None:
    data = b"".join(_block(i) for i in range(10)).rstrip(b"\n")
    data = data[:data.rfind(b"\ncreated by")] + b"\n"  # last goroutine ends after its frame's file line
    dump_ok = goroutines.parse_dump(io.BytesIO(data))
    assert not dump_ok["truncated"]
    cut_data = data[:cut]
    dump = goroutines.parse_dump(io.BytesIO(cut_data))
    assert dump["truncated"]


def test_dump_at_go_64mb_limit_is_truncated(tmp_path: Path) -> None:
    block = _block(1)
    n = goroutines.GO_DUMP_LIMIT // len(block) + 1
    data = (block * n)[:goroutines.GO_DUMP_LIMIT]
    path = tmp_path / "big.txt"
    path.write_bytes(data)
    dump = goroutines.load_dump(path)
    assert dump["truncated"] and n - 1 <= dump["total"] <= n


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty file"),
    (gzip.compress(b"x"), "gzip data"),
    (b"404 page not found\n", "not a goroutine\\?debug=2 dump"),
], ids=["empty", "gzip", "text"])
def test_non_dump_is_rejected(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "g.txt"
    path.write_bytes(data)
    with pytest.raises(AnalysisError, match=message):
        goroutines.load_dump(path)
