"""The I/O side of the leader election (:mod:`~debugcap.operator.leadership`): the clock it
waits and bounds calls on, and the three Lease calls, through :class:`debugcap.kube.client.Kube`.
Apart so tests replace both with fakes (a fake clock, an in-memory Lease)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeVar

from debugcap import errors
from debugcap.kube.client import Kube, group_path

GROUP: Final = "coordination.k8s.io"
VERSION: Final = "v1"
LEASES: Final = "leases"
T = TypeVar("T")


@dataclass(frozen=True)
class LeaseRecord:
    """The fields of a Lease the election reads and writes (its ``spec``), and its version."""

    holder: str = ""
    lease_duration: float = 0.0
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0
    resource_version: str = ""

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> LeaseRecord:
        spec = obj.get("spec") or {}
        return cls(holder=str(spec.get("holderIdentity") or ""),
                   lease_duration=float(spec.get("leaseDurationSeconds") or 0),
                   acquire_time=str(spec.get("acquireTime") or ""), renew_time=str(spec.get("renewTime") or ""),
                   transitions=int(spec.get("leaseTransitions") or 0),
                   resource_version=str((obj.get("metadata") or {}).get("resourceVersion") or ""))

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"holderIdentity": self.holder or None,
                               "leaseDurationSeconds": max(1, round(self.lease_duration)),
                               "leaseTransitions": self.transitions}
        if self.acquire_time:
            out["acquireTime"] = self.acquire_time
        if self.renew_time:
            out["renewTime"] = self.renew_time
        return out

    def same_as(self, other: LeaseRecord | None) -> bool:
        """Whether nothing the holder writes changed (the version changes on any write)."""
        return other is not None and (self.holder, self.renew_time, self.resource_version) == \
            (other.holder, other.renew_time, other.resource_version)


class ElectionClock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """True once ``stop`` is set, False after ``seconds``."""

    def within(self, fn: Callable[[], T], seconds: float) -> tuple[bool, T | None]:
        """``(True, fn())`` if ``fn`` returned within ``seconds``; ``(False, None)`` once they
        passed, ``fn`` still running."""


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        return stop.wait(max(0.0, seconds))

    def within(self, fn: Callable[[], T], seconds: float) -> tuple[bool, T | None]:
        # A thread, because no timeout of the HTTP client bounds a whole call: urllib3's applies
        # to each connect and each read of a socket, and a server that trickles bytes never trips it.
        out: list[T] = []
        failed: list[BaseException] = []

        def run() -> None:
            try:
                out.append(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                failed.append(exc)

        thread = threading.Thread(target=run, name="lease-call", daemon=True)
        thread.start()
        thread.join(max(0.0, seconds))
        if thread.is_alive():
            return False, None
        if failed:
            raise failed[0]
        return True, out[0]


class LeaseApi(Protocol):
    """The three calls the election needs; :class:`KubeLeases` in the operator, a fake in tests."""

    def read(self, timeout: float) -> LeaseRecord | None: ...

    def create(self, record: LeaseRecord, timeout: float) -> LeaseRecord: ...

    def replace(self, record: LeaseRecord, timeout: float) -> LeaseRecord:
        """Write ``record`` if the Lease is still at ``record.resource_version``; else ConflictError."""


@dataclass
class KubeLeases:
    kube: Kube
    namespace: str
    name: str

    def _path(self, name: str | None = None) -> str:
        return group_path(GROUP, VERSION, LEASES, self.namespace, name)

    def _body(self, record: LeaseRecord) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                "labels": {"app.kubernetes.io/name": "debugcap"}}
        if record.resource_version:
            meta["resourceVersion"] = record.resource_version  # optimistic concurrency: 409 if it moved
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lease", "metadata": meta, "spec": record.spec()}

    def read(self, timeout: float) -> LeaseRecord | None:
        try:
            return LeaseRecord.from_object(self.kube.get_json(self._path(self.name), timeout=timeout) or {})
        except errors.NotFoundError:
            return None

    def create(self, record: LeaseRecord, timeout: float) -> LeaseRecord:
        return LeaseRecord.from_object(self.kube.post_json(self._path(), self._body(record), timeout=timeout))

    def replace(self, record: LeaseRecord, timeout: float) -> LeaseRecord:
        return LeaseRecord.from_object(self.kube.request("PUT", self._path(self.name), body=self._body(record),
                                                         timeout=timeout))
