"""The bundle manifest (``manifest.json``) as frozen dataclasses, with JSON in and out.

The capture engine builds :class:`ManifestFields` (what it knows about the capture);
:class:`debugcap.bundle.writer.BundleWriter` adds what only it knows (files, hashes,
redactions) and writes the full :class:`Manifest` last. :mod:`debugcap.bundle.verify`
and the analysis code read it back with :meth:`Manifest.from_json`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

import debugcap
from debugcap.bundle import layout
from debugcap.errors import BundleError

ParamValue: TypeAlias = str | int | float | bool | list[str]


class CollectorStatus(enum.StrEnum):
    OK = "ok"  # every file the collector promises was written
    PARTIAL = "partial"  # some files written, some failed; see message and errors/<collector>.txt
    SKIPPED = "skipped"  # not applicable (no shell in the image, endpoint not served); not a failure
    FAILED = "failed"  # nothing usable; see message and errors/<collector>.txt


def _utc_seconds(when: datetime, what: str) -> datetime:
    if when.tzinfo is None:
        raise BundleError(f"manifest {what} {when.isoformat()} has no time zone; pass an aware datetime")
    # RFC3339 with whole seconds is what the format documents; truncating here keeps
    # to_json/from_json an exact round trip.
    return when.astimezone(UTC).replace(microsecond=0)


def format_time(when: datetime) -> str:
    """RFC3339 UTC with whole seconds: ``2026-11-23T16:00:00Z``."""
    return _utc_seconds(when, "time").strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CaptureInfo:
    name: str
    template: str
    parameters: Mapping[str, ParamValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "template": self.template, "parameters": dict(self.parameters)}


@dataclass(frozen=True)
class TargetInfo:
    namespace: str
    pod: str
    container: str
    node: str | None = None
    image: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "pod": self.pod, "container": self.container,
                "node": self.node, "image": self.image}


@dataclass(frozen=True)
class CollectorRecord:
    name: str
    status: CollectorStatus
    duration_ms: int
    bytes: int = 0
    message: str = ""
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Redaction:
    """Where something was removed. Never holds the removed text."""

    file: str
    line: int  # 1-based; 0 for binary members, where a line means nothing
    redactor: str


@dataclass(frozen=True)
class ManifestFields:
    """What the capture engine knows; the writer adds files and redactions."""

    capture: CaptureInfo
    target: TargetInfo
    started_at: datetime
    finished_at: datetime
    collectors: tuple[CollectorRecord, ...] = ()
    # How the evidence was gathered (``commands``: exec or ephemeral, ``http``: direct, proxy or
    # port-forward, and their details), so a reader knows; ``report`` and ``diff`` do not care.
    access: Mapping[str, str] = field(default_factory=dict)
    # What the target's Go runtime revealed about itself (go_version, GODEBUG, GOMAXPROCS, ...).
    runtime: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    capture: CaptureInfo
    target: TargetInfo
    started_at: datetime
    finished_at: datetime
    collectors: tuple[CollectorRecord, ...]
    files: Mapping[str, FileEntry]
    redactions: tuple[Redaction, ...] = ()
    # Per file and redactor, how many redactions happened in total. `redactions` is capped per
    # file (see redact.MAX_RECORDS_PER_FILE) so a log full of tokens cannot blow up the manifest.
    redaction_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    access: Mapping[str, str] = field(default_factory=dict)
    runtime: Mapping[str, str] = field(default_factory=dict)
    format_version: int = layout.FORMAT_VERSION
    debugcap_version: str = debugcap.__version__

    def __post_init__(self) -> None:
        object.__setattr__(self, "started_at", _utc_seconds(self.started_at, "started_at"))
        object.__setattr__(self, "finished_at", _utc_seconds(self.finished_at, "finished_at"))

    @classmethod
    def build(
        cls,
        fields: ManifestFields,
        *,
        files: Mapping[str, FileEntry],
        redactions: tuple[Redaction, ...] = (),
        redaction_counts: Mapping[str, Mapping[str, int]] | None = None,
    ) -> Manifest:
        return cls(
            capture=fields.capture,
            target=fields.target,
            started_at=fields.started_at,
            finished_at=fields.finished_at,
            collectors=fields.collectors,
            files=dict(files),
            redactions=redactions,
            redaction_counts=dict(redaction_counts or {}),
            access=dict(fields.access),
            runtime=dict(fields.runtime),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "debugcap_version": self.debugcap_version,
            "capture": self.capture.to_dict(),
            "target": self.target.to_dict(),
            "started_at": format_time(self.started_at),
            "finished_at": format_time(self.finished_at),
            "collectors": [
                {
                    "name": c.name,
                    "status": c.status.value,
                    "duration_ms": c.duration_ms,
                    "bytes": c.bytes,
                    "message": c.message,
                    "files": list(c.files),
                }
                for c in self.collectors
            ],
            "files": {path: {"sha256": e.sha256, "size": e.size} for path, e in self.files.items()},
            "redactions": [{"file": r.file, "line": r.line, "redactor": r.redactor} for r in self.redactions],
            "redaction_counts": {f: dict(counts) for f, counts in self.redaction_counts.items()},
            "access": dict(self.access),
            "runtime": dict(self.runtime),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleError(f"{layout.MANIFEST} is not valid JSON ({exc}); the bundle is damaged") from exc
        except RecursionError:
            # A hostile manifest of nested brackets: no manifest nests deeper than a few levels.
            raise BundleError(f"{layout.MANIFEST} nests too deeply to be a manifest; the bundle is damaged "
                              "or hostile") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: object) -> Manifest:
        reader = _Reader(raw, "manifest")
        version = reader.integer("format_version")
        if version != layout.FORMAT_VERSION:
            raise BundleError(
                f"{layout.MANIFEST} has format_version {version}; this debugcap reads version "
                f"{layout.FORMAT_VERSION}; use a debugcap release that matches the bundle"
            )
        capture = reader.obj("capture")
        target = reader.obj("target")
        return cls(
            format_version=version,
            debugcap_version=reader.string("debugcap_version"),
            capture=CaptureInfo(
                name=capture.string("name"),
                template=capture.string("template"),
                parameters=capture.params("parameters"),
            ),
            target=TargetInfo(
                namespace=target.string("namespace"),
                pod=target.string("pod"),
                container=target.string("container"),
                node=target.opt_string("node"),
                image=target.opt_string("image"),
            ),
            started_at=reader.timestamp("started_at"),
            finished_at=reader.timestamp("finished_at"),
            collectors=tuple(
                CollectorRecord(
                    name=c.string("name"),
                    status=c.status("status"),
                    duration_ms=c.integer("duration_ms"),
                    bytes=c.integer("bytes"),
                    message=c.string("message"),
                    files=tuple(c.str_list("files")),
                )
                for c in reader.obj_list("collectors")
            ),
            files={
                path: FileEntry(sha256=e.string("sha256"), size=e.integer("size"))
                for path, e in reader.obj_map("files").items()
            },
            redactions=tuple(
                Redaction(file=r.string("file"), line=r.integer("line"), redactor=r.string("redactor"))
                for r in reader.obj_list("redactions")
            ),
            redaction_counts={
                path: {name: counts.integer(name) for name in counts.keys()}
                for path, counts in reader.obj_map("redaction_counts", required=False).items()
            },
            # Optional: bundles written before they existed have neither.
            access=reader.str_map("access"),
            runtime=reader.str_map("runtime"),
        )


class _Reader:
    """Typed access to untrusted JSON, with errors naming the JSON path of the bad value."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict):
            raise BundleError(f"{layout.MANIFEST}: {where} must be an object; the bundle is damaged")
        self._raw: dict[str, object] = raw
        self._where = where

    def _bad(self, key: str, expected: str) -> BundleError:
        return BundleError(
            f"{layout.MANIFEST}: {self._where}.{key} must be {expected}, got {self._raw.get(key)!r:.80}; "
            f"the bundle is damaged or was not written by debugcap"
        )

    def keys(self) -> list[str]:
        return list(self._raw)

    def string(self, key: str) -> str:
        value = self._raw.get(key)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def opt_string(self, key: str) -> str | None:
        value = self._raw.get(key)
        if value is not None and not isinstance(value, str):
            raise self._bad(key, "a string or null")
        return value

    def integer(self, key: str) -> int:
        value = self._raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._bad(key, "an integer")
        return value

    def timestamp(self, key: str) -> datetime:
        text = self.string(key)
        try:
            when = datetime.fromisoformat(text)
        except ValueError as exc:
            raise self._bad(key, "an RFC3339 time") from exc
        if when.tzinfo is None:
            raise self._bad(key, "an RFC3339 time with a zone")
        return when

    def status(self, key: str) -> CollectorStatus:
        try:
            return CollectorStatus(self.string(key))
        except ValueError as exc:
            raise self._bad(key, "one of " + "|".join(s.value for s in CollectorStatus)) from exc

    def str_list(self, key: str) -> list[str]:
        value = self._raw.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "a list of strings")
        return list(value)

    def params(self, key: str) -> dict[str, ParamValue]:
        value = self._raw.get(key, {})
        if not isinstance(value, dict):
            raise self._bad(key, "an object")
        result: dict[str, ParamValue] = {}
        for name, item in value.items():
            if isinstance(item, str | int | float | bool):
                result[name] = item
            elif isinstance(item, list) and all(isinstance(v, str) for v in item):
                result[name] = list(item)
            else:
                raise self._bad(key, "an object of strings, numbers, booleans or string lists")
        return result

    def str_map(self, key: str) -> dict[str, str]:
        """An optional object of strings; absent is empty."""
        value = self._raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self._bad(key, "an object of strings")
        return dict(value)

    def obj(self, key: str) -> _Reader:
        return _Reader(self._raw.get(key), f"{self._where}.{key}")

    def obj_list(self, key: str) -> list[_Reader]:
        value = self._raw.get(key)
        if not isinstance(value, list):
            raise self._bad(key, "a list")
        return [_Reader(item, f"{self._where}.{key}[{i}]") for i, item in enumerate(value)]

    def obj_map(self, key: str, *, required: bool = True) -> dict[str, _Reader]:
        value = self._raw.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self._bad(key, "an object")
        return {name: _Reader(item, f"{self._where}.{key}[{name!r}]") for name, item in value.items()}
