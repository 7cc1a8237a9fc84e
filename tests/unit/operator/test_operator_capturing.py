"""Storing one pod's bundle: what the status says about it.

Cases: a bundle stored in a local store is named by a ``file:///`` URI of the stored file (the
backend's own ``uri``, not a description of the store), and its scratch directory is removed once
analysed; the bundle is stored before it is analysed, and the analysis reads the local copy (the
pod's Healthy, at the capture's generation, with the operator's trace limit); a spooled bundle, a
refused one and a Failed pod are not analysed; a bundle the store refuses keeps its key listed as
``uploadKey`` (or spooled, is PartiallyFailed).
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import operator_fakes
import pytest

from debugcap import delivering
from debugcap.operator import capturing, health
from debugcap.operator.results import PodResult
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
