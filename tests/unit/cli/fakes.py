"""A stand-in for :class:`debugcap.kube.client.Kube` with the raw-JSON methods the plugin uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from debugcap.kubectl_plugin.options import KubeFlags


@dataclass
class FakeKube:
    default_namespace: str = "team"
    get: Callable[[str], Any] = lambda path: {"items": []}
    post: Callable[[str, Any], Any] = lambda path, body: body
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    closed: bool = False

    def get_json(self, path: str) -> Any:
        self.requests.append(("GET", path, None))
        return self.get(path)

    def post_json(self, path: str, body: Any) -> Any:
        self.requests.append(("POST", path, body))
        return self.post(path, body)

    def close(self) -> None:
        self.closed = True


def raising(exc: Exception) -> Callable[..., Any]:
    """An API answer that fails with ``exc``."""
    def answer(*_args: Any) -> Any:
        raise exc
    return answer


def use(monkeypatch: pytest.MonkeyPatch, kube: FakeKube) -> FakeKube:
    """Every command gets ``kube`` instead of loading the kubeconfig."""
    monkeypatch.setattr(KubeFlags, "load", lambda self: kube)
    return kube
