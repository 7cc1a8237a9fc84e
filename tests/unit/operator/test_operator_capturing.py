"""Storing one pod's bundle: what the status says about it.

Cases: a bundle stored in a local store is named by a ``file:///`` URI of the stored file (the
backend's own ``uri``, not a description of the store), and its scratch directory is removed;
a bundle the store refuses keeps its key listed as ``uploadKey`` (or spooled, is PartiallyFailed);
either way the pod carries the analysis of its bundle (its Healthy, at the capture's generation).
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import operator_fakes
import pytest

from debugcap import delivering
from debugcap.operator import capturing
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
    assert not collected.out_dir.exists()


def test_a_stored_pod_carries_its_bundles_analysis_at_the_captures_generation(
        store: delivering.Store, tmp_path: Path) -> None:
    sent = threading.Event()
    sent.set()
    result = capturing.store_pod(store, _collected(tmp_path), key_sent=sent, generation=3)
    assert result.health is not None
    assert (result.health.status, result.health.generation) == ("True", 3)
    assert result.as_status()["conditions"][0]["type"] == "Healthy"
    # An upload that failed keeps the analysis: the findings are the bundle's, wherever it waits.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "store").write_text("a file where the store's directory should be")
    refused = delivering.Store(local.LocalBackend(tmp_path / "other" / "store"), "debugcap", "testbed",
                               spool.Spool(tmp_path / "other" / "spool"))
    spooled = capturing.store_pod(refused, _collected(tmp_path / "other"), generation=3)
    assert spooled.phase == "PartiallyFailed" and spooled.health is not None


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
