"""Bundle report, HTML and speedscope outputs, readiness hints, bundle diff.

Cases: a full synthetic go-leak bundle (directory and .tar.gz) built from the
real profgen output with two snapshots in which main.parkedWorker goroutines
and main.growingAlloc's heap grow, and a CPU profile with fixed samples (so no
finding depends on how busy the machine was); findings order; every section
filled; the JSON shape; a bundle with everything missing; a damaged manifest;
broken and error-body files; empty block/mutex profiles; a CPU profile shorter
than requested; HTML is one file with no network loads; speedscope JSON structure. Then goapp's
real profiles: findings name its functions; pod YAML of unexpected shapes (a list for a spec, strings
for containers, a start time without a zone) never crashes the report; a bundle with only a debug=1
dump has no high leak suspect; each goroutine dump is parsed once.
"""

from __future__ import annotations

import gzip
import html as htmllib
import json
import re
import shutil
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from debugcap.analysis import appcode, flames, goroutines, hints, model, pprof, report, sections
from debugcap.analysis.rendering import html, speedscope, text
from debugcap.bundle import manifest
from debugcap.formats import pprof as pprof_format
from debugcap.formats import pprof_proto

STEM = "shop_api-7d9f_20261123T160000Z"

PROC_NET_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
""" + "".join(f"   {i}: 0100007F:1F90 0100007F:9C{i:02X} 08 00000000:00000000 00:00000000 "
              "00000000 0 0 1 1\n" for i in range(1, 13))

# (stack leaf first, samples): main.mixStep is the hottest function by construction.
CPU_SAMPLES = [
    (["main.mixStep", "main.hotLoop", "main.main", "runtime.goexit"], 70),
    (["main.hotLoop", "main.main", "runtime.goexit"], 20),
    (["main.main", "runtime.goexit"], 10),
]
CPU_PERIOD_NS = 10_000_000


def _empty_profile(types: list[tuple[str, str]]) -> bytes:
    p = pprof_proto.Profile()
    strings = [""]
    for t, u in types:
        strings += [t, u]
        p.sample_type.add(type=len(strings) - 2, unit=len(strings) - 1)
    p.period_type.type, p.period_type.unit = 1, 2
    p.string_table.extend(strings)
    return gzip.compress(p.SerializeToString())


def fixed_cpu_profile(seconds: int = 1) -> bytes:
    """A Go-shaped CPU profile (samples/count, cpu/nanoseconds) whose values never vary."""
    p = pprof_proto.Profile()
    strings = ["", "samples", "count", "cpu", "nanoseconds", "main.go"]
    p.sample_type.add(type=1, unit=2)
    p.sample_type.add(type=3, unit=4)
    p.period_type.type, p.period_type.unit = 3, 4
    p.period = CPU_PERIOD_NS
    p.duration_nanos = seconds * 10**9
    p.time_nanos = 1_795_000_000 * 10**9
    ids: dict[str, int] = {}
    for stack, _ in CPU_SAMPLES:
        for name in stack:
            if name not in ids:
                ids[name] = len(ids) + 1
                strings.append(name)
                p.function.add(id=ids[name], name=len(strings) - 1, filename=5)
                p.location.add(id=ids[name]).line.add(function_id=ids[name], line=ids[name])
    for stack, count in CPU_SAMPLES:
        p.sample.add(location_id=[ids[n] for n in stack], value=[count, count * CPU_PERIOD_NS])
    p.string_table.extend(strings)
    return gzip.compress(p.SerializeToString())


def write_manifest(stem: Path, collectors: list[manifest.CollectorRecord], *, pod: str = "api-7d9f",
                   when: datetime = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)) -> None:
    """A manifest as the bundle writer writes it, with the given collector records."""
    fields = manifest.ManifestFields(
        capture=manifest.CaptureInfo(name="c1", template="go-leak", parameters={"cpu_seconds": 30}),
        target=manifest.TargetInfo(namespace="shop", pod=pod, container="api"),
        started_at=when, finished_at=when, collectors=tuple(collectors))
    (stem / "manifest.json").write_text(manifest.Manifest.build(fields, files={}).to_json())


def _record(name: str, status: str, message: str = "", files: tuple[str, ...] = ()) -> manifest.CollectorRecord:
    return manifest.CollectorRecord(name=name, status=manifest.CollectorStatus(status), duration_ms=1,
                                    message=message, files=files)


def make_bundle(profdir: Path, root: Path, *, empty_contention: bool = False) -> Path:
    stem = root / STEM
    (stem / "pprof").mkdir(parents=True)
    for name in ("heap", "allocs", "goroutine", "block", "mutex", "threadcreate"):
        shutil.copy(profdir / f"{name}.pb.gz", stem / "pprof" / f"{name}.pb.gz")
    (stem / "pprof/cpu.pb.gz").write_bytes(fixed_cpu_profile())
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
    }
    for rel, content in files.items():
        (stem / rel).parent.mkdir(parents=True, exist_ok=True)
        (stem / rel).write_text(content)
    write_manifest(stem, [_record("cpu", "ok", files=("pprof/cpu.pb.gz",)),
                          _record("trace", "failed", "tracing already enabled")])
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
    kinds = [(f.kind, f.subject) for f in rep.findings]
    assert kinds[0] == ("goroutine-leak", "main.parkedWorker")
    assert "grew from 60 to 120" in rep.findings[0].message
    assert kinds[1] == ("heap-growth", "main.growingAlloc")
    assert kinds[2] == ("goroutine-growth", "main.parkedWorker")
    severities = [f.severity for f in rep.findings]
    assert severities == sorted(severities, reverse=True)
    # The resource findings are there, each naming its resource, and the profile tops last.
    assert ("fd-limit", "file descriptors") in kinds
    assert ("disk-full", "/") in kinds
    assert ("close-wait", "sockets") in kinds
    assert ("collector-failed", "trace") in kinds
    assert kinds[-2:] == [("cpu-hot", "main.mixStep"), ("heap-top", "main.growingAlloc")]


def test_report_sections_are_filled_from_every_file(bundle_dir: Path) -> None:
    rep = report.build(bundle_dir)
    assert rep.missing == ()
    assert rep.failed == ("trace",)
    assert rep.cpu is not None and rep.cpu["sample_type"] == "cpu"
    assert [(r["function"], r["flat"]) for r in rep.cpu["rows"]][:2] == [
        ("main.mixStep", 70 * CPU_PERIOD_NS), ("main.hotLoop", 20 * CPU_PERIOD_NS)]
    assert rep.heap is not None and rep.heap["sample_type"] == "inuse_space"
    assert rep.heap["rows"][0]["function"] == "main.growingAlloc"
    assert rep.block and rep.block["rows"] and rep.mutex and rep.mutex["rows"]
    assert rep.leak_suspects[0]["function"] == "main.parkedWorker"
    assert rep.sockets is not None and rep.sockets.source == "net/proc-net-tcp.txt"
    assert rep.sockets.states == {"LISTEN": 1, "CLOSE_WAIT": 12}
    assert rep.fd_count == 950 and rep.fd_limit == 1024
    assert rep.disk is not None and rep.disk[0].use_pct == 95 and rep.disk[0].mount == "/"
    assert rep.memstats == {"HeapInuse": 5, "HeapAlloc": 4, "NumGC": 3, "NextGC": 8, "Sys": 20}
    assert rep.snapshots is not None and rep.snapshots.heap_growth is not None
    growth = rep.snapshots.heap_growth.rows
    assert growth[0].function == "main.growingAlloc"
    # 64 new 64 KiB chunks, plus the growth of the slice that holds them.
    assert 64 * (64 << 10) <= growth[0].growth < 65 * (64 << 10)
    assert [g.growth for g in growth] == sorted((g.growth for g in growth), reverse=True)
    assert rep.errors["trace.txt"].startswith("Could not enable tracing")
    assert rep.problems == ()
    out = text.render_report(rep)
    assert out.index("goroutine leak suspect") < out.index("heap growth")


GOAPP_VARS = Path(__file__).resolve().parents[1] / "collectors" / "data" / "go" / "vars.json"


def test_gc_pauses_are_read_from_expvars_memstats(profdir: Path, tmp_path: Path) -> None:
    stem = make_bundle(profdir, tmp_path)
    assert report.build(stem).gc_pauses is None  # these memstats have no PauseNs
    assert "GC pauses" not in text.render_report(report.build(stem))
    shutil.copy(GOAPP_VARS, stem / "metrics/expvar.json")  # recorded from the goapp: 3 cycles
    rep = report.build(stem)
    assert rep.gc_pauses is not None and (rep.gc_pauses.recent_max_ns, rep.gc_pauses.total_ns) == (123_622, 254_610)
    assert "\nGC pauses: longest 124us in the last 3 cycles; 255us in all 3 cycles (memstats)\n" in \
        text.render_report(rep)
    assert "GC pauses" in html.render_report(rep, [])
    assert json.loads(json.dumps(rep.as_dict()))["gc_pauses"] == {"num_gc": 3, "total_ns": 254_610,
                                                                  "recent_max_ns": 123_622, "recent_cycles": 3}


def test_report_json_keeps_its_keys_and_shapes(bundle_dir: Path) -> None:
    doc = json.loads(json.dumps(report.build(bundle_dir).as_dict()))
    assert list(doc) == ["bundle", "target", "capture", "collectors", "failed", "missing", "errors", "cpu",
                         "heap", "block", "mutex", "snapshots", "goroutines", "leak_suspects", "proven_leaks",
                         "runtime", "sockets", "fd_count", "fd_limit", "disk", "memstats", "attribution",
                         "waiting", "container", "trace", "gc_pauses", "findings", "hints", "problems",
                         "notes"]
    assert doc["target"] == {"namespace": "shop", "pod": "api-7d9f", "container": "api", "node": None,
                             "image": None}
    assert doc["capture"] == {"name": "c1", "template": "go-leak", "parameters": {"cpu_seconds": 30}}
    assert doc["collectors"][1] == {"name": "trace", "status": "failed", "message": "tracing already enabled",
                                    "files": []}
    assert doc["failed"] == ["trace"]
    assert list(doc["snapshots"]) == ["count", "dirs", "heap_growth", "goroutine_totals", "goroutine_changes"]
    assert doc["snapshots"]["dirs"] == ["pprof/snapshots/00", "pprof/snapshots/01"]
    assert list(doc["snapshots"]["heap_growth"]) == ["from", "to", "minutes", "sample_type", "rows"]
    assert list(doc["snapshots"]["heap_growth"]["rows"][0]) == ["function", "growth", "per_minute", "leaf", "own"]
    assert doc["snapshots"]["goroutine_totals"] == [{"snapshot": "pprof/snapshots/00", "total": 61},
                                                    {"snapshot": "pprof/snapshots/01", "total": 121}]
    assert list(doc["goroutines"]) == ["source", "total", "truncated", "groups"]
    assert doc["sockets"] == {"source": "net/proc-net-tcp.txt", "states": {"LISTEN": 1, "CLOSE_WAIT": 12}}
    assert doc["disk"][0] == {"filesystem": "overlay", "size": "10000000", "used": "9500000",
                              "available": "500000", "use_pct": 95, "mount": "/"}
    assert doc["findings"][0] == {"severity": 100, "level": "high", "kind": "goroutine-leak",
                                  "subject": "main.parkedWorker", "message": doc["findings"][0]["message"],
                                  "leaf": "", "value": None, "unit": ""}
    assert list(doc["attribution"]) == ["cpu", "heap", "block", "mutex"]
    assert list(doc["attribution"]["cpu"]) == ["sample_type", "unit", "total", "duration_ns", "time_ns", "profiler",
                                               "profiler_leaf", "rows"]
    assert doc["attribution"]["cpu"]["rows"][0] == {"function": "main.mixStep", "value": 70 * CPU_PERIOD_NS,
                                                    "leaf": "main.mixStep", "own": True}
    assert doc["container"] is None  # no pod YAML in this bundle
    assert list(doc["cpu"]) == ["sample_type", "unit", "total", "duration_ns", "rows"]


def test_packed_bundle_gives_the_same_report(bundle_dir: Path, bundle_tgz: Path) -> None:
    a, b = report.build(bundle_dir), report.build(bundle_tgz)
    assert [f.message for f in a.findings] == [f.message for f in b.findings]
    assert a.cpu == b.cpu and a.goroutines == b.goroutines


def test_socket_states_json_is_preferred(profdir: Path, tmp_path: Path) -> None:
    stem = make_bundle(profdir, tmp_path)
    (stem / "net/socket-states.json").write_text(json.dumps({"ESTABLISHED": 4, "TIME_WAIT": 2}))
    rep = report.build(stem)
    assert rep.sockets is not None and rep.sockets.source == "net/socket-states.json"
    assert rep.sockets.states == {"ESTABLISHED": 4, "TIME_WAIT": 2}


def test_empty_bundle_lists_what_is_missing_and_does_not_crash(tmp_path: Path) -> None:
    (tmp_path / STEM).mkdir()
    rep = report.build(tmp_path / STEM)
    assert set(rep.missing) == set(sections.EXPECTED_FILES)
    assert rep.findings == () and rep.cpu is None and rep.goroutines is None
    assert rep.as_dict()["target"] == {} and rep.as_dict()["capture"] == {}
    assert "Missing:" in text.render_report(rep) and "nothing stands out" in text.render_report(rep)
    assert "<html>" in html.render_report(rep, [])


def test_damaged_manifest_is_a_problem_and_the_rest_is_still_read(profdir: Path, tmp_path: Path) -> None:
    stem = make_bundle(profdir, tmp_path)
    (stem / "manifest.json").write_text(json.dumps({"collectors": []}))
    rep = report.build(stem)
    assert rep.target is None and rep.collectors == ()
    assert any("manifest.json" in p and "format_version" in p for p in rep.problems)
    assert rep.findings[0].kind == "goroutine-leak"


def test_only_files_of_collectors_that_ran_count_as_missing(tmp_path: Path) -> None:
    stem = tmp_path / STEM
    stem.mkdir()
    write_manifest(stem, [_record("go-leak-snapshots", "ok"), _record("pprof-heap", "failed"),
                          _record("pprof-cpu", "skipped")])
    rep = report.build(stem)
    # The heap profile was asked for and is absent; a CPU profile was never asked for, or was left
    # out (a memory trigger's capture skips it, saying why).
    assert rep.missing == ("pprof/heap.pb.gz",)


def test_broken_files_become_problems_and_hints(profdir: Path, tmp_path: Path) -> None:
    stem = make_bundle(profdir, tmp_path)
    (stem / "pprof/cpu.pb.gz").write_bytes(b"Could not enable CPU profiling: cpu profiling already in use\n")
    (stem / "pprof/heap.pb.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    (stem / "metrics/expvar.json").write_text("{not json")
    (stem / "pprof/goroutine-debug2.txt").write_bytes(b"")
    rep = report.build(stem)
    assert rep.cpu is None and rep.heap is None and rep.memstats is None
    assert any("pprof/heap.pb.gz" in p and "gzip" in p for p in rep.problems)
    assert any("expvar.json" in p for p in rep.problems)
    assert any("goroutine-debug2.txt" in p for p in rep.problems)
    assert any("cpu profiling already in use" in h and "only one can run at once" in h for h in rep.hints)


def test_empty_block_and_mutex_profiles_explain_the_missing_rates(profdir: Path, tmp_path: Path) -> None:
    rep = report.build(make_bundle(profdir, tmp_path, empty_contention=True))
    joined = " ".join(rep.hints)
    assert "runtime.SetBlockProfileRate" in joined and "runtime.SetMutexProfileFraction" in joined
    # The real (non-empty) profiles give no such hint.
    real = hints.profile_hints(pprof_format.load(profdir / "block.pb.gz"), "block", "block.pb.gz")
    assert real == []


def test_short_cpu_profile_is_flagged() -> None:
    prof = pprof_format.parse(fixed_cpu_profile(seconds=1), "cpu")
    assert any("covers 1.0s of the 30s requested" in h for h in hints.profile_hints(prof, "cpu", "cpu", 30))
    assert hints.profile_hints(prof, "cpu", "cpu", 1) == []


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
    graphs: list[flames.Flame] = []
    rep = report.build(bundle_dir, flame_graphs=graphs)
    page = html.render_report(rep, graphs)
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(link|img|iframe)\b|<script[^>]+src=", page)
    assert page.count('class="flamebox"') == len(graphs) >= 7  # 6 profiles + heap growth diff
    # The script and style are the package's asset files, inlined.
    assert "document.querySelectorAll('.flamebox')" in page and ".flame div.dim" in page
    diff = [f for f in graphs if f.diff]
    assert len(diff) == 1 and "heap growth" in diff[0].title
    # Every embedded flame is valid JSON and pruned to >= 0.1% of the total.
    for blob in re.findall(r'<script type="application/json">(.*?)</script>', page):
        data = json.loads(blob.replace("<\\/", "</"))
        width = data["root"][1] + data["root"][2]

        def walk(node: list[Any], width: int = width) -> None:
            for child in node[3]:
                assert child[1] + child[2] >= width * flames.MIN_FRACTION
                walk(child)

        walk(data["root"])
    assert "main.parkedWorker" in page and "hover" in page.lower()


def test_flame_tree_prunes_narrow_frames_and_counts_recursion_per_level(profdir: Path) -> None:
    prof = pprof_format.load(profdir / "heap.pb.gz")
    fl = flames.profile_flame(prof, "heap", "alloc_space")
    assert fl.root[1] == pprof.total(prof, pprof.sample_index(prof, "alloc_space"))
    assert sum(c[1] for c in fl.root[3]) <= fl.root[1]


def test_speedscope_export_is_structurally_valid(bundle_dir: Path) -> None:
    profiles: dict[str, pprof_format.Profile] = {}
    report.build(bundle_dir, profiles=profiles)
    doc = speedscope.speedscope(sorted(profiles.items()), name="b", exporter="debugcap@test")
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
    d = report.diff_bundles(old, new).as_dict()
    assert list(d) == ["old", "new", "target", "heap", "goroutines", "fd_count", "sockets", "problems", "hints"]
    assert d["heap"]["rows"][0]["function"] == "main.growingAlloc" and d["heap"]["rows"][0]["flat"] > 0
    assert d["goroutines"]["groups"][0]["function"] == "main.parkedWorker"
    assert d["goroutines"]["groups"][0]["change"] == 60
    assert d["fd_count"] == {"before": 900, "after": 950, "change": 50}
    assert d["sockets"]["CLOSE_WAIT"] == {"before": 0, "after": 12, "change": 12}
    assert d["target"]["pod"] == "api-7d9f"


def test_bundle_diff_refuses_bundles_of_different_pods(profdir: Path, tmp_path: Path) -> None:
    from debugcap.errors import AnalysisError

    old = make_bundle(profdir, tmp_path / "old")
    new = make_bundle(profdir, tmp_path / "new")
    write_manifest(new, [], pod="other")
    with pytest.raises(AnalysisError, match="different pods"):
        report.diff_bundles(old, new)


# ---- the application's own functions, on real goapp profiles ----

GOAPP_PROFILES = Path(__file__).resolve().parents[2] / "fixtures" / "goapp-profiles"
GOAPP_FACTS = json.loads((GOAPP_PROFILES / "facts.json").read_text())
# goapp's start as the pod YAML says it (whole seconds), and the capture's, when the block profile was taken.
STARTED = datetime.fromtimestamp(int(GOAPP_FACTS["started_at"]), UTC)
CAPTURED = datetime.fromtimestamp(int(GOAPP_FACTS["started_at"] + GOAPP_FACTS["uptime_seconds"]["block"]), UTC)

# As the pod-yaml collector writes it, redaction's unquoted mask included (YAML reads it as an alias).
POD_YAML = """kind: Pod
apiVersion: v1
metadata:
  name: api-7d9f
  namespace: shop
spec:
  containers:
  - name: api
    image: goapp
    resources:
      limits: {{cpu: 500m, memory: 64Mi}}
  automountServiceAccountToken: ***REDACTED***
status:
  containerStatuses:
  - name: api
    state:
      running:
        startedAt: '{started}'
"""


def make_goapp_bundle(root: Path) -> Path:
    """A debug-full-shaped bundle of goapp's real profiles, its pod YAML and manifest timed as they were taken."""
    stem = root / STEM
    (stem / "pprof").mkdir(parents=True)
    for name in ("cpu", "heap", "block", "mutex"):
        shutil.copy(GOAPP_PROFILES / f"{name}.pb.gz", stem / "pprof" / f"{name}.pb.gz")
    shutil.copy(GOAPP_PROFILES / "goroutine-debug2.txt", stem / "pprof/goroutine-debug2.txt")
    (stem / "k8s").mkdir()
    (stem / "k8s/pod.yaml").write_text(POD_YAML.format(started=STARTED.strftime("%Y-%m-%dT%H:%M:%SZ")))
    write_manifest(stem, [], when=CAPTURED)
    return stem


def test_goapp_report_names_the_applications_functions_never_the_profilers(tmp_path: Path) -> None:
    rep = report.build(make_goapp_bundle(tmp_path))
    assert rep.problems == ()
    assert rep.container == model.Container(name="api", cpu_limit=0.5, memory_limit=64 << 20,
                                            uptime_seconds=(CAPTURED - STARTED).total_seconds(),
                                            started_at=STARTED.timestamp())
    first = {}
    for f in rep.findings:
        first.setdefault(f.kind, f)
    assert {k: (first[k].subject, first[k].leaf) for k in ("cpu-hot", "heap-top", "block-delay", "mutex-delay")} == {
        "cpu-hot": ("main.burnCPU", "crypto/internal/fips140/sha256.blockSHANI"),
        "heap-top": ("main.(*growingCache).add", "main.(*growingCache).add"),
        "block-delay": ("main.contendedSection", "sync.(*Mutex).Lock"),
        "mutex-delay": ("main.contendedSection", "sync.(*Mutex).Unlock")}
    assert not [f.subject for f in rep.findings if appcode.is_profiler(f.subject)]
    assert [w for w in rep.waiting if w.function == "main.contendedSection"]
    assert "queued in it in the dump" in first["mutex-delay"].message
    assert "from the container's start to the profile" in first["mutex-delay"].message
    assert not [f for f in rep.findings if "profiler" in f.kind or "profiler" in f.subject]
    # The renderers show the new messages as they are, level first.
    out = text.render_report(rep)
    assert f"[{first['cpu-hot'].level:<6}] {first['cpu-hot'].message}" in out
    assert "By the application's own functions" in out and "main.burnCPU" in out
    page = html.render_report(rep, [])
    assert htmllib.escape(first["mutex-delay"].message) in page


def test_pod_yaml_without_the_target_container_or_limits_gives_what_it_can(tmp_path: Path) -> None:
    stem = make_goapp_bundle(tmp_path)
    (stem / "k8s/pod.yaml").write_text("spec:\n  containers:\n  - name: api\nstatus: {}\n")
    rep = report.build(stem)
    assert rep.container == model.Container("api", None, None, None, None)
    block = next(f for f in rep.findings if f.kind == "block-delay")
    assert block.value is None and "(no window known" in block.message
    (stem / "k8s/pod.yaml").write_text("spec:\n  containers:\n  - name: other\n")
    assert report.build(stem).container is None


@pytest.mark.parametrize(("text_value", "number"), [
    ("1500m", 1.5), ("2", 2.0), ("256Mi", 256 << 20), ("1G", 1e9), ("0.5", 0.5), ("1e3", 1000.0),
    ("lots", None), (None, None)])
def test_resource_quantities(text_value: str | None, number: float | None) -> None:
    assert sections.quantity(text_value) == number


@pytest.mark.parametrize(("pod_yaml", "expected"), [
    ("spec: [1]\n", None),
    ("spec:\n  containers: [x]\n", None),
    ("spec:\n  containers: 5\n", None),
    ("spec:\n  containers:\n  - name: api\n    resources: [1]\nstatus: [1]\n",
     model.Container("api", None, None, None, None)),
    ("spec:\n  containers:\n  - name: api\n    resources: {limits: [1]}\n"
     "status: {containerStatuses: [x, {name: api, state: 3}]}\n",
     model.Container("api", None, None, None, None)),
    ("spec:\n  containers:\n  - name: api\n    resources: {limits: {cpu: 1e999, memory: 1e999}}\n",
     model.Container("api", None, None, None, None)),
], ids=["spec-a-list", "containers-of-strings", "containers-a-number", "status-a-list", "state-a-number",
        "infinite-limits"])
def test_pod_yaml_of_an_unexpected_shape_leaves_what_it_cannot_read(tmp_path: Path, pod_yaml: str,
                                                                     expected: model.Container | None) -> None:
    stem = make_goapp_bundle(tmp_path)
    (stem / "k8s/pod.yaml").write_text(pod_yaml)
    rep = report.build(stem)
    assert rep.container == expected and rep.problems == ()


def test_a_started_at_without_a_zone_is_utc(tmp_path: Path) -> None:
    # PyYAML reads 2026-11-23T15:00:00 (no Z) as a naive datetime; the API server means UTC.
    stem = make_goapp_bundle(tmp_path)
    naive = STARTED.strftime("%Y-%m-%dT%H:%M:%S")
    (stem / "k8s/pod.yaml").write_text(POD_YAML.replace("'{started}'", naive).format())
    rep = report.build(stem)
    assert rep.container is not None and rep.container.started_at == STARTED.timestamp()
    assert rep.container.uptime_seconds == (CAPTURED - STARTED).total_seconds()


def test_a_pod_yaml_the_reader_fails_on_is_a_problem_line_not_a_traceback(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: object) -> float | None:
        raise TypeError("unsupported operand")

    monkeypatch.setattr(sections, "quantity", broken)
    rep = report.build(make_goapp_bundle(tmp_path))
    assert rep.container is None
    (problem,) = rep.problems
    assert problem.endswith("k8s/pod.yaml: unexpected pod shape: unsupported operand")


OWNFRAMES = Path(__file__).resolve().parents[2] / "fixtures" / "ownframes-data"
STORE_GET = "debugcap.test/ownframes/store.(*Store).Get"


def _dump_bundle(root: Path, name: str, rel: str = "pprof/goroutine-debug2.txt") -> Path:
    """A bundle of one real ownframes dump (``.gz`` unpacked) at ``rel``, and its manifest."""
    stem = root / STEM
    (stem / "pprof").mkdir(parents=True)
    data = (OWNFRAMES / name).read_bytes()
    (stem / rel).write_bytes(gzip.decompress(data) if name.endswith(".gz") else data)
    write_manifest(stem, [_record("pprof-goroutine", "ok", files=(rel,))])
    return stem


def test_a_bundle_with_only_a_debug1_dump_has_no_high_leak_suspect(tmp_path: Path) -> None:
    # 60 goroutines busy in read(2) and 50 queued on a lock, in a dump with no states.
    rep = report.build(_dump_bundle(tmp_path, "goroutine-debug1.txt", "pprof/goroutine-debug1.txt"))
    assert rep.goroutines is not None and rep.goroutines.source == "pprof/goroutine-debug1.txt"
    assert rep.leak_suspects == ()
    leaks = [f for f in rep.findings if f.kind == "goroutine-leak"]
    assert [(f.subject, f.level) for f in leaks] == [("main.reader", "low"), (STORE_GET, "low")]
    assert all("state unknown: debug=1 dump" in f.message for f in leaks)
    # The debug=1 dump gives waiting too (state unknown), from the same parse as its groups.
    assert ("", "main.reader", 60) in {(w.state, w.function, w.count) for w in rep.waiting}


def test_a_suspect_says_which_frame_it_is_parked_in(tmp_path: Path) -> None:
    rep = report.build(_dump_bundle(tmp_path, "goroutine-debug2.txt"))
    (leak,) = [f for f in rep.findings if f.kind == "goroutine-leak"]
    assert leak.message.startswith(f"goroutine leak suspect at {STORE_GET} (parked in "
                                   "internal/sync.(*Mutex).lockSlow): 50 goroutines in [sync.Mutex.Lock]")


def test_the_runtimes_gotraceback_system_dump_names_the_own_package_its_goroutines_queue_in(tmp_path: Path) -> None:
    # File lines end in " fp=.. sp=.. pc=..": read as files all the same, so store is known as own code.
    rep = report.build(_dump_bundle(tmp_path, "goroutine-sigquit.txt"))
    assert [(w.function, w.count) for w in rep.waiting if w.state == "sync.Mutex.Lock"] == [(STORE_GET, 4)]


def test_a_pool_of_pprof_handlers_under_the_apps_middleware_is_no_leak(tmp_path: Path) -> None:
    # 50 handlers of delta-profile requests, each under main.countRequests.func1 (once a "leak suspect").
    rep = report.build(_dump_bundle(tmp_path, "goroutine-pprof-pool-debug2.txt.gz"))
    subjects = {f.subject for f in rep.findings if f.kind == "goroutine-leak"}
    assert "main.countRequests.func1" not in subjects and not any(appcode.is_profiler(s) for s in subjects)
    assert rep.goroutines is not None
    groups = {(g["state"], g["function"], g["count"]) for g in rep.goroutines.groups}
    assert ("select", "net/http/pprof.Index", 50) in groups


def test_each_goroutine_dump_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[int] = []
    read_lines = goroutines.read_lines

    def counting(lines: Any) -> goroutines.Dump:
        parses.append(1)
        return read_lines(lines)

    monkeypatch.setattr(goroutines, "read_lines", counting)
    rep = report.build(make_goapp_bundle(tmp_path))
    assert len(parses) == 1 and rep.goroutines is not None
    assert [w for w in rep.waiting if w.function == "main.contendedSection"]
