"""Storing one pod's bundle: what the status says about it.

Cases: a bundle stored in a local store is named by a ``file:///`` URI of the stored file (the
backend's own ``uri``, not a description of the store), and its scratch directory is removed once
analysed; the bundle is stored before it is analysed, and the analysis reads the local copy (the
pod's Healthy, at the capture's generation, with the operator's trace limit); a spooled bundle, a
refused one and a Failed pod are not analysed; a bundle the store refuses keeps its key listed as
``uploadKey`` (or spooled, is PartiallyFailed); a bundle whose key no status write named is not
uploaded but set aside in the spool, the pod Failed naming where; a bundle whose key holds another
object is said to be set aside, not "sent later".
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import operator_fakes
import pytest

from debugcap import capture as engine
from debugcap import delivering, errors, templates
from debugcap.bundle import manifest
from debugcap.collectors import COLLECTORS, base
from debugcap.operator import capturing, health
from debugcap.operator.requests import parse_spec
from debugcap.operator.results import PodResult
from debugcap.settings import CaptureSettings
from debugcap.storage import base as storage_base
from debugcap.storage import local, spool

WHEN = operator_fakes.WHEN


def _collected(tmp_path: Path) -> capturing.Collected:
    scratch = tmp_path / "work" / "api-1"
    bundle = operator_fakes.write_bundle(scratch)
    target: Any = SimpleNamespace(namespace="shop", pod="api-1", container="app", node="n1")
    outcome: Any = SimpleNamespace(bundle=bundle, phase="Completed", records=(operator_fakes.PS_RECORD,))
    return capturing.Collected(target=target, outcome=outcome, out_dir=scratch,
                               collectors=({"name": "ps", "status": "ok", "bytes": 13, "durationMs": 12},), clock=0.0)


@pytest.fixture
def store(tmp_path: Path) -> delivering.Store:
    return delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", "testbed",
                            spool.Spool(tmp_path / "spool"))


def test_a_bundle_stored_locally_is_named_by_a_file_uri_of_the_stored_file(
        store: delivering.Store, tmp_path: Path) -> None:
    collected = _collected(tmp_path)
    sent = threading.Event()
    sent.set()
    result = capturing.store_pod(store, collected, key_sent=sent)
    assert result.phase == "Completed" and result.key == capturing.planned_key(store, "shop", "api-1", WHEN)
    assert result.uri == (tmp_path / "store" / result.key).as_uri()  # was "file://local directory ..."
    assert Path(result.uri.removeprefix("file://")).is_file()
    capturing.assess_pod(collected, result, generation=1, trace_limit=None)
    assert not collected.out_dir.exists()


def test_the_bundle_is_stored_before_it_is_analysed_and_the_local_copy_is_read(
        store: delivering.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator killed for memory while analysing must not lose the bundle: it is stored first."""
    collected = _collected(tmp_path)
    read: list[tuple[Path, bool, int | None]] = []
    real = health.report.build

    def build(path: Path, **kw: Any) -> Any:
        read.append((Path(path), (tmp_path / "store" / stored.key).is_file(), kw.get("trace_limit")))
        return real(path, **kw)

    monkeypatch.setattr(health.report, "build", build)
    stored = capturing.store_pod(store, collected)
    assert stored.health is None and not read  # the upload does not analyse
    result = capturing.assess_pod(collected, stored, generation=3, trace_limit=4 << 20)
    assert read == [(collected.outcome.bundle.path, True, 4 << 20)]
    assert result.health is not None
    assert (result.health.status, result.health.generation) == ("True", 3)
    assert result.as_status()["conditions"][0]["type"] == "Healthy"
    assert not collected.out_dir.exists()


def test_a_bundle_not_stored_or_a_failed_pod_is_not_analysed(store: delivering.Store, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "store").write_text("a file where the store's directory should be")
    refused = delivering.Store(local.LocalBackend(tmp_path / "other" / "store"), "debugcap", "testbed",
                               spool.Spool(tmp_path / "other" / "spool"))
    collected = _collected(tmp_path / "other")
    spooled = capturing.store_pod(refused, collected)
    assert spooled.phase == "PartiallyFailed"
    assert capturing.assess_pod(collected, spooled, generation=3, trace_limit=None).health is None
    stored = _collected(tmp_path)
    failed = dataclasses.replace(capturing.store_pod(store, stored), phase="Failed")  # nothing useful collected
    assert capturing.assess_pod(stored, failed, generation=3, trace_limit=None).health is None
    assert not stored.out_dir.exists()
    assert PodResult(name="a", phase="Failed", health=health.judge([], {}, generation=1, now=WHEN)).verdict is None


def test_a_bundle_the_store_refuses_is_spooled_and_its_key_stays_listed(
        store: delivering.Store, tmp_path: Path) -> None:
    (tmp_path / "store").write_text("a file where the store's directory should be")
    result = capturing.store_pod(store, _collected(tmp_path))
    assert result.phase == "PartiallyFailed" and "spool" in result.message
    assert not result.key and not result.uri
    assert result.upload_key == capturing.planned_key(store, "shop", "api-1", WHEN)


def test_steps_abandoned_at_the_deadline_are_ended_before_the_pod_is_given_back() -> None:
    """The pod's connections close first (a CPU profile stops with its connection), then the pod
    waits for its abandoned steps, so the next capture of the pod is not refused its profile."""
    order: list[str] = []
    ended = threading.Event()

    class Connections:
        def __init__(self, name: str) -> None:
            self.name = name

        def close(self) -> None:
            order.append(f"close {self.name}")
            if self.name == "port-forward":  # what closing does to a step blocked on the pod: it ends, soon
                threading.Timer(0.2, ended.set).start()

    prepared = capturing.Prepared(target=None, settings=None,  # type: ignore[arg-type]
                                  http=Connections("port-forward"),  # type: ignore[arg-type]
                                  commands=Connections("exec"))  # type: ignore[arg-type]
    capturing._end_abandoned_steps(prepared, ended)
    assert order == ["close exec", "close port-forward"]
    assert ended.is_set()  # it waited for the steps to end (without the wait, the timer has not fired)


def test_a_failing_close_does_not_lose_the_capture() -> None:
    class Broken:
        def close(self) -> None:
            raise OSError("socket already gone")

    ended = threading.Event()
    ended.set()
    prepared = capturing.Prepared(target=SimpleNamespace(namespace="ns", pod="p"), settings=None,  # type: ignore[arg-type]
                                  http=Broken(), commands=Broken())  # type: ignore[arg-type]
    capturing._end_abandoned_steps(prepared, ended)  # logged, not raised


def test_a_pod_that_collected_nothing_says_why_in_its_message(store: delivering.Store, tmp_path: Path) -> None:
    """Every step skipped (a memory firing of a template of commands): Failed, and the message says
    what each step was skipped for, once per reason, instead of nothing."""
    collected = dataclasses.replace(_collected(tmp_path), collectors=(
        {"name": "sockets", "status": "skipped", "message": "no commands"},
        {"name": "resolv-conf", "status": "skipped", "message": "no commands"}))
    collected = dataclasses.replace(collected, outcome=SimpleNamespace(bundle=collected.outcome.bundle, phase="Failed"))
    result = capturing.store_pod(store, collected)
    assert (result.phase, result.message) == ("Failed", "nothing was collected: sockets, resolv-conf: no commands")


def test_a_pod_cut_at_its_deadline_says_so_also_for_steps_that_kept_files(
        store: delivering.Store, tmp_path: Path) -> None:
    """A step cut at the deadline after writing part of its evidence ends partial; the pod's
    message named only failed steps, so a pod whose only cut step kept files did not say it ran
    into its deadline."""
    cut = "abandoned: still running at the capture deadline of 8 s (spec.parameters.deadlineSeconds); ..."
    collected = dataclasses.replace(_collected(tmp_path), collectors=(
        {"name": "ps", "status": "ok"},
        {"name": "pprof-cpu", "status": "partial", "message": cut},
        {"name": "logs", "status": "partial", "message": "cut at 64 MiB"}))
    collected = dataclasses.replace(collected, outcome=SimpleNamespace(bundle=collected.outcome.bundle,
                                                                       phase="PartiallyFailed"))
    result = capturing.store_pod(store, collected)
    assert (result.phase, result.message) == ("PartiallyFailed", f"pprof-cpu: {cut}")


class HangingHttp:
    """A pod that never finishes answering the pprof check (it trickles), until the test ends."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def get(self, path: str, sink: Any, **_: Any) -> Any:
        self.release.wait(30)
        raise errors.CollectorError("closed")

    def access(self) -> dict[str, str]:
        return {"http": "direct"}

    def open(self) -> None:
        pass

    def close(self) -> None:
        self.release.set()


def test_a_capture_cut_at_its_deadline_does_not_wait_for_the_pprof_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check still waiting at the deadline proves nothing (a refusal comes at once); waiting for
    it held the pod's result back by up to probe_seconds (+5 s) after the deadline."""
    cut = manifest.CollectorRecord(name="pprof-heap", status=manifest.CollectorStatus.FAILED, duration_ms=1,
                                   bytes=0, message="abandoned: still running at the capture deadline of 2 s")

    def capture(_kube: Any, target: Any, _template: Any, *, out_dir: Path, **_: Any) -> engine.CaptureOutcome:
        bundle = operator_fakes.write_bundle(out_dir)
        records = (cut, operator_fakes.PS_RECORD)
        return engine.CaptureOutcome(target=target, bundle=bundle, records=records, phase=engine.phase_of(records))

    monkeypatch.setattr(capturing.engine, "capture", capture)
    http = HangingHttp()
    target = base.Target(namespace="shop", pod="api-1", container="app", node="n1", pprof_port=6060)
    prepared = capturing.Prepared(target=target, settings=CaptureSettings(), http=http,  # type: ignore[arg-type]
                                  commands=http)  # type: ignore[arg-type]
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(capturing.collect_pod(
        None, prepared, parse_spec({"target": {"pod": "api-1"}, "template": "go-heap"}),  # type: ignore[arg-type]
        templates.expand("go-heap", collectors=COLLECTORS), capture_name="cap", work_dir=tmp_path / "work",
        probe_seconds=3600.0, abandoned=threading.Event(), started=WHEN)), daemon=True)
    try:
        thread.start()
        thread.join(10.0)  # a guard only: without the change it waits out the check's 3600 s
        assert got, "the pod's result waited for the pprof check past the deadline"
    finally:
        http.release.set()
    [collected] = got
    assert isinstance(collected, capturing.Collected) and capturing.cut_at_deadline(collected.outcome.records)


def test_a_bundle_whose_key_no_status_write_named_is_not_uploaded_but_kept_in_the_spool(
        store: delivering.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing would ever adopt or delete a bundle under a key no status names: it is set aside,
    never sent, and the pod's message (and a log line) says where."""
    monkeypatch.setattr(capturing, "KEY_SENT_SECONDS", 0.0)  # the wait gives up at once
    collected = _collected(tmp_path)
    result = capturing.store_pod(store, collected, key_sent=threading.Event())  # never set: no write succeeded
    key = capturing.planned_key(store, "shop", "api-1", WHEN)
    assert not (tmp_path / "store" / key).exists()
    assert result.phase == "Failed" and not result.key
    assert result.upload_key == key  # listed, should a later write carry it: the capture's expiry removes the copy
    [kept] = store.spool.held()
    assert kept.key == key and kept.sha256 == collected.outcome.bundle.sha256
    assert f"no status write naming its key {key} succeeded" in result.message
    assert f"kept at {kept.path}" in result.message and "never sent" in result.message
    assert not store.spool.entries()  # no flush sends it
    assert not collected.out_dir.exists()


def test_a_bundle_whose_key_holds_another_object_is_reported_not_uploaded(
        store: delivering.Store, tmp_path: Path) -> None:
    key = capturing.planned_key(store, "shop", "api-1", WHEN)
    other = tmp_path / "other.tar.gz"
    other.write_bytes(b"another object")
    store.backend.put(key=key, path=other, sha256=storage_base.file_sha256(other)[0])
    sent = threading.Event()
    sent.set()
    result = capturing.store_pod(store, _collected(tmp_path), key_sent=sent)
    [held] = store.spool.held()
    assert held.key == key and not store.spool.entries()
    assert result.message.startswith(f"not uploaded: its key holds another object (not replaced); the bundle is "
                                      f"set aside at {held.path}, never sent: ")
    assert "sent later" not in result.message and result.phase == "PartiallyFailed"
    assert not result.key and result.upload_key == key  # the capture's expiry removes the held copy

