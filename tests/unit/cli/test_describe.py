"""`kubectl debugcap describe`: the text made from a capture's status and Events, and the command."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from debugcap.kubectl_plugin import describe_lines, describing
from debugcap.kubectl_plugin.cli import cli

from .capture_fakes import CAPTURES, EVENTS, RoutedKube, capture, forbidden, use

NOW = datetime(2026, 12, 1, 10, 20, tzinfo=UTC)
SHA = "ab" * 32


def finished() -> dict[str, Any]:
    key = "debugcap/testbed/team/api-1/2026/12/01/team_api-1_20261201T101500Z.tar.gz"
    obj = capture(pods=[{
        "name": "api-1", "phase": "PartiallyFailed", "container": "app", "node": "n1",
        "message": "1 collector failed",
        "bundle": {"uri": f"s3://debugcap/{key}", "key": key, "sha256": SHA, "sizeBytes": 1536},
        "access": {"commands": "exec", "http": "direct"},
        "collectors": [{"name": "pprof-heap", "status": "ok", "bytes": 100, "durationMs": 3},
                       {"name": "pprof-cpu", "status": "failed", "bytes": 0, "durationMs": 5,
                        "message": "connection refused on :6060"}],
        "conditions": [{"type": "Healthy", "status": "False", "reason": "UnhealthyFindings",
                        "message": "1 finding(s) that make a pod unhealthy"}],
        "findings": [{"kind": "goroutine-leak", "subject": "main.leakWorker", "severity": 90, "level": "high",
                      "message": "4000 goroutines parked"}],
        "findingsTotal": 3, "readings": {"goroutines": 4012}}],
        phase="PartiallyFailed", message="1 of 1 pod(s) captured and stored; api-1: 1 collector failed",
        startTime="2026-12-01T10:15:00Z", completionTime="2026-12-01T10:15:09Z",
        summary={"pods": 1, "captured": 1, "failed": 0, "healthy": 0, "unhealthy": 1, "findings": 3},
        conditions=[{"type": "Ready", "status": "True", "reason": "PartiallyFailed", "message": "done"}],
        firing={"trigger": "api-pre-oom", "reason": "memoryPercentOfLimit", "value": "heap at 83% of the limit",
                "observed": 83.2, "threshold": 80, "time": "2026-12-01T10:14:58Z"})
    return obj


EVENT = {"metadata": {"name": "cap-1.1"}, "type": "Warning", "reason": "PodCaptured",
         "message": "pod api-1: PartiallyFailed in 9s", "lastTimestamp": "2026-12-01T10:15:09Z",
         "source": {"component": "kopf"}}


def test_describe_shows_the_result_bundle_failures_findings_firing_events_and_what_next() -> None:
    text = "\n".join(describing.describe(finished(), [EVENT], NOW))
    for expected in ["Name:           cap-1", "Namespace:      team", "Target:         pod/api-1",
                     "Phase:          PartiallyFailed",
                     "Fired By:       DebugTrigger api-pre-oom: memoryPercentOfLimit, heap at 83% of the limit "
                     "(observed 83.2, threshold 80) at 2026-12-01T10:14:58Z",
                     "Summary:        1 pod(s): 1 captured, 0 failed; 0 healthy, 1 unhealthy; 3 finding(s)",
                     "  Ready   True     PartiallyFailed   done",
                     "    Bundle:     s3://debugcap/debugcap/testbed/team/api-1/2026/12/01/"
                     "team_api-1_20261201T101500Z.tar.gz",
                     "    Size:       1.5 KiB (1536 bytes)", f"    SHA-256:    {SHA}",
                     "    Access:     commands=exec, http=direct",
                     "    Healthy:    False (UnhealthyFindings): 1 finding(s) that make a pod unhealthy",
                     "      pprof-cpu (failed): connection refused on :6060",
                     "    Findings (1 of 3, most serious first):",
                     "      high   goroutine-leak at main.leakWorker: 4000 goroutines parked",
                     "  Warning   PodCaptured   4m51s   kopf   pod api-1: PartiallyFailed in 9s",
                     "  kubectl debugcap download cap-1 -n team"]:
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert "pprof-heap (ok)" not in text  # only the collectors that failed are listed with their reason


def test_a_fresh_capture_describes_with_none_where_nothing_is_known_and_points_at_logs() -> None:
    obj = capture(phase="Pending")
    del obj["status"]
    lines = describing.describe(obj, [], NOW)
    assert "Phase:          Pending" in lines and "Pods:           <none>" in lines
    assert "Events:         <none>" in lines
    assert lines[-1].strip().startswith("kubectl debugcap logs cap-1 -n team -f")


def test_a_failed_capture_with_no_bundle_points_at_the_cause_not_at_download() -> None:
    obj = capture(phase="Failed", pods=[{"name": "api-1", "phase": "Failed", "message": "pprof port 6060 closed"}],
                  message="0 of 1 pod(s) captured and stored")
    text = "\n".join(describing.describe(obj, [], NOW))
    assert "Message:    pprof port 6060 closed" in text
    assert "download" not in text.split("Next:")[1] and "delete cap-1" in text


def test_a_capture_of_several_pods_points_at_a_report_per_pod() -> None:
    obj = finished()
    second = {**obj["status"]["pods"][0], "name": "api-2"}
    obj["status"]["pods"].append(second)
    after = "\n".join(describing.describe(obj, [], NOW)).split("Next:")[1]
    assert "report cap-1 -n team --pod api-1" in after and "report cap-1 -n team --pod api-2" in after


def test_events_the_user_may_not_list_are_a_note_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": finished(), EVENTS: forbidden("events")}))
    res = CliRunner().invoke(cli, ["describe", "cap-1"])
    assert res.exit_code == 0, res.output
    assert 'Events:         <not allowed to list events in namespace "team"' in res.stdout
    assert "Phase:          PartiallyFailed" in res.stdout


def test_describe_reads_the_events_of_this_capture_by_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": finished(), EVENTS: {"items": [EVENT]}}))
    res = CliRunner().invoke(cli, ["describe", "cap-1"])
    assert res.exit_code == 0, res.output
    assert ("GET", EVENTS, [("fieldSelector", "involvedObject.uid=uid-cap-1")]) in kube.requests
    assert "PodCaptured" in res.stdout and kube.closed


def test_describe_o_yaml_prints_the_object(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": finished()}))
    res = CliRunner().invoke(cli, ["describe", "cap-1", "-o", "yaml"])
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.stdout) == finished()


def test_an_unknown_capture_names_the_namespace_and_get(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, RoutedKube({}))
    res = CliRunner().invoke(cli, ["describe", "nope"])
    assert res.exit_code == 1
    assert res.stderr == ('Error: debugcapture "nope" not found in namespace "team"; list them with: '
                          "kubectl debugcap get -n team\n")


def test_events_of_one_second_are_in_the_order_they_happened() -> None:
    # lastTimestamp has whole seconds; eventTime (kopf sets both) has microseconds.
    done = {"reason": "CaptureCompleted", "lastTimestamp": "2026-12-01T10:15:09Z",
            "eventTime": "2026-12-01T10:15:09.700000Z"}
    pod = {"reason": "PodCaptured", "lastTimestamp": "2026-12-01T10:15:09Z", "eventTime": "2026-12-01T10:15:09.200000Z"}
    started = {"reason": "CaptureStarted", "lastTimestamp": "2026-12-01T10:15:00Z"}
    assert [e["reason"] for e in sorted([done, pod, started], key=describe_lines.event_order)] == [
        "CaptureStarted", "PodCaptured", "CaptureCompleted"]
