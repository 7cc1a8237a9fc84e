"""New Go diagnostics end to end: goroutineleak, the flight recorder and the runtime facts.

On the real testbed, through ``kubectl-debugcap create --local`` and through the operator (a
DebugCapture, bundle fetched back from MinIO):

* goapp (Go 1.26, ``GOEXPERIMENT=goroutineleakprofile``, flight recorder on /debug/flightrecorder)
  with ``GOAPP_LEAK_UNREACHABLE`` set: the goroutineleak profile names ``main.orphanedWaiter`` and
  not ``main.leakWorker`` (its channel is reachable), the flight recorder's snapshot is an
  execution trace, ``report`` puts the proven leak first, ``goroutines`` and ``top`` read it;
* goapp-nodiag (no experiment, no handler): both collectors skipped with their note, the capture
  Completed, the template's own trace taken once;
* the manifest's ``runtime`` map has the target's goVersion, GOMAXPROCS and GOMEMLIMIT;
* a DebugCaptureTemplate with a flight-recorder step and no trace step: goapp-nodiag gets the
  fallback trace, in its own file, and the step says so.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner

from debugcap.bundle import layout
from debugcap.collectors.fetching import TRACE_HEADER
from debugcap.collectors.pprof_goroutineleak import NOT_SERVED
from debugcap.formats import pprof as pprof_format
from debugcap.kube.client import Kube

from .conftest import GoappPod, Testbed
from .test_capture import CLI, _wait_for_metric, collector, create, members, read_manifest, statuses
from .test_operator import (
    GROUP,
    VERSION,
    s3,
    wait_done,
    wait_for,
)
from .test_operator import create as create_capture

pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")

LEAKY_ENV = {"GOAPP_LEAK_UNREACHABLE": "20", "GOAPP_LEAK_GOROUTINES": "20", "GOMAXPROCS": "2",
             "GOMEMLIMIT": "256MiB"}
NODIAG_ENV = {"GOMAXPROCS": "1"}
LEAK_FILES = {layout.PPROF_GOROUTINELEAK, layout.PPROF_GOROUTINELEAK_DEBUG1, layout.PPROF_GOROUTINELEAK_DEBUG2}


def _analyze(*args: str) -> str:
    res = subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def assert_diagnostics_served(bundle: Path, files: dict[str, bytes], tmp_path: Path) -> None:
    """goapp with the leak planted: proven leak named, flight recorder snapshot, runtime facts."""
    doc = read_manifest(files)
    assert statuses(doc)["pprof-goroutineleak"] == "ok" and statuses(doc)["flight-recorder"] == "ok", doc
    assert LEAK_FILES | {layout.TRACE_FLIGHT_RECORDER, layout.TRACE} <= set(files)
    assert layout.TRACE_FLIGHT_RECORDER_FALLBACK not in files
    assert TRACE_HEADER.match(files[layout.TRACE_FLIGHT_RECORDER])
    debug1 = files[layout.PPROF_GOROUTINELEAK_DEBUG1].decode()
    assert "main.orphanedWaiter" in debug1 and "main.leakWorker" not in debug1, debug1[:2000]
    assert "(leaked)]:" in files[layout.PPROF_GOROUTINELEAK_DEBUG2].decode()
    prof = pprof_format.parse(files[layout.PPROF_GOROUTINELEAK], layout.PPROF_GOROUTINELEAK)
    assert sum(v[0] for v in prof.values) >= 40
    runtime = doc["runtime"]
    assert runtime["goVersion"].startswith("go1.26") and "goroutineleakprofile" in runtime["goVersion"], runtime
    assert runtime["GOMAXPROCS"] == "2" and runtime["GOMEMLIMIT"] == str(256 << 20), runtime

    report = json.loads(_analyze("report", str(bundle), "-o", "json"))
    first = report["findings"][0]
    assert (first["kind"], first["subject"]) == ("goroutine-leak-proven", "main.orphanedWaiter"), report["findings"]
    assert report["runtime"] == runtime
    text = _analyze("report", str(bundle), "--html", str(tmp_path / "report.html"))
    assert "goroutine leak proven by the Go runtime at main.orphanedWaiter" in text
    assert f"Runtime: goVersion {runtime['goVersion']}, GOMAXPROCS 2" in text
    assert "Goroutine leaks proven by the runtime" in (tmp_path / "report.html").read_text()
    stem = tmp_path / "unpacked"
    stem.mkdir(exist_ok=True)
    for rel in (layout.PPROF_GOROUTINELEAK, layout.PPROF_GOROUTINELEAK_DEBUG2):
        (stem / Path(rel).name).write_bytes(files[rel])
    dump = _analyze("goroutines", str(stem / Path(layout.PPROF_GOROUTINELEAK_DEBUG2).name))
    assert any("main.orphanedWaiter" in ln and "leaked (proven by the runtime)" in ln for ln in dump.splitlines())
    top = _analyze("top", str(stem / Path(layout.PPROF_GOROUTINELEAK).name))
    assert "main.orphanedWaiter" in top


def assert_diagnostics_skipped(files: dict[str, bytes]) -> None:
    """goapp-nodiag: clean skips with their notes, no leak or flight recorder files, one trace."""
    doc = read_manifest(files)
    leak, fr = collector(doc, "pprof-goroutineleak"), collector(doc, "flight-recorder")
    assert (leak["status"], leak["message"], leak["files"]) == ("skipped", NOT_SERVED, []), leak
    assert fr["status"] == "skipped" and "/debug/flightrecorder not served" in fr["message"], fr
    assert "no fallback trace asked for" in fr["message"]
    assert statuses(doc)["trace"] == "ok" and layout.TRACE in files
    assert not (LEAK_FILES | {layout.TRACE_FLIGHT_RECORDER, layout.TRACE_FLIGHT_RECORDER_FALLBACK}) & set(files)
    runtime = doc["runtime"]
    assert runtime["goVersion"].startswith("go1.26") and "goroutineleakprofile" not in runtime["goVersion"]
    assert runtime["GOMAXPROCS"] == "1" and runtime["GOMEMLIMIT"] == "off", runtime


def test_local_capture_names_the_proven_leak_and_takes_the_flight_recorder(
    testbed: Testbed, goapp_pod: GoappPod, kube: Kube, namespace: str, tmp_path: Path,
) -> None:
    goapp_pod("leaky", env=LEAKY_ENV)
    _wait_for_metric(kube, namespace, "leaky", "goapp_orphaned_goroutines", 40)
    run = create(testbed, namespace, "leaky", "debug-full", tmp_path / "out")
    assert run.returncode == 0 and run.bundle is not None, run
    assert "phase: Completed" in run.stderr, run
    assert_diagnostics_served(run.bundle, members(run.bundle), tmp_path)


def test_local_capture_of_a_program_without_them_skips_cleanly(
    testbed: Testbed, goapp_pod: GoappPod, namespace: str, tmp_path: Path,
) -> None:
    goapp_pod("plain", image="goapp-nodiag", env=NODIAG_ENV)
    run = create(testbed, namespace, "plain", "go-profile", tmp_path / "out")
    assert run.returncode == 0 and run.bundle is not None, run
    assert "phase: Completed" in run.stderr and "Traceback" not in run.stderr, run
    assert_diagnostics_skipped(members(run.bundle))


def _fetch(pod_status: dict[str, Any], tmp_path: Path) -> Path:
    dest = tmp_path / Path(pod_status["bundle"]["key"]).name
    s3().get(key=pod_status["bundle"]["key"], dest=dest)
    return dest


def test_operator_capture_of_both_programs(
    operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod, tmp_path: Path,  # noqa: F811
) -> None:
    goapp_pod("leaky", env=LEAKY_ENV, labels={"diag": "yes"})
    goapp_pod("plain", image="goapp-nodiag", env=NODIAG_ENV, labels={"diag": "yes"})
    _wait_for_metric(kube, namespace, "leaky", "goapp_orphaned_goroutines", 40)
    create_capture(kube, namespace, "diag", {"target": {"selector": {"matchLabels": {"diag": "yes"}}},
                                             "template": "go-profile",
                                             "parameters": {"cpuSeconds": 1, "traceSeconds": 1}})
    status = wait_done(kube, namespace, "diag", 120)["status"]
    assert status["phase"] == "Completed", status
    pods = {p["name"]: p for p in status["pods"]}
    assert set(pods) == {"leaky", "plain"}
    by_name = {c["name"]: c["status"] for c in pods["plain"]["collectors"]}
    assert by_name["pprof-goroutineleak"] == "skipped" and by_name["flight-recorder"] == "skipped"
    leaky = _fetch(pods["leaky"], tmp_path)
    assert_diagnostics_served(leaky, members(leaky), tmp_path)
    assert_diagnostics_skipped(members(_fetch(pods["plain"], tmp_path)))


def test_a_template_without_a_trace_step_falls_back_to_a_trace(
    operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod, tmp_path: Path,  # noqa: F811
) -> None:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    template = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCaptureTemplate", "metadata": {"name": name},
                "spec": {"description": "the moment before, or the moment after",
                         "steps": [{"collector": "flight-recorder", "params": {"fallback_seconds": 1}},
                                   {"collector": "metrics"}]}}
    kube.custom().create_cluster_custom_object(GROUP, VERSION, "debugcapturetemplates", template)
    try:
        checked = wait_for(lambda: kube.custom().get_cluster_custom_object(
            GROUP, VERSION, "debugcapturetemplates", name).get("status"), 20, "the template check")
        assert checked["valid"], checked
        goapp_pod("plain", image="goapp-nodiag", env=NODIAG_ENV)
        create_capture(kube, namespace, "fr", {"target": {"pod": "plain"}, "template": name})
        status = wait_done(kube, namespace, "fr")["status"]
        assert status["phase"] == "Completed", status
        files = members(_fetch(status["pods"][0], tmp_path))
        fr = collector(read_manifest(files), "flight-recorder")
        assert (fr["status"], fr["files"]) == ("ok", [layout.TRACE_FLIGHT_RECORDER_FALLBACK]), fr
        assert "took a 1s execution trace from the capture's start instead" in fr["message"]
        assert TRACE_HEADER.match(files[layout.TRACE_FLIGHT_RECORDER_FALLBACK])
        assert layout.TRACE not in files and layout.TRACE_FLIGHT_RECORDER not in files
        assert read_manifest(files)["runtime"]["GOMAXPROCS"] == "1"
    finally:
        kube.custom().delete_cluster_custom_object(GROUP, VERSION, "debugcapturetemplates", name)
