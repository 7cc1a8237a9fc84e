"""Check a finished bundle against its own manifest, SHA256SUMS and ``.sha256``.

Used by the CLI (``kubectl debugcap verify``), by :mod:`debugcap.storage.spool` before a late
upload and by the e2e tests. One streaming pass over the archive: each member is hashed as it is
read and the bundle file itself is hashed underneath the decompressor, so a 1 GB bundle is read
once and memory stays flat. The manifest comes last in the archive, so comparisons happen after
the pass.
"""

from __future__ import annotations

import enum
import hashlib
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from debugcap.bundle import layout, manifest
from debugcap.errors import BundleError

_CHUNK = 1024 * 1024
_SUMS_LINE = re.compile(r"^(?P<sha>[0-9a-f]{64}) [ *](?P<path>.+)$")


class ProblemKind(enum.StrEnum):
    SHA_MISMATCH = "sha-mismatch"  # content differs from the manifest's sha256
    SIZE_MISMATCH = "size-mismatch"  # length differs from the manifest's size
    MISSING = "missing"  # listed in the manifest, absent from the archive
    UNLISTED = "unlisted"  # in the archive, not listed in the manifest
    SUMS_DISAGREE = "sums-disagree"  # SHA256SUMS and manifest.json say different things
    UNREADABLE = "unreadable"  # manifest.json or SHA256SUMS missing or malformed
    UNEXPECTED_MEMBER = "unexpected-member"  # outside the stem directory, a link, a device...
    DUPLICATE = "duplicate"  # the same path twice in the archive
    COLLECTOR_FILE = "collector-file"  # a collector lists a file the manifest does not


@dataclass(frozen=True)
class Problem:
    path: str
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind.value}: {self.detail}"


@dataclass(frozen=True)
class VerifyResult:
    bundle: Path
    sha256: str  # computed over the bundle file as it is on disk
    # True/False when <bundle>.sha256 exists and matches/does not; None when there is none.
    bundle_checksum_ok: bool | None
    problems: tuple[Problem, ...] = ()
    manifest: manifest.Manifest | None = None
    checked_files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and self.bundle_checksum_ok is not False

    @property
    def failing_paths(self) -> list[str]:
        return sorted({p.path for p in self.problems})

    def summary(self) -> str:
        if self.ok:
            return f"{self.bundle.name}: OK ({self.checked_files} files)"
        lines = [f"{self.bundle.name}: FAILED"]
        if self.bundle_checksum_ok is False:
            lines.append(f"  {self.bundle.name}: bundle sha256 {self.sha256} does not match its .sha256 file")
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class _HashingReader:
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.hash.update(data)
        return data


@dataclass
class _Scan:
    digests: dict[str, manifest.FileEntry] = field(default_factory=dict)
    reserved: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _scan(reader: _HashingReader, stem: str) -> _Scan:
    scan = _Scan()
    # "r|gz" reads strictly sequentially, which is what lets _HashingReader see every byte once.
    with tarfile.open(fileobj=reader, mode="r|gz") as tar:  # type: ignore[call-overload]
        for member in tar:
            name = member.name
            if member.isdir() and name.rstrip("/") == stem:
                continue
            if not name.startswith(stem + "/"):
                scan.problems.append(Problem(name, ProblemKind.UNEXPECTED_MEMBER, f"not under {stem}/"))
                continue
            path = name[len(stem) + 1 :]
            if not member.isfile():
                if not member.isdir():
                    scan.problems.append(
                        Problem(path, ProblemKind.UNEXPECTED_MEMBER, "not a regular file (link or device)")
                    )
                continue
            if path in scan.digests or path in scan.reserved:
                scan.problems.append(Problem(path, ProblemKind.DUPLICATE, "appears more than once"))
            handle = tar.extractfile(member)
            assert handle is not None  # regular files always have content
            if path in (layout.MANIFEST, layout.SHA256SUMS):
                scan.reserved[path] = handle.read()
                continue
            digest = hashlib.sha256()
            size = 0
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
            scan.digests[path] = manifest.FileEntry(sha256=digest.hexdigest(), size=size)
    # tarfile stops at the end-of-archive marker; hash the rest (padding, gzip trailer) too.
    while reader.read(_CHUNK):
        pass
    return scan


def _parse_sums(data: bytes) -> tuple[dict[str, str], list[Problem]]:
    sums: dict[str, str] = {}
    problems: list[Problem] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        match = _SUMS_LINE.match(line)
        if not match:
            problems.append(Problem(layout.SHA256SUMS, ProblemKind.UNREADABLE, f"line {number} is malformed"))
            continue
        sums[match["path"]] = match["sha"]
    return sums, problems


def _read_checksum_file(path: Path, bundle_name: str) -> str | None:
    if not path.exists():
        return None
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    match = _SUMS_LINE.match(text)
    if not match or match["path"].lstrip("*") != bundle_name:
        return ""  # present but unusable: treated as a mismatch
    return match["sha"]


def verify(bundle_path: Path) -> VerifyResult:
    """Verify ``bundle_path``; every failing file is named in ``result.problems``.

    Raises :class:`BundleError` only when the file cannot be read as a tar.gz at all.
    """
    bundle_path = Path(bundle_path)
    stem = layout.stem(bundle_path.name)
    try:
        with bundle_path.open("rb") as raw:
            reader = _HashingReader(raw)
            scan = _scan(reader, stem)
    except FileNotFoundError as exc:
        raise BundleError(f"bundle {bundle_path} does not exist; check the path") from exc
    except (OSError, tarfile.TarError, zlib.error, EOFError) as exc:
        raise BundleError(
            f"bundle {bundle_path} is not a readable tar.gz ({exc}); it is truncated or damaged. "
            f"Fetch it again from storage, or check the spool directory for an intact copy"
        ) from exc
    bundle_sha = reader.hash.hexdigest()
    problems = list(scan.problems)

    expected = _read_checksum_file(
        bundle_path.with_name(layout.checksum_name(bundle_path.name)), bundle_path.name
    )
    checksum_ok = None if expected is None else expected == bundle_sha

    parsed = _manifest_of(scan, problems)
    sums = _sums_of(scan, problems)
    problems += _check_members(scan, parsed, sums)
    problems += _check_lists(parsed, sums)

    return VerifyResult(
        bundle=bundle_path,
        sha256=bundle_sha,
        bundle_checksum_ok=checksum_ok,
        problems=tuple(problems),
        manifest=parsed,
        checked_files=len(scan.digests),
    )


def _manifest_of(scan: _Scan, problems: list[Problem]) -> manifest.Manifest | None:
    raw = scan.reserved.get(layout.MANIFEST)
    if raw is None:
        problems.append(Problem(layout.MANIFEST, ProblemKind.MISSING, "the archive has no manifest"))
        return None
    try:
        return manifest.Manifest.from_json(raw)
    except BundleError as exc:
        problems.append(Problem(layout.MANIFEST, ProblemKind.UNREADABLE, str(exc)))
        return None


def _sums_of(scan: _Scan, problems: list[Problem]) -> dict[str, str] | None:
    raw = scan.reserved.get(layout.SHA256SUMS)
    if raw is None:
        problems.append(Problem(layout.SHA256SUMS, ProblemKind.MISSING, "the archive has no SHA256SUMS"))
        return None
    sums, sum_problems = _parse_sums(raw)
    problems += sum_problems
    return sums


def _check_members(scan: _Scan, parsed: manifest.Manifest | None, sums: dict[str, str] | None) -> list[Problem]:
    """Each member in the archive against the list of what should be there, and the reverse."""
    problems: list[Problem] = []
    listed: dict[str, manifest.FileEntry] = dict(parsed.files) if parsed else {}
    if parsed is None and sums is not None:
        # Without a manifest, SHA256SUMS is the next best list of what should be there.
        listed = {path: manifest.FileEntry(sha256=sha, size=-1) for path, sha in sums.items()}
    for path, actual in scan.digests.items():
        want = listed.get(path)
        if want is None:
            if parsed is not None or sums is not None:
                problems.append(Problem(path, ProblemKind.UNLISTED, "in the archive but not in the manifest"))
        elif actual.sha256 != want.sha256:
            problems.append(Problem(path, ProblemKind.SHA_MISMATCH,
                                    f"sha256 is {actual.sha256}, manifest says {want.sha256}"))
        elif want.size >= 0 and actual.size != want.size:
            problems.append(Problem(path, ProblemKind.SIZE_MISMATCH,
                                    f"size is {actual.size}, manifest says {want.size}"))
    problems += [Problem(path, ProblemKind.MISSING, "listed in the manifest but not in the archive")
                 for path in listed if path not in scan.digests]
    return problems


def _check_lists(parsed: manifest.Manifest | None, sums: dict[str, str] | None) -> list[Problem]:
    """The manifest against SHA256SUMS, and against its own collector records."""
    problems: list[Problem] = []
    if parsed is None:
        return problems
    if sums is not None:
        for path in sorted(set(sums) | set(parsed.files)):
            in_sums, in_manifest = sums.get(path), parsed.files.get(path)
            if in_manifest is None or in_sums != in_manifest.sha256:
                problems.append(Problem(path, ProblemKind.SUMS_DISAGREE,
                                        f"SHA256SUMS says {in_sums or 'nothing'}, "
                                        f"manifest says {in_manifest.sha256 if in_manifest else 'nothing'}"))
    for record in parsed.collectors:
        problems += [Problem(path, ProblemKind.COLLECTOR_FILE, f"listed by collector {record.name} only")
                     for path in record.files if path not in parsed.files]
    return problems
