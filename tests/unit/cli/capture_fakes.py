"""Test doubles for the verbs on captures (describe, download, delete, logs, create --wait): an API
server answering from a dict of paths, a DebugCapture as the operator leaves it, a real bundle."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from debugcap import errors
from debugcap.bundle import layout, manifest, writer
from debugcap.kubectl_plugin.options import KubeFlags

CAPTURES = "/apis/debugcap.io/v1alpha1/namespaces/team/debugcaptures"
EVENTS = "/api/v1/namespaces/team/events"
WHEN = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)


def not_found(what: str) -> errors.NotFoundError:
    return errors.NotFoundError(f"{what} not found", status=404, reason="NotFound", api_message=f'"{what}" not found')


def forbidden(what: str) -> errors.ForbiddenError:
    return errors.ForbiddenError(f"{what} forbidden", status=403, reason="Forbidden", api_message="forbidden")


@dataclass
class RoutedKube:
    """Answers GET and DELETE from ``routes`` (path -> object, exception, or a function of the GET
    count returning either); records every request."""

    routes: dict[str, Any] = field(default_factory=dict)
    default_namespace: str = "team"
    requests: list[tuple[str, str, list[tuple[str, str]]]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    posted: list[Any] = field(default_factory=list)
    closed: bool = False

    def _answer(self, path: str) -> Any:
        if path not in self.routes:
            raise not_found(path.rsplit("/", 1)[-1])
        answer = self.routes[path]
        if callable(answer):  # called with how many GETs of the path there were, this one included
            answer = answer(sum(1 for m, p, _ in self.requests if p == path and m == "GET"))
        if isinstance(answer, Exception):
            raise answer
        return copy.deepcopy(answer)

    def get_json(self, path: str, query: Any = ()) -> Any:
        self.requests.append(("GET", path, list(query)))
        return self._answer(path)

    def post_json(self, path: str, body: Any) -> Any:
        self.requests.append(("POST", path, []))
        self.posted.append(body)
        return body

    def delete(self, path: str, *, missing_ok: bool = False) -> None:
        self.requests.append(("DELETE", path, []))
        self._answer(path)
        self.deleted.append(path)

    def close(self) -> None:
        self.closed = True


def use(monkeypatch: pytest.MonkeyPatch, kube: RoutedKube) -> RoutedKube:
    monkeypatch.setattr(KubeFlags, "load", lambda self: kube)
    return kube


def write_bundle(directory: Path, pod: str = "api-1") -> writer.WrittenBundle:
    """A verifiable bundle of pod team/<pod> started at WHEN."""
    record = manifest.CollectorRecord(name="ps", status=manifest.CollectorStatus.OK, duration_ms=12, bytes=13,
                                      files=("proc/ps.txt",))
    fields = manifest.ManifestFields(
        capture=manifest.CaptureInfo(name="cap-1", template="go-heap", parameters={}),
        target=manifest.TargetInfo(namespace="team", pod=pod, container="app", node="n1", image="img:1"),
        started_at=WHEN, finished_at=WHEN, collectors=(record,))
    directory.mkdir(parents=True, exist_ok=True)
    with writer.BundleWriter(directory=directory, name=layout.bundle_name("team", pod, WHEN)) as w:
        w.add_bytes(layout.PROC_PS, b"root 1 /app\n")
        return w.finish(fields)


def pod_entry(name: str, bundle: writer.WrittenBundle | None = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "phase": "Completed" if bundle else "Failed", **extra}
    if bundle is not None:
        key = f"debugcap/testbed/team/{name}/2026/12/01/{bundle.path.name}"
        entry["bundle"] = {"uri": f"s3://debugcap/{key}", "key": key, "sha256": bundle.sha256,
                           "sizeBytes": bundle.size}
    return entry


def capture(name: str = "cap-1", phase: str = "Completed", pods: list[dict[str, Any]] | None = None,
            **status: Any) -> dict[str, Any]:
    return {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",
            "metadata": {"name": name, "namespace": "team", "uid": f"uid-{name}",
                         "creationTimestamp": "2026-12-01T10:14:00Z", "resourceVersion": "1"},
            "spec": {"target": {"pod": "api-1"}, "template": "go-heap"},
            "status": {"phase": phase, "pods": pods or [], **status}}


class FileSource:
    """A download source serving files by key from a dict; ``served`` counts the fetches."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.served = 0

    def describe(self) -> str:
        return "a dict"

    def fetch(self, ref: Any, dest: Path) -> None:
        self.served += 1
        dest.write_bytes(self.files[ref.key])


def serve(monkeypatch: pytest.MonkeyPatch, source: FileSource) -> FileSource:
    from debugcap.kubectl_plugin import fetching

    monkeypatch.setattr(fetching, "source_for", lambda ref, environ=None, presigned=None, **_: source)
    return source

