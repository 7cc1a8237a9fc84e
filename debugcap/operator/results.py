"""A pod's entry in a DebugCapture's ``status.pods``, as written and as read back.

:class:`PodResult` is built by :mod:`~debugcap.operator.capturing` (a pod captured),
:mod:`~debugcap.operator.pod_scheduling` (a pod never reached) and
:mod:`~debugcap.operator.recovery` (a pod a dead operator left behind), and written by
:mod:`~debugcap.operator.status_writing`. :meth:`PodResult.from_status` reads back exactly what
:meth:`PodResult.as_status` wrote, so recovery has one reader for the one writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from debugcap import errors
from debugcap.bundle import manifest
from debugcap.operator.health import PodHealth


@dataclass(frozen=True)
class PodResult:
    """One pod's entry in ``status.pods``."""

    name: str
    phase: str
    container: str = ""
    node: str = ""
    message: str = ""
    uri: str = ""
    key: str = ""
    sha256: str = ""
    size_bytes: int = 0
    collectors: tuple[Mapping[str, Any], ...] = ()
    # How the evidence was gathered (the manifest's ``access``): exec or an ephemeral container (and
    # whether this capture added it), and the HTTP transport.
    access: Mapping[str, str] = field(default_factory=dict)
    duration_seconds: float = 0.0  # for Events and metrics; not in the status
    # Where the bundle will be stored, written with the pod's Running status before any capture
    # work: an operator that dies between the upload and the status write that lists the bundle
    # leaves this behind, and its successor adopts (or deletes) what it names.
    upload_key: str = ""
    # What the analysis of the stored bundle says (findings, readings, the Healthy condition);
    # None when there was no bundle to analyse.
    health: PodHealth | None = None

    @property
    def verdict(self) -> PodHealth | None:
        """The analysis the capture counts (its summary, its Healthy, the gauges and Events): none
        for a Failed pod, whose upload failed or which collected nothing, even if a status written
        by an earlier release gave it one."""
        return None if self.phase == "Failed" else self.health

    def as_status(self, *, brief: bool = False) -> dict[str, Any]:
        """The entry; ``brief`` leaves out the records of the steps that ended ok (most of a
        debug-full entry's bytes), as the progress writes of a running capture do (status_writing):
        those of the steps that failed, were cut or skipped say why, and stay."""
        entry: dict[str, Any] = {"name": self.name, "phase": self.phase}
        if self.container:
            entry["container"] = self.container
        if self.node:
            entry["node"] = self.node
        if self.message:
            entry["message"] = self.message
        if self.key:
            entry["bundle"] = {"uri": self.uri, "key": self.key, "sha256": self.sha256, "sizeBytes": self.size_bytes}
        elif self.upload_key:
            entry["uploadKey"] = self.upload_key
        kept = [dict(c) for c in self.collectors if not brief or c.get("status") != "ok"]
        if kept:
            entry["collectors"] = kept
        if self.access:
            entry["access"] = dict(self.access)
        if self.health is not None:
            entry.update(self.health.as_status())
        return entry

    @classmethod
    def from_status(cls, entry: Mapping[str, Any]) -> PodResult:
        """The result :meth:`as_status` wrote ``entry`` from (less ``duration_seconds``, which the
        status does not carry, and ``upload_key`` once ``bundle`` replaced it)."""
        bundle = entry.get("bundle") or {}
        return cls(name=str(entry["name"]), phase=str(entry.get("phase", "")),
                   container=str(entry.get("container", "")), node=str(entry.get("node", "")),
                   message=str(entry.get("message", "")), uri=str(bundle.get("uri", "")),
                   key=str(bundle.get("key", "")), sha256=str(bundle.get("sha256", "")),
                   size_bytes=int(bundle.get("sizeBytes", 0)),
                   upload_key="" if bundle.get("key") else str(entry.get("uploadKey", "")),
                   collectors=tuple(dict(c) for c in entry.get("collectors") or []),
                   access={str(k): str(v) for k, v in (entry.get("access") or {}).items()},
                   health=PodHealth.from_status(entry))


def overall(results: Iterable[PodResult]) -> str:
    """The capture's phase from its pods': all Completed, all Failed, or in between."""
    phases = {r.phase for r in results}
    if phases == {"Completed"}:
        return "Completed"
    if phases <= {"Failed"}:
        return "Failed"
    return "PartiallyFailed"


def summary(results: Iterable[PodResult]) -> dict[str, int]:
    """``status.summary``: how the capture's pods ended and what their analysis said; a
    DebugSchedule's ``status.lastRun`` repeats it."""
    listed = list(results)
    assessed = [r.verdict for r in listed if r.verdict is not None]
    return {"pods": len(listed), "captured": sum(1 for r in listed if r.phase != "Failed"),
            "failed": sum(1 for r in listed if r.phase == "Failed"),
            "healthy": sum(1 for h in assessed if h.healthy is True),
            "unhealthy": sum(1 for h in assessed if h.healthy is False),
            "withFindings": sum(1 for h in assessed if h.findings_total),
            "findings": sum(h.findings_total for h in assessed)}


def collector_entries(records: Iterable[manifest.CollectorRecord]) -> tuple[dict[str, Any], ...]:
    """``status.pods[].collectors``: a pod's collector records as the CRD describes them."""
    return tuple({"name": r.name, "status": str(r.status), "bytes": r.bytes, "durationMs": r.duration_ms,
                  **({"message": errors.shorten(r.message)} if r.message else {})} for r in records)
