"""What the operator learns from a bundle: findings, readings and the pod's Healthy condition.

Cases: a real bundle with 60 goroutines parked in one function is analysed into an unhealthy pod
(a goroutine-leak finding, high) with its readings (goroutines, heap in use, GC cycles); the report
reads a trace up to the limit its caller gives; the one rule: a finding of a kind that means the pod
is sick, at its level, makes it unhealthy, and a high cpu-hot, heap-top, block-delay or fact about
the capture does not; at most five findings are listed, most serious first, the one that makes the
pod unhealthy ahead, with the total; messages are one line, shortened and free of secrets; a bundle
that cannot be analysed gives Unknown, never an exception; analyses run under the process-wide lock;
the status entry reads back exactly; the capture's Healthy is False with one unhealthy pod (named
with the finding that makes it so), True when all were analysed healthy, Unknown otherwise; the
summary does not count a Failed pod as healthy; a pod's workload is its Deployment (through the
ReplicaSet's pod-template-hash), its other controller, or itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import operator_fakes
import pytest

from debugcap.analysis import model, report
from debugcap.bundle import layout, manifest, writer
from debugcap.operator import health
from debugcap.operator.results import PodResult, summary

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
TRACE = Path(__file__).resolve().parents[2] / "fixtures" / "goapp-trace" / "trace.out"
LEAK = "".join(f"goroutine {n} [chan receive, 12 minutes]:\nmain.leakWorker(0x0?)\n\t/app/main.go:97 +0x15\n"
               f"created by main.leakGoroutines in goroutine 1\n\t/app/main.go:103 +0x25\n\n" for n in range(10, 70))
MEMSTATS = {"memstats": {"HeapInuse": 4_202_496, "HeapAlloc": 2_000_000, "NumGC": 17, "NextGC": 4_194_304,
                         "Sys": 12_000_000}}


def _bundle(directory: Path, files: dict[str, bytes]) -> Path:
    records = (manifest.CollectorRecord(name="pprof-goroutine", status=manifest.CollectorStatus.OK, duration_ms=5,
                                        bytes=1, files=tuple(files)),)
    fields = manifest.ManifestFields(
        capture=manifest.CaptureInfo(name="cap", template="go-profile", parameters={}),
        target=manifest.TargetInfo(namespace="shop", pod="api-1", container="app", node="n1", image="img:1"),
        started_at=operator_fakes.WHEN, finished_at=operator_fakes.WHEN, collectors=records)
    with writer.BundleWriter(directory=directory, name=layout.bundle_name("shop", "api-1", operator_fakes.WHEN)) as w:
        for path, data in files.items():
            w.add_bytes(path, data)
        return w.finish(fields).path


def test_a_bundle_with_a_parked_goroutine_pile_makes_its_pod_unhealthy(tmp_path: Path) -> None:
    path = _bundle(tmp_path, {layout.PPROF_GOROUTINE_DEBUG2: LEAK.encode(),
                              layout.METRICS_EXPVAR: json.dumps(MEMSTATS).encode()})
    assessed = health.assess(path, generation=4, now=NOW)
    assert (assessed.status, assessed.reason) == ("False", "UnhealthyFindings")
    top = assessed.findings[0]
    assert (top["kind"], top["subject"], top["level"]) == ("goroutine-leak", "main.leakWorker", "high")
    assert "main.leakWorker" in assessed.message
    assert assessed.readings == {"goroutines": 60, "heapInuseBytes": 4_202_496, "gcCycles": 17}
    assert "gcPauseMaxSeconds" not in assessed.readings  # these memstats have no PauseNs: no figure, not a 0
    assert assessed.condition() == {"type": "Healthy", "status": "False", "reason": "UnhealthyFindings",
                                    "message": assessed.message, "lastTransitionTime": "2026-12-01T10:30:00Z",
                                    "observedGeneration": 4}


GOAPP_VARS = Path(__file__).resolve().parents[1] / "collectors" / "data" / "go" / "vars.json"


def test_the_gc_pause_reading_is_the_longest_recent_pause_of_real_memstats(tmp_path: Path) -> None:
    """A /debug/vars page recorded from the goapp (its memstats: 3 cycles, pauses up to 123.6 us)."""
    path = _bundle(tmp_path, {layout.PPROF_GOROUTINE_DEBUG2: LEAK.encode(),
                              layout.METRICS_EXPVAR: GOAPP_VARS.read_bytes()})
    rep = report.build(path)
    assert rep.gc_pauses is not None and rep.gc_pauses.as_dict() == {
        "num_gc": 3, "total_ns": 254_610, "recent_max_ns": 123_622, "recent_cycles": 3}
    assert rep.as_dict()["gc_pauses"]["recent_max_ns"] == 123_622
    assessed = health.assess(path, generation=1, now=NOW)
    assert assessed.readings["gcPauseMaxSeconds"] == 123_622 / 1e9
    assert assessed.readings["gcCycles"] == 3
    # Stored in the pod's status entry with the other readings, and read back.
    assert assessed.as_status()["readings"]["gcPauseMaxSeconds"] == 0.000123622


def test_the_report_reads_a_trace_up_to_the_limit_its_caller_gives(tmp_path: Path) -> None:
    """The operator reads smaller traces than the report command: reading costs memory too."""
    path = _bundle(tmp_path, {layout.TRACE: TRACE.read_bytes()})
    assert report.build(path).trace is not None  # the default limit (16 MiB) reads it
    cut = report.build(path, trace_limit=TRACE.stat().st_size - 1)
    assert cut.trace is None and not cut.problems and not cut.hints
    assert any("kubectl debugcap trace" in n and layout.TRACE in n for n in cut.notes), cut.notes
    # Not a finding: a sweep of busy pods with big traces must not all carry one.
    assert not health.assess(path, generation=1, now=NOW, trace_limit=TRACE.stat().st_size - 1).findings


def test_a_bundle_that_cannot_be_analysed_is_unknown_not_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "shop_api-1_20261201T101500Z.tar.gz"
    broken.write_bytes(b"not a tar")
    assessed = health.assess(broken, generation=1, now=NOW)
    assert (assessed.status, assessed.reason, assessed.healthy) == ("Unknown", "AnalysisFailed", None)
    assert assessed.message.startswith("the bundle could not be analysed: ")


def _finding(severity: int, kind: str = "goroutine-leak", message: str = "m") -> model.Finding:
    return model.Finding(severity=severity, kind=kind, subject=f"main.f{severity}", message=message)


@pytest.mark.parametrize(("found", "status"), [
    ([("goroutine-leak-proven", 110)], "False"),
    ([("goroutine-leak", 80)], "False"),
    ([("goroutine-growth", 85)], "False"),
    ([("heap-growth", 90)], "False"),
    ([("mutex-delay", 84)], "False"),
    ([("sched-latency", 82)], "False"),
    ([("fd-limit", 75)], "False"),  # its one level: it fires only near the limit
    ([("disk-full", 70)], "False"),
    ([("heap-growth", 70), ("goroutine-growth", 65), ("mutex-delay", 62)], "True"),  # medium growth: not yet
    # Saturation and size (a busy pod, a big cache), idle workers, and facts about the capture.
    ([("cpu-hot", 82), ("heap-top", 81), ("block-delay", 83), ("close-wait", 65), ("truncated-dump", 68),
      ("collector-failed", 60), ("hint", 55)], "True"),
    ([], "True"),
], ids=["proven", "leak", "goroutine-growth", "heap-growth", "mutex", "sched", "fd", "disk", "medium-growth",
        "busy-not-sick", "none"])
def test_a_finding_of_a_sick_kind_at_its_level_makes_a_pod_unhealthy(found: list[tuple[str, int]],
                                                                       status: str) -> None:
    assessed = health.judge([_finding(sev, kind) for kind, sev in found], {}, generation=1, now=NOW)
    assert assessed.status == status
    assert assessed.findings_total == len(found)


def test_the_five_most_serious_findings_are_listed_the_one_that_makes_the_pod_unhealthy_first() -> None:
    found = [_finding(s, "cpu-hot") for s in (40, 95, 55, 82, 10, 60, 70)] + [_finding(75, "fd-limit")]
    assessed = health.judge(found, {}, generation=1, now=NOW)
    assert [(f["kind"], f["severity"]) for f in assessed.findings] == [
        ("fd-limit", 75), ("cpu-hot", 95), ("cpu-hot", 82), ("cpu-hot", 70), ("cpu-hot", 60)]
    assert assessed.findings_total == 8
    assert assessed.message.startswith("1 finding(s) that make a pod unhealthy; the most serious: fd-limit at "
                                       "main.f75")
    healthy = health.judge(found[:-1], {}, generation=1, now=NOW)
    assert [f["severity"] for f in healthy.findings] == [95, 82, 70, 60, 55]
    assert healthy.message == ("no finding that makes a pod unhealthy; 7 other(s), the most serious high: "
                               "cpu-hot at main.f95")


def test_analyses_run_one_at_a_time_in_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each holds a trace reader's memory (about 12 MB per MiB): several at once ran the operator out of it."""
    held: list[bool] = []

    def build(path: Path, **kw: object) -> model.Report:
        held.append(health._ANALYSING.locked())
        raise ValueError("stop here")

    monkeypatch.setattr(report, "build", build)
    assert health.assess(tmp_path / "b.tar.gz", generation=1, now=NOW).reason == "AnalysisFailed"
    assert held == [True] and not health._ANALYSING.locked()


def test_finding_messages_are_one_short_line_without_secrets() -> None:
    secret = "hunter2-" + "x" * 20
    text = (f"collector logs failed: GET https://admin:{secret}@db.internal/x\nAuthorization: Bearer {secret}\n"
            + "y" * 500)
    [entry] = health.judge([_finding(90, message=text)], {}, generation=1, now=NOW).findings
    assert secret not in entry["message"] and "\n" not in entry["message"]
    assert len(entry["message"]) == health.MESSAGE_CHARS
    assert "***REDACTED***" in entry["message"]


def test_a_pods_health_reads_back_from_its_status_entry() -> None:
    assessed = health.judge([_finding(90), _finding(20)], {"goroutines": 12, "cpuShare": 0.25},
                            generation=2, now=NOW)
    result = PodResult(name="api-1", phase="Completed", key="k", uri="s3://b/k", health=assessed)
    entry = result.as_status()
    assert [c["type"] for c in entry["conditions"]] == ["Healthy"]
    assert entry["findingsTotal"] == 2 and entry["readings"] == {"goroutines": 12, "cpuShare": 0.25}
    assert PodResult.from_status(json.loads(json.dumps(entry))) == result
    assert PodResult.from_status({"name": "x", "phase": "Failed"}).health is None


def test_the_capture_is_unhealthy_with_one_unhealthy_pod_and_healthy_only_when_all_were_analysed() -> None:
    good = health.judge([], {}, generation=1, now=NOW)
    bad = health.judge([_finding(100, kind="cpu-hot"), _finding(90, kind="goroutine-leak")], {}, generation=1,
                       now=NOW)
    sick = health.capture_condition([("a", good), ("b", bad), ("c", None)], generation=1, now=NOW)
    assert (sick["status"], sick["reason"]) == ("False", "UnhealthyPods")
    assert sick["message"] == "1 of 3 pod(s) unhealthy: b (goroutine-leak at main.f90)"
    assert health.capture_condition([("a", good)], generation=1, now=NOW)["status"] == "True"
    assert health.capture_condition([("a", good), ("c", None)], generation=1, now=NOW)["status"] == "Unknown"
    assert health.capture_condition([], generation=1, now=NOW)["reason"] == "NoPods"


def test_the_summary_counts_pods_by_outcome_and_health() -> None:
    good = health.judge([_finding(20)], {}, generation=1, now=NOW)
    bad = health.judge([_finding(100)], {}, generation=1, now=NOW)
    pods = [PodResult(name="a", phase="Completed", health=good), PodResult(name="b", phase="PartiallyFailed",
                                                                           health=bad),
            PodResult(name="c", phase="Failed"),
            # Its upload failed after an analysis (as an earlier release wrote it): not a healthy pod.
            PodResult(name="d", phase="Failed", upload_key="k/d", health=good)]
    assert summary(pods) == {"pods": 4, "captured": 2, "failed": 2, "healthy": 1, "unhealthy": 1,
                             "withFindings": 2, "findings": 2}


@pytest.mark.parametrize(("owners", "labels", "expected"), [
    ([{"kind": "ReplicaSet", "name": "web-7d9f8c", "controller": True}], {"pod-template-hash": "7d9f8c"},
     ("Deployment", "web")),
    ([{"kind": "ReplicaSet", "name": "solo", "controller": True}], {}, ("ReplicaSet", "solo")),
    ([{"kind": "StatefulSet", "name": "db", "controller": True}], {}, ("StatefulSet", "db")),
    ([], {}, ("Pod", "web-7d9f8c-abcde")),
])
def test_a_pods_workload(owners: list[dict[str, object]], labels: dict[str, str],
                         expected: tuple[str, str]) -> None:
    ref = health.pod_ref({"metadata": {"name": "web-7d9f8c-abcde", "uid": "u-1", "labels": labels,
                                       "ownerReferences": owners}})
    assert (ref.kind, ref.workload, ref.uid) == (*expected, "u-1")
