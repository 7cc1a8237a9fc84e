"""Following a capture: the poll loop on a hand-driven clock, the progress text on a terminal and in
a pipe, `create --wait [--download]` and its exit codes, and `logs`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from debugcap.kubectl_plugin import progress
from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.options import ExitCode, parse_duration

from .capture_fakes import (
    CAPTURES,
    EVENTS,
    FileSource,
    RoutedKube,
    capture,
    forbidden,
    pod_entry,
    serve,
    use,
    write_bundle,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


RUNNING = capture(phase="Running", message="capturing 1 pod(s) of pod api-1",
                  pods=[{"name": "api-1", "phase": "Running"}])
FAILED = capture(phase="Failed", message="0 of 1 pod(s) captured and stored; api-1: port closed",
                 pods=[{"name": "api-1", "phase": "Failed", "message": "port closed"}])


def test_follow_polls_until_the_capture_ends() -> None:
    answers = iter([capture(phase="Pending"), RUNNING, FAILED])
    clock = Clock()
    seen = list(progress.follow(lambda: next(answers), timeout=60, interval=2, clock=clock, sleep=clock.sleep))
    assert [progress.phase_of(o) for o in seen] == ["Pending", "Running", "Failed"] and clock.now == 4


def test_follow_stops_at_its_deadline_saying_how_to_go_on() -> None:
    clock = Clock()
    with pytest.raises(progress.WaitTimeout) as err:
        list(progress.follow(lambda: RUNNING, timeout=5, interval=1, clock=clock, sleep=clock.sleep))
    assert clock.now == 5
    assert str(err.value) == ('debugcapture "cap-1" is still Running after 5s; it goes on in the cluster: follow it '
                              "with kubectl debugcap logs cap-1 -n team -f")


def test_follow_tells_a_deleted_capture() -> None:
    with pytest.raises(progress.CaptureGone, match="deleted while it was followed"):
        list(progress.follow(lambda: None, timeout=None, sleep=lambda s: None))


@pytest.mark.parametrize("bad", ["", "5q", "m", "-1s", "1 m", "+"])
def test_a_bad_wait_timeout_names_the_forms(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a duration; use e.g. 90s"):
        parse_duration(bad)


def test_the_outcome_is_the_exit_code() -> None:
    assert [progress.exit_code(p) for p in ("Completed", "PartiallyFailed", "Failed")] == [0, 5, 3]


def test_piped_progress_is_a_plain_line_per_change() -> None:
    clock = Clock()
    view = progress.ProgressView(tty=False, clock=clock)
    assert view.update(capture(phase="Pending")) == "[   0s] debugcapture/cap-1: Pending\n"
    clock.now = 3
    assert view.update(RUNNING) == ("[   3s] debugcapture/cap-1: Running: capturing 1 pod(s) of pod api-1\n"
                                    "[   3s] pod/api-1: Running, capturing\n")
    clock.now = 4
    assert view.update(RUNNING) == ""  # nothing changed: nothing written
    clock.now = 9
    assert view.update(FAILED) == ("[   9s] debugcapture/cap-1: Failed: 0 of 1 pod(s) captured and stored; api-1: "
                                   "port closed\n[   9s] pod/api-1: Failed: port closed\n")
    assert "\x1b" not in view.update(capture(phase="Completed"))


def test_a_capture_no_operator_takes_up_says_so() -> None:
    clock = Clock()
    view = progress.ProgressView(tty=False, clock=clock)
    fresh = capture()
    del fresh["status"]
    assert view.update(fresh) == "[   0s] debugcapture/cap-1: Pending\n"
    clock.now = 29
    assert view.update(fresh) == ""
    clock.now = 30
    assert view.update(fresh) == ("[  30s] debugcapture/cap-1: Pending: no operator has taken it up in 30s; is "
                                  "one running for this namespace? (kubectl get pods -A -l "
                                  "app.kubernetes.io/name=debugcap)\n")


def test_terminal_progress_redraws_one_live_line_per_pod() -> None:
    clock = Clock()
    view = progress.ProgressView(tty=True, clock=clock, width=71)
    first = view.update(capture(phase="Pending"))
    assert first == "\x1b[2K[   0s] debugcapture/cap-1: Pending\n"
    clock.now = 1
    second = view.update(RUNNING)  # one line up, then the capture's line and its pod's below
    assert second == ("\x1b[1F\x1b[2K[   1s] debugcapture/cap-1: Running: capturing 1 pod(s) of pod api-1\n"
                      "\x1b[2K       pod/api-1: Running for 0s, capturing\n")
    clock.now = 4
    third = view.update(RUNNING)  # the same state: redrawn in place, its time moved on
    assert third == ("\x1b[2F\x1b[2K[   4s] debugcapture/cap-1: Running: capturing 1 pod(s) of pod api-1\n"
                     "\x1b[2K       pod/api-1: Running for 3s, capturing\n")
    clock.now = 6
    last = view.update(capture(pods=[write_bundle_entry()]))
    assert last.startswith("\x1b[2F\x1b[2K[   6s] debugcapture/cap-1: Completed\n")
    pod_line = last.split("\n")[1].removeprefix("\x1b[2K")
    assert pod_line == "       pod/api-1: Completed, bundle s3://debugcap/debugcap/testbed/..."
    assert len(pod_line) == 70  # cut at the width less one: no terminal wraps it, the redraw stays in place


def test_a_line_break_in_a_status_field_cannot_add_lines_to_the_live_view() -> None:
    """A patched status (bundle.uri with line breaks) would print lines the redraw does not count."""
    clock = Clock()
    view = progress.ProgressView(tty=True, clock=clock, width=200)
    entry = write_bundle_entry()
    entry["bundle"]["uri"] = "k\nFAKE: phase Completed\n"
    out = view.update(capture(pods=[entry]))
    assert out.count("\n") == 2 and "k\\x0aFAKE: phase Completed\\x0a" in out


def write_bundle_entry() -> dict[str, Any]:
    key = "debugcap/testbed/team/api-1/2026/12/01/team_api-1_20261201T101500Z.tar.gz"
    return {"name": "api-1", "phase": "Completed",
            "bundle": {"uri": f"s3://debugcap/{key}", "key": key, "sha256": "a" * 64, "sizeBytes": 2048}}


def waiting(monkeypatch: pytest.MonkeyPatch, *states: dict[str, Any]) -> RoutedKube:
    monkeypatch.setattr(progress, "POLL_SECONDS", 0.0)
    answers = list(states)
    return use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": lambda n: answers[min(n - 1, len(answers) - 1)]}))


@pytest.mark.parametrize(("final", "code"), [(capture(pods=[write_bundle_entry()]), ExitCode.OK),
                                             (FAILED, ExitCode.NOTHING_COLLECTED),
                                             (capture(phase="PartiallyFailed", pods=[write_bundle_entry()]),
                                              ExitCode.PARTIALLY_FAILED)])
def test_create_wait_exits_with_the_outcome(monkeypatch: pytest.MonkeyPatch, final: dict[str, Any],
                                            code: int) -> None:
    kube = waiting(monkeypatch, RUNNING, final)
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "-t", "go-heap", "--name", "cap-1", "--wait"])
    assert res.exit_code == code, res.output
    phase = final["status"]["phase"]
    assert res.stdout == f"debugcapture.debugcap.io/cap-1 created\nphase: {phase}\n"
    assert "] pod/api-1: Running, capturing\n" in res.stderr  # CliRunner is no terminal: plain lines
    assert kube.closed and "Traceback" not in res.stderr


def test_create_wait_download_fetches_the_verified_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = write_bundle(tmp_path / "store")
    done = capture(pods=[pod_entry("api-1", written)])
    waiting(monkeypatch, RUNNING, done)
    serve(monkeypatch, FileSource({done["status"]["pods"][0]["bundle"]["key"]: written.path.read_bytes()}))
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--name", "cap-1", "--wait", "--download",
                                   "-d", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    path = tmp_path / "out" / written.path.name
    assert res.stdout.splitlines() == ["debugcapture.debugcap.io/cap-1 created", "phase: Completed", str(path)]
    assert path.read_bytes() == written.path.read_bytes()
    assert f"next: kubectl debugcap report {path}" in res.stderr


def test_create_wait_times_out_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    waiting(monkeypatch, RUNNING)
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--name", "cap-1", "--wait", "--wait-timeout", "0s"])
    assert res.exit_code == 1
    assert res.stderr.splitlines()[-1] == ('Error: debugcapture "cap-1" is still Running after 0s; it goes on in the '
                                           "cluster: follow it with kubectl debugcap logs cap-1 -n team -f")


@pytest.mark.parametrize(("args", "message"), [
    (["--download"], "--download applies with --wait"),
    (["--wait-timeout", "5m"], "--wait-timeout applies with --wait"),
    (["--wait", "--local"], "--wait and --local: pick one"),
    (["--wait", "--download", "--local"], "--wait and --download and --local: pick one"),
    (["--wait", "-o", "yaml"], "--wait and -o/--output: pick one"),
    (["--wait", "--wait-timeout", "soon"], '"soon" is not a duration'),
    (["-d", "out"], "--output-dir only applies with --local"),
])
def test_wait_flags_that_do_not_go_together_are_usage_errors(args: list[str], message: str) -> None:
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--kubeconfig", "/nonexistent", *args])
    assert res.exit_code == 2 and message in res.stderr, res.output


def test_logs_prints_events_then_each_pods_state(monkeypatch: pytest.MonkeyPatch) -> None:
    events = {"items": [
        {"metadata": {"name": "e2"}, "type": "Normal", "reason": "PodCaptured", "message": "pod api-1: Completed",
         "lastTimestamp": "2026-12-01T10:15:09Z"},
        {"metadata": {"name": "e1"}, "type": "Normal", "reason": "CaptureStarted", "message": "capturing 1 pod(s)",
         "lastTimestamp": "2026-12-01T10:15:00Z"}]}
    use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": capture(pods=[write_bundle_entry()]), EVENTS: events}))
    res = CliRunner().invoke(cli, ["logs", "cap-1"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "2026-12-01 10:15:00  Normal   CaptureStarted     capturing 1 pod(s)"
    assert lines[1] == "2026-12-01 10:15:09  Normal   PodCaptured        pod api-1: Completed"
    assert lines[2].endswith("status   phase              Completed")
    assert lines[3].endswith("pod      api-1              Completed, bundle s3://debugcap/debugcap/testbed/team/"
                             "api-1/2026/12/01/team_api-1_20261201T101500Z.tar.gz (2.0 KiB)")


def test_logs_follow_prints_each_change_once_and_ends_with_the_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = waiting(monkeypatch, capture(phase="Pending"), RUNNING, RUNNING, FAILED)
    kube.routes[EVENTS] = forbidden("events")
    res = CliRunner().invoke(cli, ["logs", "cap-1", "-f"])
    assert res.exit_code == 0, res.output
    said = [line.split("  ", 1)[1].split() for line in res.stdout.splitlines()]
    assert [s[:3] for s in said] == [["status", "phase", "Pending"], ["status", "phase", "Running"],
                                     ["pod", "api-1", "Running,"], ["status", "phase", "Failed"],
                                     ["pod", "api-1", "Failed:"]]
    assert res.stderr.count("not allowed to list events") == 1
