"""One pod's capture when the container restarted, or when the pprof check finds no server.

Cases: the post-mortem of a restart whose new process is not listening yet keeps its bundle (the
previous container's logs, the pod's YAML): the Go steps carry the check's message, which blames
the restart first (and the port second), and the pod ends PartiallyFailed with one message for
them all; a regular capture with other evidence keeps it the same way, naming pprofPort; one with
nothing but Go evidence fails and drops its bundle, naming pprofPort; a container that started
seconds ago is not blamed either. A restart firing on a container waiting in CrashLoopBackOff is
prepared with its Go and exec steps skipped (the reason names the state) and runs its Kubernetes
steps without asking the pod's port anything; any other capture of it fails, naming the state.
"""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import operator_fakes
import pytest

from debugcap import capture as engine
from debugcap import delivering, templates
from debugcap.bundle import manifest
from debugcap.capture.target import ContainerState
from debugcap.collectors import COLLECTORS, base
from debugcap.kube import portforward
from debugcap.operator import capturing, firing_steps
from debugcap.operator.requests import CaptureRequest, parse_spec
from debugcap.operator.results import PodResult
from debugcap.settings import CaptureSettings
from debugcap.storage import local, spool

S = manifest.CollectorStatus
TARGET = base.Target(namespace="shop", pod="api-1", container="app", node="n1", pprof_port=6060, restart_count=3)
REFUSED = "dial tcp 127.0.0.1:6060: connect: connection refused"


def request(reason: str | None) -> CaptureRequest:
    spec: dict[str, Any] = {"target": {"pod": "api-1"}, "template": "go-heap"}
    if reason:
        spec["firing"] = {"trigger": "t", "reason": reason, "value": "restart 3: OOMKilled",
                          "time": "2026-12-04T21:00:00Z"}
    return parse_spec(spec)


class RefusingHttp:
    """A port-forward to a port nothing listens on."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get(self, path: str, sink: io.BytesIO, *, timeout: float, max_bytes: int) -> Any:
        self.asked.append(path)
        raise portforward.Refused(REFUSED)

    def access(self) -> dict[str, str]:
        return {"http": "port-forward"}

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


def record(name: str, status: S, message: str = "") -> manifest.CollectorRecord:
    return manifest.CollectorRecord(name=name, status=status, duration_ms=1, bytes=0, message=message)


def fake_engine(monkeypatch: pytest.MonkeyPatch, records: tuple[manifest.CollectorRecord, ...],
                seen: list[templates.ExpandedTemplate] | None = None) -> None:
    """The engine writes a real bundle in out_dir and comes back with ``records``."""

    def capture(_kube: Any, target: base.Target, template: templates.ExpandedTemplate, *, out_dir: Path,
                **_: Any) -> engine.CaptureOutcome:
        if seen is not None:
            seen.append(template)
        bundle = operator_fakes.write_bundle(out_dir)
        return engine.CaptureOutcome(target=target, bundle=bundle, records=records, phase=engine.phase_of(records))

    monkeypatch.setattr(capturing.engine, "capture", capture)


def collect(tmp_path: Path, req: CaptureRequest, *, state: ContainerState | None = None,
            http: Any = None) -> capturing.Collected | PodResult:
    prepared = capturing.Prepared(target=TARGET, settings=CaptureSettings(), http=http or RefusingHttp(),
                                  commands=None, state=state)  # type: ignore[arg-type]
    template = firing_steps.fired_template(templates.expand("go-heap", collectors=COLLECTORS), req.firing)
    return capturing.collect_pod(None, prepared, req, template, capture_name="cap",  # type: ignore[arg-type]
                                 work_dir=tmp_path / "work", probe_seconds=1.0, abandoned=threading.Event(),
                                 started=operator_fakes.WHEN)


POST_MORTEM = (record("pprof-heap", S.FAILED, REFUSED), record("pprof-goroutine", S.FAILED, REFUSED),
               record("logs", S.OK), record("pod-yaml", S.OK))


def test_a_restarts_post_mortem_keeps_its_bundle_when_the_new_process_is_not_listening_yet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_engine(monkeypatch, POST_MORTEM)
    collected = collect(tmp_path, request("restarted"))
    assert isinstance(collected, capturing.Collected), collected
    assert collected.out_dir.is_dir()  # the previous container's logs and the pod's YAML are still there
    messages = {c["name"]: (c["status"], c.get("message", "")) for c in collected.collectors}
    assert messages["logs"] == ("ok", "") and messages["pod-yaml"] == ("ok", "")
    status, said = messages["pprof-heap"]
    assert status == "failed" and messages["pprof-goroutine"] == messages["pprof-heap"]
    assert "the container restarted" in said and "may not serve pprof yet" in said and "port-forward" in said
    # The young program comes first; the port is named second, as the other possible cause.
    assert said.index("may not serve pprof yet") < said.index("or the port is wrong")
    store = delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", "testbed",
                             spool.Spool(tmp_path / "spool"))
    sent = threading.Event()
    sent.set()
    stored = capturing.store_pod(store, collected, key_sent=sent)
    assert stored.phase == "PartiallyFailed" and stored.key
    assert stored.message.startswith("pprof-heap, pprof-goroutine: spec.parameters.pprofPort: nothing answered on "
                                     "port 6060")
    assert stored.message.count("nothing answered") == 1  # said once for both


def test_a_regular_capture_with_other_evidence_keeps_it_and_names_the_port(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_engine(monkeypatch, POST_MORTEM)
    collected = collect(tmp_path, request(None))
    assert isinstance(collected, capturing.Collected)
    heap = next(c for c in collected.collectors if c["name"] == "pprof-heap")
    assert heap["message"].startswith("spec.parameters.pprofPort: nothing serves /debug/pprof on port 6060")


def test_a_capture_of_nothing_but_go_evidence_fails_and_drops_its_bundle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_engine(monkeypatch, POST_MORTEM[:2])
    failed = collect(tmp_path, request(None))
    assert isinstance(failed, PodResult) and failed.phase == "Failed"
    assert failed.message.startswith("spec.parameters.pprofPort: nothing serves /debug/pprof on port 6060")
    assert not (tmp_path / "work" / "shop" / "cap" / "api-1").exists()


def test_a_container_that_started_seconds_ago_is_not_blamed_on_the_port(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_engine(monkeypatch, POST_MORTEM[:2])
    young = ContainerState(running=True, state="running", started_at=datetime.now(UTC) - timedelta(seconds=5))
    failed = collect(tmp_path, request(None), state=young)
    assert isinstance(failed, PodResult) and failed.phase == "Failed"
    assert "the container started 5 s ago and may not serve pprof yet" in failed.message
    assert failed.message.startswith("spec.parameters.pprofPort: nothing answered")  # the field, still named
    old = ContainerState(running=True, state="running", started_at=datetime.now(UTC) - timedelta(hours=1))
    assert capturing.just_started(old, request(None), datetime.now(UTC)) == ""


CRASHLOOP = {"metadata": {"name": "api-1", "namespace": "shop", "uid": "u1"},
             "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "goapp:1"}]},
             "status": {"phase": "Running", "podIP": "10.0.0.7", "containerStatuses": [{
                 "name": "app", "restartCount": 3, "image": "goapp:1",
                 "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                 "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}}


def prepare(req: CaptureRequest, template: templates.ExpandedTemplate) -> capturing.Prepared | PodResult:
    return capturing.prepare_pod(None, "shop", "api-1", req, template,  # type: ignore[arg-type]
                                 settings=CaptureSettings(http_transport="direct"), read=CRASHLOOP)


def test_a_restart_firing_on_a_crashlooping_container_runs_its_kubernetes_steps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    req = request("restarted")
    template = firing_steps.fired_template(templates.expand("debug-full", collectors=COLLECTORS), req.firing)
    prepared = prepare(req, template)
    assert isinstance(prepared, capturing.Prepared), prepared
    assert prepared.target.restart_count == 3 and prepared.state is not None and not prepared.state.running
    assert prepared.template is not None
    ran = [s.collector for s in prepared.template.steps if not s.skipped]
    assert ran == ["pod-yaml", "events", "node-conditions", "logs"]
    reasons = {s.skipped for s in prepared.template.steps if s.skipped}
    assert reasons == {firing_steps.NOT_RUNNING.format(state="waiting: CrashLoopBackOff")}
    # Collected with that template, and the pod's port is never asked (nothing listens there).
    seen: list[templates.ExpandedTemplate] = []
    fake_engine(monkeypatch, (record("logs", S.OK), record("pod-yaml", S.OK)), seen)
    http = RefusingHttp()
    prepared = capturing.Prepared(target=prepared.target, settings=prepared.settings, http=http,  # type: ignore[arg-type]
                                  commands=prepared.commands, state=prepared.state, template=prepared.template)
    collected = capturing.collect_pod(None, prepared, req, template, capture_name="cap",  # type: ignore[arg-type]
                                      work_dir=tmp_path, probe_seconds=1.0, abandoned=threading.Event(),
                                      started=operator_fakes.WHEN)
    assert isinstance(collected, capturing.Collected)
    assert seen == [prepared.template] and http.asked == []


@pytest.mark.parametrize("reason", [None, "memoryPercentOfLimit", "alert"])
def test_any_other_capture_of_a_container_not_running_fails_naming_its_state(reason: str | None) -> None:
    req = request(reason)
    failed = prepare(req, templates.expand("go-heap", collectors=COLLECTORS))
    assert isinstance(failed, PodResult) and failed.phase == "Failed"
    assert failed.message.startswith('container "app" of pod "shop/api-1" is not running (waiting: CrashLoopBackOff)')
