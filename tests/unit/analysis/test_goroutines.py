"""Goroutine dump grouping, debug=2 and debug=1.

Cases: the real profgen dump (parked group found, counted, suspect); goroutines grouped by the
application frame they wait in (24 queued on a mutex in main.lockedUpdate are one group, not
sync's lockSlow; a sleeper in another function does not join a time.Sleep group), in both formats;
a real debug=1/debug=2 pair of goapp taken at the same moment (same total, same goroutines per
application function); runtime frames skipped as GOTRACEBACK=system shows them; wait minutes, (scan)
and locked-to-thread headers; gp=/m= headers; elided frames; stack unavailable; created-by with and
without "in goroutine N"; debug=1 records without frames, with labels, of goroutineleak; a dump
cut mid-line, after a function line, inside a debug=1 record: "cut", not "truncated", and said so;
exactly 64 MiB: truncated at Go's limit; lines straddling the sniffed head; not a dump; group diffs.
Then real dumps of the ownframes fixture: ``waiting`` counts what the groups count, from the one
parse (debug=2, debug=1, the runtime's GOTRACEBACK=system dump, a pool of pprof handlers); the
system form's file lines keep their files; debug=1 groups are never suspects; a pool of pprof
handlers under the application's middleware is the profiler's, named by its pprof frame.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter
from pathlib import Path

import pytest

from debugcap.analysis import appcode, attribution, goroutines, hints
from debugcap.errors import AnalysisError

GOAPP_DUMPS = Path(__file__).resolve().parents[2] / "fixtures" / "goapp-dumps"


def test_real_dump_finds_parked_function_and_marks_it_suspect(profdir: Path) -> None:
    dump = goroutines.load_dump(profdir / "goroutine-debug2.txt")
    first = dump["groups"][0]
    assert (first["state"], first["function"], first["count"]) == ("chan receive", "main.parkedWorker", 120)
    assert first["suspect"] and first["created_by"] == "main.startParked"
    assert dump["total"] == sum(g["count"] for g in dump["groups"])
    assert not dump["truncated"] and dump["cut"] == "" and dump["format"] == "debug=2"
    assert [g["function"] for g in goroutines.suspects(dump)] == ["main.parkedWorker"]


def test_snapshot_dumps_diff_by_group(profdir: Path) -> None:
    before = goroutines.load_dump(profdir / "snapshots/00/goroutine-debug2.txt")
    after = goroutines.load_dump(profdir / "snapshots/01/goroutine-debug2.txt")
    changes = goroutines.diff_groups(before, after)
    assert changes[0] == {"state": "chan receive", "function": "main.parkedWorker",
                          "before": 60, "after": 120, "change": 60}


def _mutex_waiter(goid: int) -> str:
    # Go 1.26's frames for a goroutine queued on a sync.Mutex, as -trimpath writes them.
    return f"""goroutine {goid} [sync.Mutex.Lock, 2 minutes]:
internal/sync.runtime_SemacquireMutex(0x3d550a8b8e04?, 0x0?, 0x3d550a8b8e00?)
\truntime/sema.go:95 +0x25
internal/sync.(*Mutex).lockSlow(0x3d550a8b8e00)
\tinternal/sync/mutex.go:149 +0x15d
internal/sync.(*Mutex).Lock(...)
\tinternal/sync/mutex.go:70
sync.(*Mutex).Lock(...)
\tsync/mutex.go:46
main.lockedUpdate(...)
\texample.com/shop/store.go:52
main.worker(0x0?)
\texample.com/shop/main.go:60 +0x1e
created by main.start in goroutine 1
\texample.com/shop/main.go:70 +0x3f
"""


def _sleeper(goid: int, function: str) -> str:
    return f"""goroutine {goid} [sleep]:
time.Sleep(0x1e8480)
\truntime/time.go:363 +0x165
{function}(...)
\texample.com/shop/main.go:80
main.worker(0x0?)
\texample.com/shop/main.go:60 +0x1e
created by main.start in goroutine 1
\texample.com/shop/main.go:70 +0x3f
"""


LOCKED_UPDATE = "\n".join([*(_mutex_waiter(10 + i) for i in range(24)), _sleeper(40, "main.lockedUpdate"),
                           *(_sleeper(50 + i, "main.poll") for i in range(3))]).encode()


def test_goroutines_are_grouped_by_the_application_frame_they_wait_in() -> None:
    dump = goroutines.parse_dump(io.BytesIO(LOCKED_UPDATE))
    assert [(g["state"], g["function"], g["count"]) for g in dump["groups"]] == [
        ("sync.Mutex.Lock", "main.lockedUpdate", 24),
        ("sleep", "main.poll", 3),
        ("sleep", "main.lockedUpdate", 1),
    ]
    assert dump["groups"][0]["max_wait_minutes"] == 2 and dump["groups"][0]["created_by"] == "main.start"
    assert dump["total"] == 28


def _debug1_record(count: int, frames: list[tuple[str, str]]) -> str:
    lines = [f"{count} @ " + " ".join(f"0x{0x48924e + i:x}" for i in range(len(frames) + 1))]
    lines += [f"#\t0x{0x68c9ae + i:x}\t{fn}+0x{i + 14:x}\t\t{file}" for i, (fn, file) in enumerate(frames)]
    return "\n".join(lines) + "\n\n"


MUTEX_FRAMES = [("internal/sync.runtime_SemacquireMutex", "runtime/sema.go:95"),
                ("internal/sync.(*Mutex).lockSlow", "internal/sync/mutex.go:149"),
                ("internal/sync.(*Mutex).Lock", "internal/sync/mutex.go:70"),
                ("sync.(*Mutex).Lock", "sync/mutex.go:46"),
                ("main.lockedUpdate", "example.com/shop/store.go:52"),
                ("main.worker", "example.com/shop/main.go:60")]


def _sleep_frames(function: str) -> list[tuple[str, str]]:
    return [("time.Sleep", "runtime/time.go:363"), (function, "example.com/shop/main.go:80"),
            ("main.worker", "example.com/shop/main.go:60")]


LOCKED_UPDATE_DEBUG1 = ("goroutine profile: total 28\n" + _debug1_record(24, MUTEX_FRAMES)
                        + _debug1_record(3, _sleep_frames("main.poll"))
                        + _debug1_record(1, _sleep_frames("main.lockedUpdate"))).encode()


def test_debug1_dump_is_grouped_by_application_frame_with_its_header_total() -> None:
    dump = goroutines.parse_dump(io.BytesIO(LOCKED_UPDATE_DEBUG1))
    assert dump["format"] == "debug=1" and dump["total"] == 28 and dump["cut"] == ""
    # debug=1 has no states: what waits in one function is one group.
    assert [(g["state"], g["function"], g["count"]) for g in dump["groups"]] == [
        ("", "main.lockedUpdate", 25), ("", "main.poll", 3)]


def test_a_real_debug1_dump_counts_what_the_debug2_dump_of_the_same_moment_counts() -> None:
    d2 = goroutines.load_dump(GOAPP_DUMPS / "goroutine-debug2.txt")
    d1 = goroutines.load_dump(GOAPP_DUMPS / "goroutine-debug1.txt")
    assert (d1["format"], d2["format"]) == ("debug=1", "debug=2")
    assert d1["total"] == d2["total"] == sum(g["count"] for g in d1["groups"]) > 10
    assert not d1["cut"] and not d2["cut"]

    def own(dump: goroutines.DumpDict) -> Counter[str]:
        counts: Counter[str] = Counter()
        for g in dump["groups"]:
            if g["function"].startswith("main."):
                counts[g["function"]] += g["count"]
        return counts

    assert own(d1) == own(d2) and own(d1)["main.contendedSection"] >= 2
    # goapp's four contendedSection goroutines fight over one mutex: the queued ones are one group.
    queued = [g for g in d2["groups"] if g["state"] == "sync.Mutex.Lock"]
    assert [g["function"] for g in queued] == ["main.contendedSection"]
    names = {g["function"] for g in d1["groups"] + d2["groups"]}
    assert not names & {"sync.(*Mutex).Lock", "internal/sync.(*Mutex).lockSlow", "time.Sleep"}


def test_debug1_records_without_frames_with_labels_and_of_goroutineleak() -> None:
    data = (b"goroutineleak profile: total 9\n"
            + _debug1_record(8, [("main.orphanedWaiter", "example.com/shop/leak.go:12")]).replace(
                "\n#", "\n# labels: {\"req\":\"a\"}\n#", 1).encode()
            + b"1 @ 0x490a41\n\n")
    dump = goroutines.parse_dump(io.BytesIO(data))
    assert [(g["function"], g["count"], g["leaked"]) for g in dump["groups"]] == [
        ("main.orphanedWaiter", 8, 8), (goroutines.UNAVAILABLE, 1, 1)]
    assert dump["total"] == 9 and not dump["cut"]


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
    assert dump["total"] == 4 and not dump["truncated"] and not dump["cut"]
    worker = groups[("chan receive", "main.worker")]
    assert worker["count"] == 2 and worker["max_wait_minutes"] == 12
    assert worker["created_by"] == "main.start"
    # Absolute paths: the Go root is learned from the runtime's frames, sync is not the program's.
    assert groups[("semacquire", "main.(*Store).Get")]["created_by"] == "main.serve"
    assert ("running", goroutines.UNAVAILABLE) in groups
    assert not any(g["suspect"] for g in dump["groups"])


def test_a_stack_without_own_code_is_named_by_its_first_frame_outside_the_runtime() -> None:
    data = (b"goroutine 3 [IO wait]:\ninternal/poll.runtime_pollWait(0x0?, 0x72)\n\truntime/netpoll.go:351 +0x85\n"
            b"net.(*TCPListener).Accept(0x0?)\n\tnet/tcpsock.go:387 +0x2f\n"
            b"created by net/http.(*Server).Serve in goroutine 1\n\tnet/http/server.go:3464 +0x485\n")
    dump = goroutines.parse_dump(io.BytesIO(data))
    assert dump["groups"][0]["function"] == "net.(*TCPListener).Accept"


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
    assert dump["total"] == 3000 and dump["groups"][0]["count"] == 3000 and not dump["cut"]


@pytest.mark.parametrize("cut", [-7, -30], ids=["mid-line", "after-function-line"])
def test_a_cut_dump_is_cut_not_truncated_and_the_hint_says_so(cut: int) -> None:
    data = b"".join(_block(i) for i in range(10)).rstrip(b"\n")
    data = data[:data.rfind(b"\ncreated by")] + b"\n"  # last goroutine ends after its frame's file line
    whole = goroutines.parse_dump(io.BytesIO(data))
    assert not whole["cut"] and not whole["truncated"]
    dump = goroutines.parse_dump(io.BytesIO(data[:cut]))
    assert not dump["truncated"]
    assert dump["cut"].startswith("the file ends inside goroutine 9's stack, after ")
    (hint,) = hints.dump_hints(dump, "pprof/goroutine-debug2.txt")
    assert "cut short" in hint and "64 MiB" in hint and "not the cause" in hint


def test_a_20_kb_piece_of_a_real_dump_is_cut_and_not_at_gos_limit(profdir: Path) -> None:
    whole = (profdir / "goroutine-debug2.txt").read_bytes()
    # Five bytes into the line that crosses 20 kB: a cut that lands right after a file line's
    # newline looks like a whole dump, and where the lines fall differs from run to run.
    size = whole.rindex(b"\n", 0, 20_000) + 6
    dump = goroutines.parse_dump(io.BytesIO(whole[:size]))
    assert dump["cut"] and not dump["truncated"] and dump["cut"].endswith(f"after {size} bytes")


def test_a_cut_debug1_dump_says_how_many_of_its_goroutines_it_lists() -> None:
    before_last = LOCKED_UPDATE_DEBUG1[:LOCKED_UPDATE_DEBUG1.rindex(b"1 @ ")]
    dump = goroutines.parse_dump(io.BytesIO(before_last))
    assert dump["total"] == 28 and "listed 27 of the 28 goroutines" in dump["cut"] and not dump["truncated"]
    assert hints.dump_hints(dump, "goroutine-debug1.txt")
    inside_last = goroutines.parse_dump(io.BytesIO(LOCKED_UPDATE_DEBUG1[:-20]))
    assert "inside the stack of its last record" in inside_last["cut"]


def test_dump_at_go_64mb_limit_is_truncated(tmp_path: Path) -> None:
    block = _block(1)
    n = goroutines.GO_DUMP_LIMIT // len(block) + 1
    data = (block * n)[:goroutines.GO_DUMP_LIMIT]
    path = tmp_path / "big.txt"
    path.write_bytes(data)
    dump = goroutines.load_dump(path)
    assert dump["truncated"] and n - 1 <= dump["total"] <= n
    (hint,) = hints.dump_hints(dump, "pprof/goroutine-debug2.txt")
    assert "exactly 64 MiB" in hint and "writeGoroutineStacks" in hint


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty file"),
    (gzip.compress(b"x"), "gzip data.*kubectl debugcap top"),
    (b"404 page not found\n", "not a goroutine dump"),
], ids=["empty", "gzip", "text"])
def test_non_dump_is_rejected(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "g.txt"
    path.write_bytes(data)
    with pytest.raises(AnalysisError, match=message):
        goroutines.load_dump(path)


# ---- one parse for the groups and ``waiting``; the states a dump cannot tell; the profiler's pools ----
# Real dumps of the ownframes fixture (tests/fixtures/ownframes-data, see its README).

OWNFRAMES = Path(__file__).resolve().parents[2] / "fixtures" / "ownframes-data"
STORE_GET = "debugcap.test/ownframes/store.(*Store).Get"


def _ownframes(name: str) -> goroutines.Dump:
    if name.endswith(".gz"):
        with gzip.open(OWNFRAMES / name) as fh:
            return goroutines.read_stream(fh, name)
    return goroutines.read_path(OWNFRAMES / name)


def _counts(rows: list[tuple[str, str, int]]) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for state, function, count in rows:
        out[(state, function)] += count
    return out


@pytest.mark.parametrize("name", ["goroutine-debug2.txt", "goroutine-debug1.txt", "goroutine-sigquit.txt",
                                  "goroutine-pprof-pool-debug2.txt.gz"])
def test_waiting_counts_what_the_groups_count_from_the_same_parse(name: str) -> None:
    dump = _ownframes(name)
    groups = _counts([(g["state"], g["function"], g["count"]) for g in dump.summary["groups"]
                      if not appcode.is_profiler(g["function"])])
    waiting = _counts([(w.state, w.function, w.count) for w in attribution.waiting(dump.stacks, dump.code)])
    assert groups == waiting and sum(groups.values()) > 0
    assert sum(s.count for s in dump.stacks) == sum(g["count"] for g in dump.summary["groups"])


def test_a_gotraceback_system_dump_keeps_its_files_so_own_packages_are_known() -> None:
    # The runtime's SIGQUIT dump: "gp= m=" headers, runtime frames, " fp=.. sp=.. pc=.." after each file.
    dump = _ownframes("goroutine-sigquit.txt")
    assert dump.summary["format"] == "debug=2" and not dump.summary["cut"]
    assert dump.code.module == "debugcap.test/ownframes"
    files = {fn: file for st in dump.stacks for fn, file in st.frames}
    assert files[STORE_GET] == "debugcap.test/ownframes/store/store.go"
    assert not any(" fp=" in f or " +0x" in f for f in files.values())
    queued = [w for w in attribution.waiting(dump.stacks, dump.code) if w.state == "sync.Mutex.Lock"]
    # The old second parser lost the files here, so main.worker was named instead of the store's Get.
    assert [(w.function, w.count, w.top, w.own) for w in queued] == [
        (STORE_GET, 4, "internal/sync.(*Mutex).lockSlow", True)]


def test_a_frame_called_at_its_entry_has_only_the_system_forms_tail() -> None:
    data = (b"goroutine 5 gp=0xc000003500 m=nil [chan receive]:\n"
            b"example.com/shop/db.Wait(...)\n\texample.com/shop/db/wait.go:7 fp=0xc0000 sp=0xc0001 pc=0x4a\n"
            b"main.main()\n\texample.com/shop/main.go:9 +0x1d fp=0xc0002 sp=0xc0003 pc=0x4b\n")
    dump = goroutines.read_lines(iter(data.splitlines(keepends=True)))
    assert dump.stacks[0].frames == (("example.com/shop/db.Wait", "example.com/shop/db/wait.go"),
                                     ("main.main", "example.com/shop/main.go"))
    assert dump.summary["groups"][0]["function"] == "example.com/shop/db.Wait"


def test_a_debug1_dump_names_no_suspect_its_states_are_unknown() -> None:
    d1, d2 = _ownframes("goroutine-debug1.txt"), _ownframes("goroutine-debug2.txt")
    groups1 = {g["function"]: g for g in d1.summary["groups"]}
    # 60 goroutines busy in read(2) and 50 queued on a lock: debug=1 cannot tell which is parked.
    assert (groups1["main.reader"]["state"], groups1["main.reader"]["count"]) == ("", 60)
    assert (groups1[STORE_GET]["state"], groups1[STORE_GET]["count"]) == ("", 50)
    assert goroutines.suspects(d1.summary) == []
    # debug=2 of the same moment tells: the readers are in a system call, the lock's queue is parked.
    groups2 = {(g["state"], g["function"]): g for g in d2.summary["groups"]}
    assert not groups2[("syscall", "main.reader")]["suspect"]
    assert [g["function"] for g in goroutines.suspects(d2.summary)] == [STORE_GET]
    # debug=1's waiting has the same functions, in state "" (unknown).
    assert {(w.function, w.count) for w in attribution.waiting(d1.stacks, d1.code) if w.count > 1} == {
        ("main.reader", 60), (STORE_GET, 50)}


def test_a_pool_of_pprof_handlers_under_the_apps_middleware_is_the_profilers_and_no_suspect() -> None:
    # 50 delta-profile requests: each handler goroutine runs under main.countRequests.func1.
    dump = _ownframes("goroutine-pprof-pool-debug2.txt.gz")
    handlers = [g for g in dump.summary["groups"] if g["state"] == "select"]
    assert [(g["function"], g["count"], g["suspect"]) for g in handlers] == [("net/http/pprof.Index", 50, False)]
    assert appcode.is_profiler(handlers[0]["function"])
    names = {g["function"] for g in dump.summary["groups"]}
    assert "main.countRequests.func1" not in names
    assert not any(appcode.is_profiler(g["function"]) for g in goroutines.suspects(dump.summary))
    assert not any(w.function.startswith("net/http/pprof.") for w in attribution.waiting(dump.stacks, dump.code))
