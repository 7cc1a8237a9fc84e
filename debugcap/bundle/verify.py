"""Check a finished bundle against its own manifest, SHA256SUMS and ``.sha256``.

Used by the CLI (``kubectl debugcap verify``), by :mod:`debugcap.storage.spool` before a late
upload, by the e2e tests, and by :mod:`debugcap.analysis.bundle_reading`, which reads every
bundle through the same pass (:func:`scan_archive` or :func:`scan_directory`, then :func:`check`)
so that no analysis trusts a member that fails its checksum.

One streaming pass over the archive (:mod:`debugcap.bundle.archive`): each member is hashed as it
is read and the bundle file itself is hashed underneath the decompressor, so a 1 GB bundle is read
once and memory stays flat; a caller may keep small members' bytes to spare itself a second read.
The manifest comes last in the archive, so comparisons happen after the pass. An archive damaged
part-way ends the pass with a ``damaged`` problem naming the member being read (or, when the
damage falls between members, the one before it); what was read before it stays in the scan.
manifest.json and SHA256SUMS are kept for the checks up to :data:`RESERVED_MAX` each: past that
they are ``unreadable``, so a hostile bundle cannot make the checks hold gigabytes.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from debugcap.bundle import archive, layout, manifest, unpacked
from debugcap.errors import BundleError

_CHUNK = archive.CHUNK
# Members are read in smaller pieces than the file: where an archive breaks is then told to 64 KiB.
_MEMBER_CHUNK = 64 * 1024
_SUMS_LINE = re.compile(r"^(?P<sha>[0-9a-f]{64}) [ *](?P<path>.+)$")
# A bundle's .sha256 as sha256sum writes it, by hand too: either case of hex, "*" for binary mode,
# a leading backslash when the name is escaped, or the BSD form of `sha256sum --tag`.
_CHECKSUM_LINE = re.compile(r"^\\?(?P<sha>[0-9a-fA-F]{64}) [ *](?P<path>.+)$")
_CHECKSUM_TAG = re.compile(r"^\\?SHA256 \((?P<path>.+)\) = (?P<sha>[0-9a-fA-F]{64})$")
_CHECKSUM_FILE_MAX = 64 * 1024  # a .sha256 holds a line or a few; more is not read
# manifest.json and SHA256SUMS are kept in memory for the checks: a capture's are a few hundred kB
# (1000 redactions per file at most), so 16 MiB is far beyond any real one and bounds a hostile one.
RESERVED_MAX = 16 << 20

# The path a problem with the archive's own gzip checksum is filed under: no member is to blame.
GZIP_TRAILER = "(gzip trailer)"

# Decides, from a member's path (as archived) and size, whether the scan keeps its bytes for the caller.
Keep = Callable[[str, int], bool]


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
    DAMAGED = "damaged"  # the archive cannot be read past this member (cut short, corrupt data or header)


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
    notes: tuple[str, ...] = ()  # worth knowing, no failure (a .sha256 naming the bundle by another name)

    @property
    def ok(self) -> bool:
        return not self.problems and self.bundle_checksum_ok is not False

    @property
    def failing_paths(self) -> list[str]:
        return sorted({p.path for p in self.problems})

    def summary(self) -> str:
        if self.ok:
            return f"{self.bundle.name}: OK ({'; '.join([f'{self.checked_files} files', *self.notes])})"
        lines = [f"{self.bundle.name}: FAILED"]
        if self.bundle_checksum_ok is False:
            lines.append(f"  {self.bundle.name}: bundle sha256 {self.sha256} does not match its .sha256 file")
        lines += [f"  {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class Scan:
    """What one pass over a bundle found. Paths are relative to the stem once the pass is over."""

    digests: dict[str, manifest.FileEntry] = field(default_factory=dict)  # complete members, reserved ones aside
    reserved: dict[str, bytes] = field(default_factory=dict)  # manifest.json and SHA256SUMS as read
    problems: list[Problem] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # member paths as archived, the damaged one included
    offsets: dict[str, int] = field(default_factory=dict)  # where a complete member's data starts in the tar
    kept: dict[str, bytes] = field(default_factory=dict)  # what Keep asked for, plus the reserved members
    oversized: set[str] = field(default_factory=set)  # reserved members over RESERVED_MAX: not kept
    # The member the damage cut: where its data starts in the tar, how many of its bytes precede the
    # damage, and its size.
    partial: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    sha256: str = ""  # of the bundle file (archives only)
    stem: str = ""  # the top directory the paths are relative to (archives only)
    compressed: bool = False
    headers_read: int = 0  # 0 with a damaged problem: nothing of the file could be read as an archive

    @property
    def damaged(self) -> Problem | None:
        return next((p for p in self.problems if p.kind is ProblemKind.DAMAGED), None)

    @property
    def stopped(self) -> bool:
        """The pass ended at damage before the end of the archive: what followed it is unknown."""
        return any(p.kind is ProblemKind.DAMAGED and p.path != GZIP_TRAILER for p in self.problems)


def _normalized(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def _refused(member: tarfile.TarInfo, name: str) -> str:
    """Why a member is not read ("" when it is): a name that leaves the bundle directory, a link, a device."""
    if name.startswith("/") or ".." in name.split("/"):
        return "its name leaves the bundle directory (absolute or ..): not read"
    if member.isfile() or member.isdir():
        return ""
    return f"not a regular file ({'a link' if member.issym() or member.islnk() else 'a device or fifo'}): not read"


def _reserved_candidate(name: str, tops: set[str]) -> bool:
    # The stem is not known until the pass is over: keep a manifest.json or SHA256SUMS at the top,
    # or under the stem the caller names or the top directory of the first member (the only ones
    # that can turn out to be the stem), and pick the right one afterwards. A few, each within
    # RESERVED_MAX.
    parts = name.split("/")
    return parts[-1] in (layout.MANIFEST, layout.SHA256SUMS) and (len(parts) == 1 or (len(parts) == 2
                                                                                     and parts[0] in tops))


def _consume(read: Callable[[int], bytes], chunk: int, keep_max: int) -> tuple[manifest.FileEntry, bytes | None]:
    """Hash what ``read`` yields to its end; its bytes too while they stay within ``keep_max`` (<0: none)."""
    digest, kept, size = hashlib.sha256(), bytearray(), 0
    keeping = keep_max >= 0
    while data := read(chunk):
        digest.update(data)
        size += len(data)
        if keeping and size > keep_max:
            keeping, kept = False, bytearray()  # a member larger than it said: keep nothing of it
        elif keeping:
            kept += data
    return manifest.FileEntry(sha256=digest.hexdigest(), size=size), bytes(kept) if keeping else None


def _keep_max(name: str, size: int, tops: set[str], keep: Keep | None) -> int:
    """How many bytes of a member to keep: a reserved one up to RESERVED_MAX, another if Keep wants it."""
    if _reserved_candidate(name, tops):
        return RESERVED_MAX if size <= RESERVED_MAX else -1
    return size if keep is not None and keep(name, size) else -1


def _read_members(stream: archive.ArchiveStream, scan: Scan, keep: Keep | None, stem: str | None) -> None:
    """Every member into ``scan`` until the end or the first damage (recorded, not raised)."""
    current, offset, want, last = "", 0, 0, ""
    tops = {stem} if stem else set()
    try:
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=archive.StrictTarInfo) as tar:  # type: ignore[call-overload]
            for member in tar:
                scan.headers_read += 1
                name = _normalized(member.name)
                if why := _refused(member, name):
                    scan.problems.append(Problem(name, ProblemKind.UNEXPECTED_MEMBER, why))
                    continue
                if member.isdir() or not name:
                    continue
                if name in scan.offsets:
                    scan.problems.append(Problem(name, ProblemKind.DUPLICATE, "appears more than once"))
                if len(scan.order) == 0:
                    tops.add(name.split("/", 1)[0])
                current, offset, want = name, member.offset_data, member.size
                scan.order.append(name)
                handle = tar.extractfile(member)
                assert handle is not None  # regular files always have content
                entry, kept = _consume(handle.read, _MEMBER_CHUNK, _keep_max(name, member.size, tops, keep))
                scan.digests[name], scan.offsets[name] = entry, offset
                if kept is not None:
                    scan.kept[name] = kept
                else:
                    scan.kept.pop(name, None)  # a duplicate's earlier bytes are not this member's
                current, last = "", name
            stream.finish()
    except (archive.ArchiveDamage, tarfile.TarError, EOFError, OSError) as exc:
        # tarfile's own words ("unexpected end of data") only repeat that the stream ended early.
        why = str(stream.damage or exc)
        if current:
            # Every byte decompressed before the damage counts, not only what tarfile handed on.
            readable = min(want, max(stream.produced - offset, 0))
            scan.partial[current] = (offset, readable, want)
            where, detail = current, f"{why} (the first {readable} of its {want} bytes were read)"
        else:
            where, detail = (f"(after {last})", f"{why} after member {last}") if last else ("(start)", why)
        scan.problems.append(Problem(where, ProblemKind.DAMAGED, detail))
        stream.drain()


def scan_archive(bundle: Path, *, stem: str | None = None, keep: Keep | None = None) -> Scan:
    """One pass over a bundle archive (tar.gz, or plain tar); damage is a problem, not an exception.

    ``stem`` is the top directory members must be under (``verify`` takes it from the file
    name); None infers it, as a reader of a renamed bundle must: the one top directory every
    member shares, if they share one. Raises OSError when the file cannot be opened.
    """
    scan = Scan()
    with Path(bundle).open("rb") as raw:
        try:
            stream = archive.ArchiveStream(raw)
        except archive.ArchiveDamage as exc:
            scan.problems.append(Problem("(start)", ProblemKind.DAMAGED, str(exc)))
            scan.sha256 = _rest_hash(raw)
            return scan
        scan.compressed = stream.compressed
        _read_members(stream, scan, keep, stem)
        if stream.trailer_error:
            scan.problems.append(Problem(GZIP_TRAILER, ProblemKind.DAMAGED, stream.trailer_error))
        scan.sha256 = stream.hash.hexdigest()
    _relativize(scan, stem)
    return scan


def _rest_hash(raw: BinaryIO) -> str:
    raw.seek(0)
    digest = hashlib.sha256()
    while chunk := raw.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _too_large(path: str, size: int) -> Problem:
    what = "a manifest" if path == layout.MANIFEST else "a checksum list"
    return Problem(path, ProblemKind.UNREADABLE,
                   f"too large ({size / (1 << 20):.0f} MiB; {what} is at most {RESERVED_MAX >> 20} MiB)")


def _relativize(scan: Scan, stem: str | None) -> None:
    """Member names as archived -> paths relative to the stem; members outside it are named.

    A stem none of the members is under, when they all share another top directory, gives way to
    that one: the bundle was renamed (``scan.stem`` then differs from the one asked for)."""
    names = list(dict.fromkeys(scan.order))
    if stem is None or not any(n.startswith(f"{stem}/") for n in names):
        tops = {n.split("/", 1)[0] for n in names}
        inferred = tops.pop() if len(tops) == 1 and all("/" in n for n in names) else ""
        stem = inferred if stem is None else inferred or stem
    scan.stem = stem
    prefix = f"{stem}/" if stem else ""

    def rel(name: str) -> str | None:
        return name[len(prefix):] if name.startswith(prefix) else None

    def rel_path(path: str) -> str:
        if path.startswith("(after ") and path.endswith(")"):
            return f"(after {rel_path(path[7:-1])})"
        return rel(path) or path

    def rel_detail(p: Problem) -> str:
        return p.detail.replace(f"after member {prefix}", "after member ") if prefix else p.detail

    outside = [n for n in names if rel(n) is None]
    scan.problems = [Problem(rel_path(p.path), p.kind, rel_detail(p)) for p in scan.problems]
    scan.problems += [Problem(n, ProblemKind.UNEXPECTED_MEMBER, f"not under {stem}/") for n in outside]
    scan.order = [r for n in scan.order if (r := rel(n)) is not None]
    scan.offsets = {r: v for n, v in scan.offsets.items() if (r := rel(n)) is not None}
    scan.kept = {r: v for n, v in scan.kept.items() if (r := rel(n)) is not None}
    scan.partial = {r: v for n, v in scan.partial.items() if (r := rel(n)) is not None}
    digests = {r: v for n, v in scan.digests.items() if (r := rel(n)) is not None}
    _set_reserved(scan, digests)


def _set_reserved(scan: Scan, digests: dict[str, manifest.FileEntry]) -> None:
    """manifest.json and SHA256SUMS apart from the other members: kept, or too large to be."""
    for path in (layout.MANIFEST, layout.SHA256SUMS):
        if path in digests and path in scan.kept:
            scan.reserved[path] = scan.kept[path]
        elif path in digests:
            scan.oversized.add(path)
            scan.problems.append(_too_large(path, digests[path].size))
    scan.digests = {p: e for p, e in digests.items() if p not in (layout.MANIFEST, layout.SHA256SUMS)}


def scan_directory(root: Path, *, keep: Keep | None = None) -> Scan:
    """The same pass over an unpacked bundle: every regular file under ``root`` (its stem directory);
    links, devices and fifos are ``unexpected-member`` problems, never followed (:mod:`unpacked`)."""
    scan = Scan()
    digests: dict[str, manifest.FileEntry] = {}
    regular, other = unpacked.entries(Path(root))
    scan.problems += [Problem(rel, ProblemKind.UNEXPECTED_MEMBER, "not a regular file (a link, device or fifo): "
                              "not followed, not read") for rel in other]
    for rel in regular:
        scan.order.append(rel)
        with unpacked.open_regular(Path(root) / rel) as fh:
            size = os.fstat(fh.fileno()).st_size
            digests[rel], kept = _consume(fh.read, _CHUNK, _keep_max(rel, size, set(), keep))
        if kept is not None:
            scan.kept[rel] = kept
    _set_reserved(scan, digests)
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


def _read_checksum_file(path: Path, bundle_name: str) -> tuple[str | None, str]:
    """(the SHA-256 the ``.sha256`` beside a bundle records, lower case, or None when there is
    none, or "" when it records none usable; a note on it, or "").

    The hash is what is checked. The name beside it is at most a note: a bundle renamed with its
    .sha256 (``api.tar.gz``), or a line written as ``sha256sum dir/x.tar.gz``, is still the bundle."""
    try:
        with path.open("rb") as fh:
            text = fh.read(_CHECKSUM_FILE_MAX).decode("utf-8", "replace")
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return "", f"{path.name} cannot be read ({exc.strerror or exc})"
    lines = [m for line in text.splitlines() if (m := _CHECKSUM_LINE.match(line) or _CHECKSUM_TAG.match(line))]
    named = [m for m in lines if _basename(m["path"]) == bundle_name]
    if named or len(lines) == 1:
        found = (named or lines)[0]
        note = "" if named else (f"{path.name} names the bundle {_basename(found['path'])}, not {bundle_name} "
                                 "(renamed?); its hash is what was compared")
        return found["sha"].lower(), note
    if not lines:
        return "", f"{path.name} holds no `<sha256>  <name>` line"
    return "", f"{path.name} lists {len(lines)} files, none of them {bundle_name}"


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def verify(bundle_path: Path) -> VerifyResult:
    """Verify ``bundle_path``; every failing file is named in ``result.problems``.

    An archive damaged part-way (cut short, corrupt data) is a ``damaged`` problem naming the
    member at the damage. Raises :class:`BundleError` only when nothing of the file can be read
    as a tar.gz at all.
    """
    bundle_path = Path(bundle_path)
    stem = layout.stem(bundle_path.name)
    try:
        scan = scan_archive(bundle_path, stem=stem)
    except FileNotFoundError as exc:
        raise BundleError(f"bundle {bundle_path} does not exist; check the path") from exc
    except OSError as exc:
        raise BundleError(f"bundle {bundle_path} cannot be read: {exc.strerror or exc}") from exc
    damage = scan.damaged
    if damage is not None and not scan.headers_read:
        raise BundleError(
            f"bundle {bundle_path} is not a readable tar.gz ({damage.detail}); it is truncated or damaged. "
            f"Fetch it again from storage, or check the spool directory for an intact copy"
        )
    result = check(bundle_path, scan, own_checksum=True)
    if scan.stem != stem:
        # Renamed (api.tar.gz): its members are all under the one directory, just not the name's.
        renamed = f"its members are under {scan.stem}/, not {stem}/ as its file name says (renamed?)"
        result = replace(result, notes=(renamed, *result.notes))
    return result


def check(bundle_path: Path, scan: Scan, *, own_checksum: bool) -> VerifyResult:
    """Compare what ``scan`` found with the bundle's manifest and SHA256SUMS (and, with
    ``own_checksum``, the archive with the ``<bundle>.sha256`` beside it)."""
    problems = list(scan.problems)
    checksum_ok, note = None, ""
    if own_checksum:
        expected, note = _read_checksum_file(
            bundle_path.with_name(layout.checksum_name(bundle_path.name)), bundle_path.name
        )
        checksum_ok = None if expected is None else expected == scan.sha256
    parsed = _manifest_of(scan, problems)
    sums = _sums_of(scan, problems)
    problems += _check_members(scan, parsed, sums)
    problems += _check_lists(parsed, sums)
    return VerifyResult(
        bundle=bundle_path,
        sha256=scan.sha256,
        bundle_checksum_ok=checksum_ok,
        problems=tuple(problems),
        manifest=parsed,
        checked_files=len(scan.digests),
        notes=(note,) if note else (),
    )


def _manifest_of(scan: Scan, problems: list[Problem]) -> manifest.Manifest | None:
    raw = scan.reserved.get(layout.MANIFEST)
    if raw is None and layout.MANIFEST in scan.oversized:
        return None  # its problem is the scan's
    if raw is None:
        problems.append(Problem(layout.MANIFEST, ProblemKind.MISSING, _absent(scan, "the archive has no manifest")))
        return None
    try:
        return manifest.Manifest.from_json(raw)
    except BundleError as exc:
        problems.append(Problem(layout.MANIFEST, ProblemKind.UNREADABLE, str(exc)))
        return None


def _absent(scan: Scan, why: str) -> str:
    # Past damage that stopped the pass, absent means unread: it may be in the lost part.
    return "not read: the archive is damaged before it" if scan.stopped else why


def _sums_of(scan: Scan, problems: list[Problem]) -> dict[str, str] | None:
    raw = scan.reserved.get(layout.SHA256SUMS)
    if raw is None and layout.SHA256SUMS in scan.oversized:
        return None
    if raw is None:
        problems.append(Problem(layout.SHA256SUMS, ProblemKind.MISSING, _absent(scan, "the archive has no SHA256SUMS")))
        return None
    sums, sum_problems = _parse_sums(raw)
    problems += sum_problems
    return sums


def _check_members(scan: Scan, parsed: manifest.Manifest | None, sums: dict[str, str] | None) -> list[Problem]:
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
    problems += [Problem(path, ProblemKind.MISSING, _absent(scan, "listed in the manifest but not in the archive"))
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
