"""Issue 4 acceptance on the testbed: the analysis commands on real captures of the goapp fixture.

One namespace per module holds three goapp pods, each captured once with the
real ``kubectl-debugcap create --local`` and shared by the tests:

- ``hot`` (CPU hot loop, lock contention, heap growth, a small goroutine leak; limits of one
  core and 256 MiB): ``debug-full`` with cpu_seconds=2, trace_seconds=1. ``top -o json`` must agree
  row for row with ``go tool pprof -top`` on every profile and heap sample type;
  ``report --html`` / ``--speedscope`` are checked on this bundle, and ``report``'s first finding
  of each kind names the application's function (main.burnCPU, main.contendedSection,
  main.leakWorker, main.(*growingCache).add), never the runtime's, the library's or the profiler's.
- ``leaky`` (30 leaked goroutines and 2 MiB of heap per second): ``go-leak`` with
  3 snapshots 3 s apart. The report's first finding is ``main.leakWorker`` and
  the heap diff of the first and last snapshot ranks ``main.(*growingCache).add`` first.
- ``plain`` (no pathology, so no SetBlockProfileRate): ``go-profile``; its empty
  block profile gets the readiness hint.
"""

from __future__ import annotations

import functools
import html.parser
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from kubernetes import client as k8s

from debugcap.analysis import appcode, pprof
from debugcap.formats import pprof as pprof_format

from .conftest import Testbed, _exists, _wait, wait_running

CLI = str(Path(sys.executable).with_name("kubectl-debugcap"))
UNIT_HELPERS = Path(__file__).resolve().parents[1] / "unit" / "analysis" / "conftest.py"

PODS = {
    "hot": {"GOAPP_CPU_HOT": "1", "GOAPP_CONTENTION": "1", "GOAPP_HEAP_GROWTH_KB": "1024",
            "GOAPP_LEAK_GOROUTINES": "20"},
    "leaky": {"GOAPP_LEAK_GOROUTINES": "30", "GOAPP_HEAP_GROWTH_KB": "2048"},
    "plain": {},
}

# The hot pod's limits: what cpu-hot and heap-top measure their shares against.
LIMITS = {"hot": {"cpu": "1", "memory": "256Mi"}}

Rows = list[tuple[str, int, int]]


def _unit_helpers() -> ModuleType:
    """tests/unit/analysis/conftest.py, whose ``go_pprof_top`` the unit tests compare with.

    tests/ is not a package, so it is loaded by path (under its own name: when the
    unit tests run in the same session, pytest has its own copy as a conftest).
    """
    spec = importlib.util.spec_from_file_location("debugcap_unit_analysis_helpers", UNIT_HELPERS)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def go_top() -> Callable[..., Rows]:
    go = shutil.which("go")
    assert go, "the Go toolchain is required: the tests compare with go tool pprof"
    return functools.partial(_unit_helpers().go_pprof_top, go)


def cli(testbed: Testbed, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **testbed.env}
    res = subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=timeout)
    assert res.returncode == 0, f"kubectl-debugcap {' '.join(args)} exited {res.returncode}:\n{res.stderr}"
    return res


def cli_json(testbed: Testbed, *args: str) -> Any:
    return json.loads(cli(testbed, *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def pods(core: k8s.CoreV1Api, testbed: Testbed) -> Iterator[str]:
    """A namespace of its own with the three goapp pods running; deleted afterwards."""
    ns = f"e2e-analysis-{uuid.uuid4().hex[:6]}"
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns, labels={"debugcap-e2e": "1"})))
    try:
        _wait(lambda: _exists(lambda: core.read_namespaced_service_account("default", ns)), 30,
              f"default ServiceAccount in {ns}")
        for name, env in PODS.items():
            container = k8s.V1Container(
                name="app", image=testbed.images["goapp"], image_pull_policy="Never",
                env=[k8s.V1EnvVar(name=k, value=v) for k, v in env.items()],
                resources=k8s.V1ResourceRequirements(limits=LIMITS[name]) if name in LIMITS else None)
            core.create_namespaced_pod(ns, k8s.V1Pod(
                metadata=k8s.V1ObjectMeta(name=name, labels={"app": "goapp"}),
                spec=k8s.V1PodSpec(containers=[container], termination_grace_period_seconds=0,
                                   automount_service_account_token=False)))
        for name in PODS:
            wait_running(core, ns, name)
        yield ns
    finally:
        core.delete_namespace(ns, grace_period_seconds=0)


def capture(testbed: Testbed, ns: str, pod: str, template: str, out: Path, **params: int) -> Path:
    """Run ``kubectl-debugcap create --local``; return the bundle, unpacked next to it."""
    args = ["create", f"pod/{pod}", "-t", template, "--local", "-n", ns, "--output-dir", str(out)]
    for k, v in params.items():
        args += ["-p", f"{k}={v}"]
    res = cli(testbed, *args)
    match = re.search(r"^bundle: (.+)$", res.stdout, re.MULTILINE)
    assert match, res.stdout
    bundle = Path(match.group(1))
    assert "phase: Completed" in res.stderr, res.stderr
    with tarfile.open(bundle) as tf:
        tf.extractall(out / "unpacked", filter="data")
    return bundle


def stem(bundle: Path) -> Path:
    return bundle.parent / "unpacked" / bundle.name.removesuffix(".tar.gz")


def _gc_after_tick(log: str, tick: int) -> bool:
    """Whether the goapp's log shows two GC cycles completed after its ``tick``-th line: the runtime
    publishes an allocation in the heap profile only once a cycle after it could have freed it."""
    cycles = {int(m[1]): int(m[2]) for m in re.finditer(r"tick=(\d+) .* gc_cycles=(\d+)", log)}
    return tick in cycles and any(n > tick and c >= cycles[tick] + 2 for n, c in cycles.items())


@pytest.fixture(scope="module")
def hot_bundle(testbed: Testbed, core: k8s.CoreV1Api, pods: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The heap profile may be two GC cycles old, and samples one allocation per 512 KiB on
    # average: five ticks give the cache five 1 MiB adds, and two GCs after them must have run, or
    # the profile may show none of them (the flight recorder's buffers can put the next GC tens of
    # seconds away; the runtime forces one every two minutes).
    _wait(lambda: _gc_after_tick(core.read_namespaced_pod_log("hot", pods, container="app"), 5), 300,
          "five ticks of the hot pod and two GCs after them")
    bundle = capture(testbed, pods, "hot", "debug-full", tmp_path_factory.mktemp("hot"),
                     cpu_seconds=2, trace_seconds=1)
    # Its hot loop would take one of the machine's cores from everything that follows.
    core.delete_namespaced_pod("hot", pods, grace_period_seconds=0)
    return bundle


@pytest.fixture(scope="module")
def leak_bundle(testbed: Testbed, pods: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return capture(testbed, pods, "leaky", "go-leak", tmp_path_factory.mktemp("leaky"),
                   snapshots=3, interval_seconds=3)


@pytest.fixture(scope="module")
def plain_bundle(testbed: Testbed, pods: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return capture(testbed, pods, "plain", "go-profile", tmp_path_factory.mktemp("plain"),
                   cpu_seconds=1, trace_seconds=1)


# ---- top agrees with go tool pprof ----

CASES = [
    ("cpu", None, "ns"),
    ("heap", None, "B"),
    ("heap", "inuse_space", "B"),
    ("heap", "inuse_objects", None),
    ("heap", "alloc_space", "B"),
    ("heap", "alloc_objects", None),
    ("allocs", None, "B"),
    ("goroutine", None, None),
    ("block", None, "ns"),
    ("mutex", None, "ns"),
    ("threadcreate", None, None),
]

# What the goapp's pathologies must put in each profile, so an agreement on
# near-empty profiles cannot pass for an agreement on real ones.
EXPECTED_FUNCTION = {"cpu": "main.burnCPU", "heap": "main.(*growingCache).add",
                     "allocs": "main.(*growingCache).add", "goroutine": "main.leakWorker",
                     "block": "main.blockedSender", "mutex": "main.contendedSection"}


@pytest.mark.parametrize("node_fraction", [None, "0"], ids=["pprof-default-nodefraction", "nodefraction-0"])
@pytest.mark.parametrize(("kind", "index", "unit"), CASES, ids=[f"{k}-{i or 'default'}" for k, i, _ in CASES])
def test_top_json_agrees_with_go_tool_pprof(testbed: Testbed, hot_bundle: Path, go_top: Callable[..., Rows],
                                            kind: str, index: str | None, unit: str | None,
                                            node_fraction: str | None) -> None:
    path = stem(hot_bundle) / "pprof" / f"{kind}.pb.gz"
    args = ["top", str(path)]
    if index:
        args += ["--sample-index", index]
    if node_fraction is not None:
        args += ["--node-fraction", node_fraction]
    rep = cli_json(testbed, *args)
    ours = [(r["function"], r["flat"], r["cum"]) for r in rep["rows"]]
    theirs = go_top(path, sample_index=index, unit=unit,
                    node_fraction=node_fraction if node_fraction is not None else str(pprof.PPROF_NODE_FRACTION))
    assert theirs, f"go tool pprof printed no rows for {path}"
    assert ours == theirs
    if kind in EXPECTED_FUNCTION and index in (None, "inuse_space", "alloc_space"):
        assert EXPECTED_FUNCTION[kind] in {f for f, _, _ in ours}


# ---- go-leak: the leak comes first, the growing cache tops the heap diff ----


def test_report_names_the_goroutine_leak_first(testbed: Testbed, leak_bundle: Path) -> None:
    rep = cli_json(testbed, "report", str(leak_bundle))
    first = rep["findings"][0]
    assert (first["kind"], first["subject"]) == ("goroutine-leak", "main.leakWorker"), rep["findings"]
    assert "main.leakWorker" in first["message"] and "grew from" in first["message"]
    totals = [t["total"] for t in rep["snapshots"]["goroutine_totals"]]
    assert len(totals) == 3 and totals[0] < totals[1] < totals[2]


def test_heap_growth_ranks_the_growing_cache_first(testbed: Testbed, leak_bundle: Path,
                                                   go_top: Callable[..., Rows]) -> None:
    snaps = stem(leak_bundle) / "pprof" / "snapshots"
    base, new = snaps / "00" / "heap.pb.gz", snaps / "02" / "heap.pb.gz"
    rep = cli_json(testbed, "diff", str(base), str(new), "--sample-index", "inuse_space")
    rows = [(r["function"], r["flat"], r["cum"]) for r in rep["rows"]]
    assert rows[0][0] == "main.(*growingCache).add" and rows[0][1] > 0, rows[:5]
    # Two seconds apart at 2 MiB/s: at least two more chunks held.
    assert rows[0][1] >= 2 * 2048 * 1024
    assert rows == go_top(new, sample_index="inuse_space", unit="B", diff_base=base,
                          node_fraction=str(pprof.PPROF_NODE_FRACTION))

    report = cli_json(testbed, "report", str(leak_bundle))
    growth = report["snapshots"]["heap_growth"]
    assert (growth["from"], growth["to"]) == ("pprof/snapshots/00", "pprof/snapshots/02")
    assert growth["rows"][0]["function"] == "main.(*growingCache).add"
    assert growth["rows"][0]["growth"] == rows[0][1]
    assert any(f["kind"] == "heap-growth" and f["subject"] == "main.(*growingCache).add"
               for f in report["findings"])


# ---- findings name the application's own code ----


def _first_of_each_kind(findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    first: dict[str, dict[str, Any]] = {}
    for f in findings:
        first.setdefault(f["kind"], f)
    return first


def test_report_names_the_applications_functions_not_the_runtimes(testbed: Testbed, hot_bundle: Path,
                                                                   leak_bundle: Path) -> None:
    rep = cli_json(testbed, "report", str(hot_bundle))
    first = _first_of_each_kind(rep["findings"])
    expected = {"goroutine-leak": "main.leakWorker", "mutex-delay": "main.contendedSection",
                "block-delay": "main.contendedSection", "cpu-hot": "main.burnCPU",
                "heap-top": "main.(*growingCache).add"}
    assert {k: first[k]["subject"] if k in first else None for k in expected} == expected, rep["findings"]
    # The leaf the samples ended in is kept as context: the library's and the runtime's frames.
    assert first["cpu-hot"]["leaf"].startswith("crypto/"), first["cpu-hot"]
    assert (first["mutex-delay"]["leaf"], first["block-delay"]["leaf"]) == ("sync.(*Mutex).Unlock",
                                                                            "sync.(*Mutex).Lock")
    assert "for locks released in main.contendedSection" in first["mutex-delay"]["message"]
    # Rates against the pod's own limits, read from the bundle's pod YAML.
    assert rep["container"]["cpu_limit"] == 1.0 and rep["container"]["memory_limit"] == 256 << 20
    assert "of the container's 1-core limit" in first["cpu-hot"]["message"]
    assert first["cpu-hot"]["unit"] == "%" and first["mutex-delay"]["unit"] == "s/s"
    assert first["mutex-delay"]["value"] > 0

    leak = cli_json(testbed, "report", str(leak_bundle))
    growth = _first_of_each_kind(leak["findings"])
    assert growth["heap-growth"]["subject"] == "main.(*growingCache).add", leak["findings"]
    assert growth["goroutine-leak"]["subject"] == "main.leakWorker"
    assert growth["goroutine-growth"]["subject"] == "main.leakWorker"

    for f in rep["findings"] + leak["findings"]:
        assert not appcode.is_profiler(f["subject"]), f
    # The text report shows the same lines.
    out = cli(testbed, "report", str(hot_bundle)).stdout
    assert f"] {first['cpu-hot']['message']}" in out and "By the application's own functions" in out


# ---- HTML and speedscope outputs ----


class _Resources(html.parser.HTMLParser):
    """Every attribute that could load something, and the JSON blocks of the flame graphs."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.tags: set[str] = set()
        self.json_blocks: list[str] = []
        self._in_json = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "action") and value:
                self.loads.append(f"<{tag} {name}={value}>")
        self._in_json = tag == "script" and ("type", "application/json") in attrs

    def handle_endtag(self, tag: str) -> None:
        self._in_json = False

    def handle_data(self, data: str) -> None:
        if self._in_json:
            self.json_blocks.append(data)


def test_html_report_is_self_contained_with_the_cpu_flame_graph(testbed: Testbed, hot_bundle: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    cli(testbed, "report", str(hot_bundle), "--html", str(out))
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    text = out.read_text(encoding="utf-8")
    parsed = _Resources()
    parsed.feed(text)
    assert parsed.loads == []
    assert not {"link", "iframe", "img", "object", "embed"} & parsed.tags
    assert not re.search(r"url\(|@import|https?://|fetch\(|XMLHttpRequest|import\(", text, re.IGNORECASE), \
        "the report refers to an external resource"

    flames = [json.loads(b) for b in parsed.json_blocks]
    cpu = next(f for f in flames if f["title"].startswith("cpu"))
    expected = pprof.top(pprof_format.load(stem(hot_bundle) / "pprof" / "cpu.pb.gz"))
    assert cpu["unit"] == "nanoseconds" and cpu["total"] == expected["total"] > 0
    assert cpu["root"][1] == expected["total"]
    assert "main.burnCPU" in cpu["names"]


def test_speedscope_output_is_valid(testbed: Testbed, hot_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "profile.speedscope.json"
    cli(testbed, "report", str(hot_bundle), "--speedscope", str(out))
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    assert frames and all(isinstance(f["name"], str) and f["name"] for f in frames)
    assert all(set(f) <= {"name", "file", "line", "col"} for f in frames)
    assert doc["profiles"] and 0 <= doc.get("activeProfileIndex", 0) < len(doc["profiles"])
    units = {"none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"}
    for p in doc["profiles"]:
        assert p["type"] == "sampled" and isinstance(p["name"], str) and p["unit"] in units
        assert len(p["samples"]) == len(p["weights"]) > 0
        assert all(isinstance(w, int) and w > 0 for w in p["weights"])
        assert all(s and all(isinstance(i, int) and 0 <= i < len(frames) for i in s) for s in p["samples"])
        assert p["startValue"] == 0 and p["endValue"] == sum(p["weights"])

    cpu = next(p for p in doc["profiles"] if p["name"].startswith("cpu cpu"))
    expected = pprof.top(pprof_format.load(stem(hot_bundle) / "pprof" / "cpu.pb.gz"))
    assert cpu["unit"] == "nanoseconds" and cpu["endValue"] == expected["total"]
    burn = next(i for i, f in enumerate(frames) if f["name"] == "main.burnCPU")
    assert any(burn in s for s in cpu["samples"])


# ---- readiness hint ----


def test_empty_block_profile_gets_the_set_block_profile_rate_hint(testbed: Testbed, plain_bundle: Path,
                                                                  hot_bundle: Path) -> None:
    block = stem(plain_bundle) / "pprof" / "block.pb.gz"
    assert pprof_format.load(block).is_empty()
    rep = cli_json(testbed, "report", str(plain_bundle))
    hints = [h for h in rep["hints"] if "block.pb.gz" in h]
    assert len(hints) == 1 and "runtime.SetBlockProfileRate" in hints[0], rep["hints"]
    assert any(f["kind"] == "hint" and "SetBlockProfileRate" in f["message"] for f in rep["findings"])
    # top on the file itself says the same on stderr.
    res = cli(testbed, "top", str(block))
    assert "hint:" in res.stderr and "SetBlockProfileRate" in res.stderr

    # With GOAPP_CONTENTION the block profile has data, and no such hint.
    hot = cli_json(testbed, "report", str(hot_bundle))
    assert not [h for h in hot["hints"] if "SetBlockProfileRate" in h]
    assert hot["block"]["total"] > 0
