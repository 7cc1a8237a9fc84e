"""Bundle report, HTML and speedscope outputs, readiness hints.

Cases: a full synthetic go-leak bundle (directory and .tar.gz) built from the
real profgen output with two snapshots in which main.parkedWorker goroutines
and main.growingAlloc's heap grow; findings order; every section filled; a
bundle with everything missing; broken and error-body files; empty
block/mutex profiles; a CPU profile shorter than requested; HTML is one file
with no network loads; speedscope JSON structure.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from debugcap.analysis import flamegraph, hints, pprof, profile_proto, report

STEM = "shop_api-7d9f_20261123T160000Z"

PROC_NET_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
""" + "".join(f"   {i}: 0100007F:1F90 0100007F:9C{i:02X} 08 00000000:00000000 00:00000000 "
              "00000000 0 0 1 1\n" for i in range(1, 13))


def _empty_profile(types: list[tuple[str, str]]) -> bytes:
    import gzip

    p = profile_proto.Profile()
    strings = [""]
    for t, u in types:
        strings += [t, u]
        p.sample_type.add(type=len(strings) - 2, unit=len(strings) - 1)
    p.period_type.type, p.period_type.unit = 1, 2
    p.string_table.extend(strings)
    return gzip.compress(p.SerializeToString())


def make_bundle(profdir: Path, root: Path, *, empty_contention: bool = False) -> Path:
    stem = root / STEM
    (stem / "pprof").mkdir(parents=True)
    for name in ("cpu", "heap", "allocs", "goroutine", "block", "mutex", "threadcreate"):
        shutil.copy(profdir / f"{name}.pb.gz", stem / "pprof" / f"{name}.pb.gz")
    shutil.copy(profdir / "goroutine-debug2.txt", stem / "pprof/goroutine-debug2.txt")
    shutil.copytree(profdir / "snapshots", stem / "pprof/snapshots")
    if empty_contention:
        empty = _empty_profile([("contentions", "count"), ("delay", "nanoseconds")])
        (stem / "pprof/block.pb.gz").write_bytes(empty)
        (stem / "pprof/mutex.pb.gz").write_bytes(empty)
    files = {
        "proc/fd-count.txt": "950\n",
        "proc/limits.txt": "Limit                     Soft Limit           Hard Limit           Units\n"
                           "Max open files            1024                 4096                 files\n",
        "fs/df.txt": "Filesystem     1K-blocks    Used Available Use% Mounted on\n"
                     "overlay         10000000 9500000    500000  95% /\n"
                     "tmpfs              65536       0     65536   0% /dev\n",
        "net/proc-net-tcp.txt": PROC_NET_TCP,
        "metrics/expvar.json": json.dumps({"memstats": {"HeapInuse": 5, "HeapAlloc": 4, "NumGC": 3,
                                                        "NextGC": 8, "Sys": 20, "Other": 1}}),
        "errors/trace.txt": "Could not enable tracing: tracing already enabled\n",
        "manifest.json": json.dumps({
            "format_version": 1,
            "capture": {"name": "c1", "template": "go-leak", "parameters": {"cpu_seconds": 30}},
            "target": {"namespace": "shop", "pod": "api-7d9f", "container": "api"},
            "collectors": [{"name": "cpu", "status": "ok", "files": ["pprof/cpu.pb.gz"]},
                           {"name": "trace", "status": "failed", "message": "tracing already enabled"}],
        }),
    }
    for rel, text in files.items():
        (stem / rel).parent.mkdir(parents=True, exist_ok=True)
        (stem / rel).write_text(text)
    return stem


@pytest.fixture(scope="module")
def bundle_dir(profdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(profdir, tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def bundle_tgz(bundle_dir: Path) -> Path:
    out = bundle_dir.parent / f"{STEM}.tar.gz"
    with tarfile.open(out, "w:gz") as tf:
        tf.add(bundle_dir, arcname=STEM)
    return out


def test_go_leak_bundle_puts_the_leaking_function_first(bundle_dir: Path) -> None:
    rep = report.build(bundle_dir)
    kinds = [(f["kind"], f["subject"]) for f in rep["findings"]]
    assert kinds[0] == ("goroutine-leak", "main.parkedWorker")
    assert "grew from 60 to 120" in rep["findings"][0]["message"]
    assert kinds[1] == ("heap-growth", "main.growingAlloc")
    assert kinds[2] == ("goroutine-growth", "main.parkedWorker")
    severities = [f["severity"] for f in rep["findings"]]
    assert severities == sorted(severities, reverse=True)
    # The resource findings are there, each naming its resource.
    assert ("fd-limit", "file descriptors") in kinds
    assert ("disk-full", "/") in kinds
    assert ("close-wait", "sockets") in kinds
    assert ("collector-failed", "trace") in kinds
    assert ("cpu-hot", "main.mixStep") in kinds or ("cpu-hot", "main.hotLoop") in kinds


def test_report_sections_are_filled_from_every_file(bundle_dir: Path) -> None:
    rep = report.build(bundle_dir)
    assert rep["missing"] == []
    assert rep["failed"] == ["trace"]
    assert rep["cpu"]["sample_type"] == "cpu" and rep["cpu"]["rows"]
    assert rep["heap"]["sample_type"] == "inuse_space"
    assert rep["heap"]["rows"][0]["function"] == "main.growingAlloc"
    assert rep["block"]["rows"] and rep["mutex"]["rows"]
    assert rep["leak_suspects"][0]["function"] == "main.parkedWorker"
    assert rep["sockets"] == {"source": "net/proc-net-tcp.txt", "states": {"LISTEN": 1, "CLOSE_WAIT": 12}}
    assert rep["fd_count"] == 950 and rep["fd_limit"] == 1024
    assert rep["disk"][0]["use_pct"] == 95 and rep["disk"][0]["mount"] == "/"
    assert rep["memstats"] == {"HeapInuse": 5, "HeapAlloc": 4, "NumGC": 3, "NextGC": 8, "Sys": 20}
    growth = rep["snapshots"]["heap_growth"]["rows"]
    assert growth[0]["function"] == "main.growingAlloc"
    # 64 new 64 KiB chunks, plus the growth of the slice that holds them.
    assert 64 * (64 << 10) <= growth[0]["growth"] < 65 * (64 << 10)
    assert [g["growth"] for g in growth] == sorted((g["growth"] for g in growth), reverse=True)
    assert rep["errors"]["trace.txt"].startswith("Could not enable tracing")
    assert rep["problems"] == []
    json.dumps(rep)  # JSON-able
    text = report.render_text(rep)
    assert text.index("goroutine leak suspect") < text.index("heap growth")


def test_packed_bundle_gives_the_same_report(bundle_dir: Path, bundle_tgz: Path) -> None:
    a, b = report.build(bundle_dir), report.build(bundle_tgz)
    assert [f["message"] for f in a["findings"]] == [f["message"] for f in b["findings"]]
    assert a["cpu"] == b["cpu"] and a["goroutines"] == b["goroutines"]


def test_socket_states_json_is_preferred(profdir: Path, tmp_path: Path) -> None:
    stem = make_bundle(profdir, tmp_path)
    (stem / "net/socket-states.json").write_text(json.dumps({"ESTABLISHED": 4, "TIME_WAIT": 2}))
    rep = report.build(stem)
    assert rep["sockets"] == {"source": "net/socket-states.json",
                              "states": {"ESTABLISHED": 4, "TIME_WAIT": 2}}


def test_empty_bundle_lists_what_is_missing_and_does_not_crash(tmp_path: Path) -> None:
    (tmp_path / STEM).mkdir()
    rep = report.build(tmp_path / STEM)
    assert set(rep["missing"]) == set(report.EXPECTED_FILES)
    assert rep["findings"] == [] and rep["cpu"] is None and rep["goroutines"] is None
    assert "Missing:" in report.render_text(rep)
    assert "<html>" in report.render_html(rep, [])


def test_only_files_of_collectors_that_ran_count_as_missing(tmp_path: Path) -> None:
    stem = tmp_path / STEM
    stem.mkdir()
    (stem / "manifest.json").write_text(json.dumps({"collectors": [
        {"name": "go-leak-snapshots", "status": "ok", "files": []},
        {"name": "pprof-heap", "status": "failed", "files": []},
    ]}))
    rep = report.build(stem)
    # The heap profile was asked for and is absent; a CPU profile was never asked for.
    assert rep["missing"] == ["pprof/heap.pb.gz"]


def test_broken_files_become_problems_and_hints(profdir: Path, tmp_path: Path) -> None:
    stem = make_bundle(profdir, tmp_path)
    (stem / "pprof/cpu.pb.gz").write_bytes(b"Could not enable CPU profiling: cpu profiling already in use\n")
    (stem / "pprof/heap.pb.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    (stem / "metrics/expvar.json").write_text("{not json")
    (stem / "pprof/goroutine-debug2.txt").write_bytes(b"")
    rep = report.build(stem)
    assert rep["cpu"] is None and rep["heap"] is None and rep["memstats"] is None
    assert any("pprof/heap.pb.gz" in p and "gzip" in p for p in rep["problems"])
    assert any("expvar.json" in p for p in rep["problems"])
    assert any("goroutine-debug2.txt" in p for p in rep["problems"])
    assert any("cpu profiling already in use" in h and "only one can run at once" in h for h in rep["hints"])


def test_empty_block_and_mutex_profiles_explain_the_missing_rates(profdir: Path, tmp_path: Path) -> None:
    rep = report.build(make_bundle(profdir, tmp_path, empty_contention=True))
    text = " ".join(rep["hints"])
    assert "runtime.SetBlockProfileRate" in text and "runtime.SetMutexProfileFraction" in text
    # The real (non-empty) profiles give no such hint.
    real = hints.profile_hints(pprof.load(profdir / "block.pb.gz"), "block", "block.pb.gz")
    assert real == []


def test_short_cpu_profile_is_flagged(profdir: Path) -> None:
    prof = pprof.load(profdir / "cpu.pb.gz")  # ~0.9 s long
    assert any("of the 30s requested" in h for h in hints.profile_hints(prof, "cpu", "cpu", 30))
    assert hints.profile_hints(prof, "cpu", "cpu", 0.9) == []


@pytest.mark.parametrize(("body", "expect"), [
    (b"Could not enable CPU profiling: cpu profiling already in use\n", "only one can run at once"),
    (b"profile duration exceeds server's WriteTimeout\n", "WriteTimeout"),
    (b"404 page not found\n", "net/http/pprof is not registered"),
    (b"something else\n", "holds text, not a profile"),
])
def test_error_bodies_are_explained(body: bytes, expect: str) -> None:
    hint = hints.error_body(body, "pprof/cpu.pb.gz")
    assert hint is not None and expect in hint


def test_real_profile_is_not_an_error_body(profdir: Path) -> None:
    assert hints.error_body((profdir / "cpu.pb.gz").read_bytes(), "cpu") is None


def test_html_is_one_self_contained_file(bundle_dir: Path) -> None:
    flames: list[flamegraph.Flame] = []
    rep = report.build(bundle_dir, flames)
    page = report.render_html(rep, flames)
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(link|img|iframe)\b|<script[^>]+src=", page)
    assert page.count('class="flamebox"') == len(flames) >= 7  # 6 profiles + heap growth diff
    diff = [f for f in flames if f.diff]
    assert len(diff) == 1 and "heap growth" in diff[0].title
    # Every embedded flame is valid JSON and pruned to >= 0.1% of the total.
    for blob in re.findall(r'<script type="application/json">(.*?)</script>', page):
        data = json.loads(blob.replace("<\\/", "</"))
        width = data["root"][1] + data["root"][2]

        def walk(node: list[Any], width: int = width) -> None:
            for child in node[3]:
                assert child[1] + child[2] >= width * flamegraph.MIN_FRACTION
                walk(child)

        walk(data["root"])
    assert "main.parkedWorker" in page and "hover" in page.lower()


def test_flame_tree_prunes_narrow_frames_and_counts_recursion_per_level(profdir: Path) -> None:
    prof = pprof.load(profdir / "cpu.pb.gz")
    fl = flamegraph.profile_flame(prof, "cpu")
    assert fl.root[1] == pprof.total(prof, 1)
    assert sum(c[1] for c in fl.root[3]) <= fl.root[1]


def test_speedscope_export_is_structurally_valid(bundle_dir: Path) -> None:
    profiles: dict[str, pprof.Profile] = {}
    report.build(bundle_dir, None, profiles)
    doc = flamegraph.speedscope(sorted(profiles.items()), name="b", exporter="debugcap@test")
    frames = doc["shared"]["frames"]
    names = [p["name"] for p in doc["profiles"]]
    assert "cpu cpu (nanoseconds)" in names and "heap alloc_space (bytes)" in names
    assert len(doc["profiles"]) >= 12  # every sample type of every profile with data
    for p in doc["profiles"]:
        assert p["type"] == "sampled"
        assert len(p["samples"]) == len(p["weights"]) > 0
        assert all(w > 0 for w in p["weights"])
        assert p["endValue"] - p["startValue"] == sum(p["weights"])
        assert all(0 <= i < len(frames) for s in p["samples"] for i in s)
        assert p["unit"] in {"none", "nanoseconds", "bytes", "microseconds", "milliseconds", "seconds"}
    cpu = next(p for p in doc["profiles"] if p["name"] == "cpu cpu (nanoseconds)")
    # Root first: the leaf (hot function) is at the end, a goroutine entry at the start.
    hot = [s for s in cpu["samples"] if frames[s[-1]]["name"] == "main.mixStep"]
    assert hot and all(frames[s[0]]["name"] != "main.mixStep" for s in hot)


def test_bundle_diff_reports_heap_goroutine_fd_and_socket_changes(profdir: Path, tmp_path: Path) -> None:
    old = make_bundle(profdir, tmp_path / "old")
    new = make_bundle(profdir, tmp_path / "new")
    shutil.copy(profdir / "snapshots/00/heap.pb.gz", old / "pprof/heap.pb.gz")
    shutil.copy(profdir / "snapshots/00/goroutine-debug2.txt", old / "pprof/goroutine-debug2.txt")
    (old / "proc/fd-count.txt").write_text("900\n")
    (old / "net/proc-net-tcp.txt").write_text(PROC_NET_TCP.splitlines(keepends=True)[0]
                                             + PROC_NET_TCP.splitlines(keepends=True)[1])
    d = report.diff_bundles(old, new)
    assert d["heap"]["rows"][0]["function"] == "main.growingAlloc" and d["heap"]["rows"][0]["flat"] > 0
    assert d["goroutines"]["groups"][0]["function"] == "main.parkedWorker"
    assert d["goroutines"]["groups"][0]["change"] == 60
    assert d["fd_count"] == {"before": 900, "after": 950, "change": 50}
    assert d["sockets"]["CLOSE_WAIT"] == {"before": 0, "after": 12, "change": 12}


def test_bundle_diff_refuses_bundles_of_different_pods(profdir: Path, tmp_path: Path) -> None:
    from debugcap.errors import AnalysisError

    old = make_bundle(profdir, tmp_path / "old")
    new = make_bundle(profdir, tmp_path / "new")
    manifest = json.loads((new / "manifest.json").read_text())
    manifest["target"]["pod"] = "other"
    (new / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AnalysisError, match="different pods"):
        report.diff_bundles(old, new)
