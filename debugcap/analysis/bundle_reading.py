"""Read files out of a bundle, packed (``.tar.gz``) or unpacked, once its checksums are checked.

Callers: :mod:`debugcap.analysis.report` and :mod:`debugcap.analysis.sections`, and the
``report``/``diff``/``top``/``goroutines`` commands (:func:`require_bundle`).
Paths are relative to the bundle's top directory (the *stem*) and come from
:mod:`debugcap.bundle.layout`; every file may be missing. :class:`Reading` adds what every
analysis of a bundle needs: a broken file becomes a problem line and a known empty or failed
capture a hint, never a crash.

Opening a bundle reads it once through :mod:`debugcap.bundle.verify`, the pass behind
``kubectl debugcap verify``: every member is hashed as it streams by and compared with the
manifest, and members up to :data:`KEEP_MEMBER_MAX` are kept in memory, so the analyses do not
decompress them a second time. A bundle that fails its checks is refused, naming its first bad
member (:class:`CheckFailedError`), unless ``force``: then whatever is readable is read and
:attr:`BundleReader.unverified` says why it cannot be trusted, a line :class:`Reading` puts first
among its problems. What fails the checks:

- a member whose sha256 or size differs from the manifest's, one listed but absent, one twice,
  the manifest and SHA256SUMS disagreeing, the bundle's own ``.sha256`` not matching;
- an archive cut short or corrupt (compressed data, a tar header, the gzip CRC-32): the members
  before the damage stay readable, and so do the bytes of the member it cut that precede it
  (:meth:`BundleReader.read_damaged`); members after it are :meth:`BundleReader.lost`, not missing;
- in a bundle with SHA256SUMS (one debugcap wrote), a manifest.json or SHA256SUMS that does not
  parse; in any bundle, one too large to be a manifest (:data:`verify.RESERVED_MAX`);
- a packed archive without manifest.json, which is no bundle at all (:class:`NotABundleError`).

Members the manifest does not list and a missing SHA256SUMS are no failure: bundles put together
by hand (and by the tests) list no files, and reading them is what they are for. For the same
reason an unpacked directory without manifest.json is read as it is; the commands refuse it
first (:func:`require_bundle`).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Final, TypeVar

from debugcap import errors
from debugcap.analysis import goroutines, hints, inputs
from debugcap.bundle import layout, manifest, unpacked, verify
from debugcap.formats import pprof as pprof_format

T = TypeVar("T")

# Members kept in memory by the checking pass; larger ones (traces, 64 MiB goroutine dumps) are
# decompressed again when read. 16 MiB holds every profile of a normal capture; the total bounds
# what a bundle of many mid-sized logs can take. Judgement calls.
KEEP_MEMBER_MAX: Final = 16 << 20
KEEP_TOTAL_MAX: Final = 256 << 20

_Kind = verify.ProblemKind
_ALWAYS_BLOCKING: Final = frozenset({_Kind.SHA_MISMATCH, _Kind.SIZE_MISMATCH, _Kind.DUPLICATE, _Kind.DAMAGED,
                                     _Kind.SUMS_DISAGREE, _Kind.UNEXPECTED_MEMBER})
# The most of one member read whole (a profile, a JSON or text file): a 2 GiB expvar.json packs into a
# few MB, and reading it would cost gigabytes. A capture's largest such member is a few MB; goroutine
# dumps are streamed (goroutines.LINE_MAX bounds a line) and traces have their own limits.
READ_MAX: Final = 64 << 20
_READ_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError)
# How every line saying why a bundle read with force cannot be trusted begins (the hints' wording):
# the commands warn with these lines on stderr and the text report puts them above its findings.
UNVERIFIED_MARK: Final = "unverified (read with --force)"


def unverified_lines(problems: Sequence[str]) -> list[str]:
    """The lines of a report's problems that say why its bundle cannot be trusted."""
    return [p for p in problems if p.startswith(UNVERIFIED_MARK)]


class CheckFailedError(errors.AnalysisError):
    """A bundle fails its checks (a member's checksum, an archive cut short); ``force`` reads it anyway."""


class NotABundleError(errors.AnalysisError):
    """What was given is no bundle: no manifest.json, or a single profile or goroutine dump."""


class _Keeper:
    """The scan's Keep: small members, until the budget is spent; never a trace (analysis reads none)."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, name: str, size: int) -> bool:
        if size > KEEP_MEMBER_MAX or self.total + size > KEEP_TOTAL_MAX or name.endswith(tuple(layout.TRACES)):
            return False
        self.total += size
        return True


class _MemberSlice(io.RawIOBase):
    """One member of an archive, read again from where the checking pass found its data."""

    def __init__(self, path: Path, compressed: bool, offset: int, size: int) -> None:
        super().__init__()
        self._path = path
        self._fh: gzip.GzipFile | io.BufferedReader | None = None
        self._fh = self._call(lambda: gzip.GzipFile(path, "rb") if compressed else path.open("rb"))
        self._left = size
        self._call(lambda: self._file().seek(offset))  # a gzip file seeks forward by decompressing

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except _READ_ERRORS as exc:
            raise errors.AnalysisError(f"{self._path}: cannot read it again ({exc}); was it changed "
                                       "while being read?") from exc

    def _file(self) -> gzip.GzipFile | io.BufferedReader:
        assert self._fh is not None  # set by __init__ or it raised
        return self._fh

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self._call(lambda: self._file().read(min(len(buf), self._left)))
        if not data and self._left:
            raise errors.AnalysisError(f"{self._path}: ends before a member checked a moment ago; "
                                       "was it changed while being read?")
        buf[:len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        super().close()


class BundleReader:
    """Read-only view of one checked bundle; ``read``/``open`` return None for missing files."""

    def __init__(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        self.path = Path(path)
        self.force = force  # read what is readable of a bundle that fails its checks
        # Why the bundle cannot be trusted, when force let it through; empty when it verified.
        self.unverified: list[str] = []
        self._root: Path | None = None
        if self.path.is_dir():
            self._root = self._find_root(self.path)
            try:
                self._scan = verify.scan_directory(self._root, keep=_Keeper())
            except OSError as exc:
                raise errors.AnalysisError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
            result = verify.check(self._root, self._scan, own_checksum=False)
        elif self.path.is_file():
            self._scan = self._scan_archive()
            result = verify.check(self.path, self._scan, own_checksum=True)
        else:
            raise errors.AnalysisError(f"{self.path}: no such bundle file or directory")
        self._files = set(self._scan.digests) | set(self._scan.reserved)
        # What the manifest lists, when it was read: tells a member lost to damage from one never collected.
        self._listed = set(result.manifest.files) if result.manifest is not None else None
        self._judge(result)

    def _scan_archive(self) -> verify.Scan:
        try:
            scan = verify.scan_archive(self.path, keep=_Keeper())
        except OSError as exc:
            raise errors.AnalysisError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        damage = scan.damaged
        if damage is not None and not scan.headers_read:
            raise errors.AnalysisError(f"{self.path}: not a readable bundle archive: {damage.detail}")
        return scan

    def _judge(self, result: verify.VerifyResult) -> None:
        """Refuse a bundle that fails its checks, or (force) say why it cannot be trusted."""
        packed = self._root is None
        where = str(self.path if packed else self._root)
        blocking = _blocking(result, self._scan, self.path)
        if not blocking and layout.MANIFEST not in self._scan.reserved and (packed or self.force):
            if not self.force:
                raise NotABundleError(hints.not_a_bundle(where, "it holds no manifest.json"))
            self.unverified.append(hints.unverified_without_manifest(where))
        elif blocking:
            if not self.force:
                raise CheckFailedError(hints.bundle_check_failed(where, blocking, packed=packed))
            self.unverified.append(hints.unverified(where, blocking, len(self._files), packed=packed))
            lost = self._lost_line() if self._scan.stopped else None
            if lost:
                self.unverified.append(lost)

    def _lost_line(self) -> str | None:
        """What the damage took, named, so that no report calls it missing from the capture; None
        when it took nothing (damage after the last member: every member was read whole)."""
        cut = [f"{rel} (cut: its first {n} of {size} bytes precede the damage)"
               for rel, (_offset, n, size) in self._scan.partial.items()]
        if self._listed is not None:
            rest = [p for p in self.damaged_members() if p not in self._scan.partial]
            if not cut and not rest:
                return None
            return f"{UNVERIFIED_MARK}: lost to the damage, not missing from the capture: {', '.join(cut + rest)}"
        head = f"lost to the damage: {cut[0]}; " if cut else ""
        return (f"{UNVERIFIED_MARK}: {head}the members after {self._damage_point()}, {layout.MANIFEST} among "
                "them, could not be read: what else the capture collected is unknown, so none of it is "
                "reported missing")

    def _damage_point(self) -> str:
        """The member the damage cut, else the last one read whole before it."""
        last = next(iter(self._scan.partial), None) or (self._scan.order[-1] if self._scan.order else None)
        return last or "the damage"

    def loss(self, rel: str) -> str | None:
        """Why ``rel`` cannot be read when it was lost to the bundle's damage (see :meth:`lost`), as
        :meth:`_lost_line` says it in a report, so a command never calls it missing from the capture;
        None when it was not lost (read it, or say the capture has none)."""
        if not self.lost(rel):
            return None
        part = self.cut_member(rel)
        if part is not None:
            return (f"{rel} was lost to the bundle's damage: it is the member the damage cut (only its first "
                    f"{part[0]} of {part[1]} bytes precede it)")
        if self._listed is not None:
            return f"{rel} was lost to the bundle's damage: {layout.MANIFEST} lists it, past the damage"
        return (f"{rel} may have been lost to the bundle's damage: the members after {self._damage_point()}, "
                f"{layout.MANIFEST} among them, could not be read")

    @staticmethod
    def _find_root(path: Path) -> Path:
        # Accept both the stem directory and the directory it was unpacked into; a lone pprof/
        # is evidence of its own, not a stem.
        if (path / layout.MANIFEST).exists():
            return path
        subdirs = [p for p in path.iterdir() if p.is_dir()]
        if len(subdirs) == 1 and not any(p.is_file() for p in path.iterdir()) \
                and (subdirs[0] / layout.MANIFEST).exists():
            return subdirs[0]
        return path

    def close(self) -> None:
        """Nothing stays open between reads; kept for the ``with`` form."""

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def names(self) -> list[str]:
        return sorted(self._files)

    def exists(self, rel: str) -> bool:
        return rel in self._files

    def size(self, rel: str) -> int | None:
        """The member's length in bytes as the checking pass counted it (None when missing), so a
        caller can refuse a large member without decompressing it."""
        if rel not in self._files:
            return None
        entry = self._scan.digests.get(rel)
        return entry.size if entry is not None else len(self._scan.reserved[rel])

    def open(self, rel: str) -> IO[bytes] | None:
        if rel not in self._files:
            return None
        kept = self._scan.kept.get(rel)
        if kept is not None:
            return io.BytesIO(kept)
        if self._root is not None:
            try:
                return unpacked.open_regular(self._root / rel)  # a link swapped in is not followed
            except OSError as exc:
                raise errors.AnalysisError(f"{self.label(rel)}: cannot read: {exc.strerror or exc}") from exc
        member = _MemberSlice(self.path, self._scan.compressed, self._scan.offsets[rel], self._scan.digests[rel].size)
        return io.BufferedReader(member, buffer_size=1 << 20)

    def read(self, rel: str, limit: int | None = None) -> bytes | None:
        """The member whole; refused (AnalysisError naming it and the limit) when larger than
        ``limit`` (default :data:`READ_MAX`), judged by the size the checking pass counted."""
        limit = READ_MAX if limit is None else limit
        size = self.size(rel)
        if size is not None and size > limit:
            raise errors.AnalysisError(f"{self.label(rel)}: not read: {size / (1 << 20):.1f} MiB, more than the "
                                       f"{limit / (1 << 20):.1f} MiB a member may have to be read whole")
        fh = self.open(rel)
        if fh is None:
            return None
        try:
            with fh:
                return fh.read()
        except _READ_ERRORS as exc:
            raise errors.AnalysisError(f"{self.path}: cannot read {rel}: {exc}") from exc

    def text(self, rel: str) -> str | None:
        data = self.read(rel)
        return None if data is None else data.decode("utf-8", "replace")

    def label(self, rel: str) -> str:
        return f"{self.path}:{rel}" if self._root is None else str(self._root / rel)

    def damaged_members(self) -> list[str]:
        """Members lost to the archive's damage: the one it cut, then those the manifest lists that
        the pass never reached (known only when the manifest was read; see :meth:`lost`)."""
        if not self._scan.stopped:
            return []
        cut = list(self._scan.partial)
        return cut + sorted(p for p in self._listed or () if p not in self._files and p not in cut)

    def lost(self, rel: str) -> bool:
        """Whether ``rel`` may have been in the bundle and was lost to its damage, so that it is
        neither readable nor known to be missing: a member the damage cut or kept the pass from
        reaching, or, the manifest itself lost, any member not read."""
        if rel in self._files or not self._scan.stopped:
            return False
        return self._listed is None or rel in self._listed or rel in self._scan.partial

    def cut_member(self, rel: str) -> tuple[int, int] | None:
        """(bytes before the damage, size) of the member the damage cut; None for any other."""
        part = self._scan.partial.get(rel)
        return None if part is None else (part[1], part[2])

    def read_damaged(self, rel: str) -> bytes | None:
        """The bytes of the member the damage cut that precede the damage (a trace cut there is
        still read up to its last complete generation); None when ``rel`` is not that member."""
        part = self._scan.partial.get(rel)
        if part is None or self._root is not None:
            return None
        offset, readable, _size = part
        out = bytearray()
        with _MemberSlice(self.path, self._scan.compressed, offset, readable) as member:
            try:
                while len(out) < readable and (chunk := member.read(min(1 << 20, readable - len(out)))):
                    out += chunk
            except errors.AnalysisError:
                pass  # gzip reads ahead of what it returns: it may meet the damage a little earlier
        return bytes(out)


def _blocking(result: verify.VerifyResult, scan: verify.Scan, path: Path) -> list[verify.Problem]:
    """The problems that make a bundle untrustworthy, the first in the archive first."""
    written_by_debugcap = layout.SHA256SUMS in scan.reserved
    out = [p for p in result.problems
           if p.kind in _ALWAYS_BLOCKING
           or (p.kind is _Kind.MISSING and p.path not in (layout.MANIFEST, layout.SHA256SUMS))
           or (p.kind is _Kind.UNREADABLE and (written_by_debugcap or p.path in scan.oversized))]
    if result.bundle_checksum_ok is False:
        why = "".join(f" ({note})" for note in result.notes)
        out.append(verify.Problem(layout.checksum_name(path.name), _Kind.SHA_MISMATCH,
                                  f"the bundle's sha256 is {result.sha256}; the .sha256 file beside it says "
                                  f"otherwise{why}"))
    position = {name: i for i, name in enumerate(scan.order)}

    def where(p: verify.Problem) -> float:
        if p.path == "(start)":
            return -1
        if p.path.startswith("(after "):
            return position.get(p.path[7:-1], len(position)) + 0.5
        return position.get(p.path, len(position))

    return sorted(out, key=where)


def trace_not_bundle(path: str) -> str:
    return (f"{path} is an execution trace, not a bundle: read it with `kubectl debugcap trace {path}` "
            "(--pprof sched|net|sync|syscall for its profiles)")


def require_bundle(path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Refuse what is not a bundle, saying what it is and which command reads it.

    A packed archive is only known to lack its manifest once it has been read to the end:
    :class:`BundleReader` refuses that one.
    """
    p = Path(path)
    kind = inputs.kind_of(p)
    if kind == "profile":
        raise NotABundleError(hints.profile_not_bundle(str(p)))
    if kind == "dump":
        raise NotABundleError(hints.dump_not_bundle(str(p)))
    if kind == "trace":
        raise NotABundleError(trace_not_bundle(str(p)))
    if kind == "directory" and not force and not (BundleReader._find_root(p) / layout.MANIFEST).exists():
        raise NotABundleError(hints.not_a_bundle(str(p), "it has no manifest.json"))


class Reading:
    """One bundle being analysed: its reader, and the problems and hints found so far."""

    def __init__(self, reader: BundleReader, profile_limit: int = pprof_format.MAX_UNCOMPRESSED_BYTES) -> None:
        self.reader = reader
        self.profile_limit = profile_limit  # the most a profile is decompressed to
        # A bundle read with force says first that nothing after it can be trusted.
        self.problems: list[str] = list(reader.unverified)
        self.hints: list[str] = []
        self.notes: list[str] = []  # what the reader chose not to read (Report.notes)

    def guard(self, fn: Callable[[], T]) -> T | None:
        """Run one analysis; a broken input becomes a problem line, never a crash."""
        try:
            return fn()
        except errors.AnalysisError as exc:
            self.problems.append(str(exc))
            return None

    def text(self, rel: str) -> str | None:
        return self.guard(lambda: self.reader.text(rel))

    def read_json(self, rel: str) -> Any:
        """The parsed JSON file, or None when it is missing or not JSON (a problem line then)."""
        text = self.text(rel) if self.reader.exists(rel) else None
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            self.problems.append(f"{self.reader.label(rel)}: not valid JSON: {exc}")
            return None
        except RecursionError:
            self.problems.append(f"{self.reader.label(rel)}: not read: its JSON nests too deeply")
            return None

    def manifest(self) -> manifest.Manifest | None:
        """The bundle's manifest, or None when it is missing or damaged (a problem line then)."""
        data = self.guard(lambda: self.reader.read(layout.MANIFEST))
        if data is None:
            return None
        try:
            return manifest.Manifest.from_json(data)
        except errors.BundleError as exc:
            self.problems.append(f"{self.reader.label(layout.MANIFEST)}: {exc}")
            return None

    def profile(self, rel: str, kind: str, requested_seconds: float | None = None) -> pprof_format.Profile | None:
        """The parsed profile at ``rel``; None when missing, broken or an endpoint's error text."""
        data = self.guard(lambda: self.reader.read(rel))
        if data is None:
            return None
        label = self.reader.label(rel)
        body = hints.error_body(data, rel)
        if body:
            self.hints.append(body)
            return None
        prof = self.guard(lambda: pprof_format.parse(data, label, self.profile_limit))
        if prof is not None:
            self.hints.extend(hints.profile_hints(prof, kind, rel, requested_seconds))
        return prof

    def dump(self, rel: str) -> goroutines.Dump | None:
        """The goroutine dump at ``rel``, parsed once (its ``summary`` groups, its records for
        ``waiting``); None when missing or not a dump (a problem line then)."""
        def run() -> goroutines.Dump | None:
            fh = self.reader.open(rel)
            if fh is None:
                return None
            with fh:
                return goroutines.read_stream(fh, self.reader.label(rel))

        d = self.guard(run)
        if d is not None:
            self.hints.extend(hints.dump_hints(d.summary, rel))
        return d
