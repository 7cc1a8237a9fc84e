"""Redact a whole bundle again, for sharing: a new bundle that ``verify`` accepts.

``kubectl debugcap redact BUNDLE`` (for one file or a directory see
:mod:`debugcap.bundle.redact_files`). Every member goes through
:class:`debugcap.bundle.writer.BundleWriter` once more, which applies exactly what a capture
applies (text line-redacted, ``env/environment.txt`` through its allowlist, pprof profiles masked
same-length, traces kept), and writes a fresh ``SHA256SUMS``, ``manifest.json`` and ``.sha256``.
A bundle captured with ``--no-redact`` comes out as if it had been redacted at capture time; one
that was redacted comes out the same, with nothing counted twice.

The input is verified first (:func:`debugcap.bundle.verify.verify`) and refused when it fails:
new checksums over altered evidence would vouch for it. Each member is hashed again as it is
copied and compared with the verified manifest, so a bundle changed between the two passes is
refused too (nothing is kept). The new manifest keeps the capture's fields; collector messages and
string parameters go through the line redactor; the capture's own redaction records are kept
beside the new ones.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Final

from debugcap.bundle import layout, manifest, verify, writer
from debugcap.bundle import redact as redactor
from debugcap.bundle.redact_detectors import Detector
from debugcap.bundle.redact_files import Action, FileResult, RedactionResult
from debugcap.errors import BundleError, ConfigError

_CHUNK: Final = 1024 * 1024


class InputFailsChecks(BundleError):
    """The bundle to redact fails its own checks; ``summary`` is what ``verify`` prints."""

    def __init__(self, source: Path, summary: str) -> None:
        super().__init__(f"{source} fails its checks, so it is not redacted (a redacted copy would carry new "
                         f"checksums over evidence that does not match its own):\n{summary}")
        self.summary = summary


class _HashingReader:
    """A member's content as the writer reads it, hashed on the way."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def chunks(self) -> Iterator[bytes]:
        while data := self._raw.read(_CHUNK):
            self._hash.update(data)
            self.size += len(data)
            yield data

    def entry(self) -> manifest.FileEntry:
        return manifest.FileEntry(sha256=self._hash.hexdigest(), size=self.size)


def redact_message(value: str, report: redactor.RedactionReport, extra: Sequence[Detector]) -> str:
    """One free-text field of a manifest (a collector's message), redacted as the manifest is."""
    redacted = b"".join(redactor.redact_stream([value.encode()], layout.MANIFEST, report, extra))
    return redacted.decode("utf-8", "surrogateescape")


def _fields(earlier: manifest.Manifest, report: redactor.RedactionReport,
            extra: Sequence[Detector]) -> manifest.ManifestFields:
    """The capture's manifest fields, with the free text in them (collector messages, parameters) redacted."""
    return redact_fields(manifest.ManifestFields(
        capture=earlier.capture,
        target=earlier.target,
        started_at=earlier.started_at,
        finished_at=earlier.finished_at,
        collectors=earlier.collectors,
        access=earlier.access,
        runtime=earlier.runtime,
    ), report, extra)


def redact_fields(fields: manifest.ManifestFields, report: redactor.RedactionReport,
                  extra: Sequence[Detector]) -> manifest.ManifestFields:
    """``fields`` with the free text in them (collector messages, string parameters) redacted, the
    ``extra`` (admin) detectors too: a capture applies them before its manifest is written and its
    messages reach a status (debugcap.capture.run), as ``kubectl debugcap redact --patterns`` does."""
    parameters = {k: redact_message(v, report, extra) if isinstance(v, str) else v
                  for k, v in fields.capture.parameters.items()}
    collectors = tuple(replace(c, message=redact_message(c.message, report, extra)) for c in fields.collectors)
    return replace(fields, capture=replace(fields.capture, parameters=parameters), collectors=collectors)


def _relative(name: str) -> str | None:
    """A member's path below the bundle's top directory (None for that directory itself)."""
    while name.startswith("./"):
        name = name[2:]
    _, sep, rel = name.rstrip("/").partition("/")
    return rel if sep and rel else None


def _action(rel: str) -> tuple[Action, str]:
    if rel in layout.TRACES:
        return Action.KEPT, "Go execution trace: kept unredacted, as a capture keeps it"
    if layout.is_gzip_profile(rel):
        return Action.REDACTED, "pprof: string table masked, same length"
    if rel == layout.ENV_ENVIRONMENT:
        return Action.REDACTED, "environment: allowlisted variables only, secret-looking values masked"
    return Action.REDACTED, ""


def redact_bundle(source: Path, out: Path, *, extra: Sequence[Detector] = ()) -> RedactionResult:
    """Write ``out`` (a new ``*.tar.gz`` that must not exist), the redacted copy of bundle ``source``;
    ``extra``: admin patterns (:mod:`debugcap.bundle.redact_custom`) after the built-in detectors."""
    checked = verify.verify(source)
    if any(p.path == layout.MANIFEST and p.kind is verify.ProblemKind.MISSING for p in checked.problems):
        raise ConfigError(f"{source} is an archive but not a debugcap bundle (it has no {layout.MANIFEST}); "
                          "unpack it and redact the directory")
    if not checked.ok or checked.manifest is None:
        raise InputFailsChecks(source, checked.summary())
    earlier = checked.manifest
    text_report = redactor.RedactionReport()
    fields = _fields(earlier, text_report, extra)
    order: list[str] = []
    with writer.BundleWriter(directory=out.parent, name=out.name, mtime=earlier.finished_at.timestamp(),
                             extra_detectors=extra) as w:
        # "r|*": one streaming pass, gzip or plain tar, as verify read it.
        with tarfile.open(source, mode="r|*") as tar:
            for member in tar:
                rel = _relative(member.name)
                if rel is None or member.isdir() or rel in layout.RESERVED:
                    continue
                handle = tar.extractfile(member)
                if not member.isfile() or handle is None or rel not in earlier.files:
                    raise BundleError(f"{source}: member {member.name} changed after the bundle was verified; "
                                      "nothing was written. Verify it again")
                hashing = _HashingReader(handle)
                w.add_stream(rel, hashing.chunks())
                if hashing.entry() != earlier.files[rel]:
                    raise BundleError(f"{source}: {rel} changed after the bundle was verified; nothing was written")
                order.append(rel)
        written = w.finish(fields, earlier=earlier)
        counts = w.redaction_counts
    missing = sorted(set(earlier.files) - set(order) - layout.RESERVED)
    if missing:
        written.path.unlink()
        written.checksum_path.unlink()
        raise BundleError(f"{source}: {', '.join(missing)} vanished after the bundle was verified; nothing was kept")
    results = [FileResult(rel, *_with_rules(rel, counts)) for rel in order]
    if text_report.counts:
        results.append(FileResult(layout.MANIFEST, Action.REDACTED, text_report.counts_dict()[layout.MANIFEST],
                                  "collector messages and capture parameters"))
    return RedactionResult(source, str(written.path), "bundle", tuple(results))


def _with_rules(rel: str, counts: dict[str, dict[str, int]]) -> tuple[Action, dict[str, int], str]:
    action, note = _action(rel)
    return action, counts.get(rel, {}), note
