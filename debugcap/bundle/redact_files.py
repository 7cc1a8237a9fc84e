"""Redaction of evidence outside a capture, for sharing it: one file or a directory tree.

``kubectl debugcap redact`` runs what :class:`debugcap.bundle.writer.BundleWriter` runs on every
member of a capture (:mod:`debugcap.bundle.redact`) over files a user wants to hand to someone
else; :mod:`debugcap.bundle.redact_bundle` does it for a whole bundle. What each file is, is read
from its first bytes, not trusted from its name:

* text: line-redacted, streamed (a file of any size costs memory of one block);
* gzip-compressed text (``app.log.gz``): the same inside the compression, compressed again;
* gzip-compressed and not text: tried as a pprof profile, same-length masking inside its string
  table as in a bundle (a copy byte for byte when nothing is masked); if it is not one, binary;
* a Go execution trace: copied as it is, as a capture keeps it (see :mod:`~debugcap.bundle.redact`);
* anything else binary, and archives (a tar or tar.gz inside a directory): **not copied** (the
  redactor cannot read them, and an unread file is not safe to share), each named in the report
  with why; ``keep_binary`` copies binaries as they are instead, still named in the report.

A directory is walked without following symbolic links; links, FIFOs, sockets and devices are
left out and named. Nothing is written over an existing path: the output goes to a hidden
temporary name beside it and is moved into place (no-clobber) when complete.

The report (:class:`RedactionResult`) says per file what was done and how many times each
redactor masked something there: never a masked value.
"""

from __future__ import annotations

import contextlib
import enum
import gzip
import json
import os
import re
import shutil
import stat
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Final, Protocol

from debugcap.bundle import profile_masking, writer
from debugcap.bundle import redact as redactor
from debugcap.bundle.redact_detectors import Detector
from debugcap.errors import ConfigError

CHUNK: Final = 1024 * 1024
_SNIFF: Final = 64 * 1024  # what is read to tell text from binary (judgement call: a few pages)
# A *.json file up to this size is parsed before and after, so a redaction that breaks it is told.
JSON_CHECK_MAX: Final = 16 << 20
_TRACE_MAGIC: Final = re.compile(rb"go 1\.\d+ trace\x00")
# Control bytes a text file does not hold (tab, newline, CR, form feed, backspace, escape are fine).
_CONTROL: Final = bytes(b for b in range(32) if b not in (8, 9, 10, 12, 13, 27))


class Action(enum.StrEnum):
    REDACTED = "redacted"  # read by the redactor; ``rules`` says what it masked (maybe nothing)
    KEPT = "kept-unredacted"  # copied as it is: a Go execution trace, or a binary with --keep-binary
    SKIPPED = "skipped"  # not in the output; ``note`` says why


class Content(enum.Enum):
    TEXT = "text"
    GZIP_TEXT = "gzip-text"
    PROFILE = "pprof-profile"  # gzip and not text: tried as a pprof profile
    TRACE = "go-trace"
    BINARY = "binary"
    ARCHIVE = "archive"


@dataclass(frozen=True)
class FileResult:
    path: str  # relative to the input directory, a bundle's member path, or the file's name
    action: Action
    rules: Mapping[str, int] = field(default_factory=dict)  # redactor -> how many times
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        doc: dict[str, object] = {"path": self.path, "action": self.action.value, "rules": dict(self.rules),
                                  "masked": sum(self.rules.values())}
        if self.note:
            doc["note"] = self.note
        return doc


@dataclass(frozen=True)
class RedactionResult:
    source: Path
    output: str | None  # a path, "-" for a stream (stdout), None when nothing was written
    kind: str  # file | directory | bundle
    files: tuple[FileResult, ...]

    @property
    def masked(self) -> int:
        return sum(sum(f.rules.values()) for f in self.files)

    def count(self, action: Action) -> int:
        return sum(1 for f in self.files if f.action is action)

    def rules(self) -> dict[str, int]:
        """Per redactor, how many times it masked something, over every file."""
        rules: dict[str, int] = {}
        for f in self.files:
            for name, n in f.rules.items():
                rules[name] = rules.get(name, 0) + n
        return dict(sorted(rules.items()))

    def to_dict(self) -> dict[str, object]:
        return {
            "input": str(self.source),
            "output": self.output,
            "kind": self.kind,
            "files": [f.to_dict() for f in self.files],
            "totals": {"files": len(self.files), **{a.value: self.count(a) for a in Action},
                       "masked": self.masked, "rules": self.rules()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


# --- what a file is --------------------------------------------------------------------------


def is_text(head: bytes) -> bool:
    """No NUL byte and under 1% other control bytes: text (a log, YAML, JSON, a goroutine dump)."""
    sample = head[:_SNIFF]
    return b"\0" not in sample and len(sample.translate(None, _CONTROL)) >= len(sample) * 0.99


def _is_tar(head: bytes) -> bool:
    return head[257:262] == b"ustar"


def _gunzip_head(head: bytes) -> bytes:
    """What the start of a gzip stream decompresses to, up to damage (fed in pieces to keep it)."""
    z, out = zlib.decompressobj(zlib.MAX_WBITS | 16), bytearray()
    for start in range(0, len(head), 4096):
        try:
            out += z.decompress(head[start:start + 4096], _SNIFF - len(out))
        except zlib.error:
            break
        if len(out) >= _SNIFF or z.eof:
            break
    return bytes(out)


def sniff(head: bytes) -> Content:
    """What a file is, from its first bytes (never from its name)."""
    if head[:2] == b"\x1f\x8b":
        inner = _gunzip_head(head)
        if _is_tar(inner):
            return Content.ARCHIVE
        return Content.GZIP_TEXT if is_text(inner) else Content.PROFILE
    if _is_tar(head):
        return Content.ARCHIVE
    if _TRACE_MAGIC.match(head):
        return Content.TRACE
    return Content.TEXT if is_text(head) else Content.BINARY


# --- one file --------------------------------------------------------------------------------


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


def _chunks(fh: _Readable) -> Iterator[bytes]:
    while chunk := fh.read(CHUNK):
        yield chunk


def _write(chunks: Iterable[bytes], out: _Writable) -> None:
    for chunk in chunks:
        if chunk:
            out.write(chunk)


def _counts(report: redactor.RedactionReport, rel: str) -> dict[str, int]:
    return dict(sorted(report.counts.get(rel, {}).items()))


_BINARY_NOTE: Final = ("binary: not copied (the redactor reads text, gzip text, pprof profiles and Go traces; "
                       "--keep-binary copies such a file as it is)")


def _binary(src: IO[bytes], out: IO[bytes], rel: str, keep_binary: bool, what: str = "binary") -> FileResult:
    if not keep_binary:
        return FileResult(rel, Action.SKIPPED, note=_BINARY_NOTE.replace("binary", what, 1))
    src.seek(0)
    _write(_chunks(src), out)
    return FileResult(rel, Action.KEPT, note=f"{what}: copied unredacted (--keep-binary)")


def _text(src: IO[bytes], out: IO[bytes], rel: str, size: int, extra: Sequence[Detector] = ()) -> FileResult:
    report = redactor.RedactionReport()
    if rel.endswith(".json") and size <= JSON_CHECK_MAX:
        data = src.read()
        redacted = b"".join(redactor.redact_stream([data], rel, report, extra))
        out.write(redacted)
        return FileResult(rel, Action.REDACTED, _counts(report, rel), _json_note(data, redacted))
    _write(redactor.redact_stream(_chunks(src), rel, report, extra), out)
    return FileResult(rel, Action.REDACTED, _counts(report, rel))


def _json_note(before: bytes, after: bytes) -> str:
    try:
        json.loads(before)
    except ValueError:
        return ""  # not JSON to begin with: nothing to keep
    try:
        json.loads(after)
    except ValueError:
        return "JSON: the redacted copy is no longer valid JSON (a mask landed inside a value's syntax)"
    return ""


def _gzip_text(src: IO[bytes], out: IO[bytes], rel: str, extra: Sequence[Detector] = ()) -> FileResult:
    report = redactor.RedactionReport()
    try:
        with (gzip.GzipFile(fileobj=src, mode="rb") as unpacked,
              gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0) as packed):
            _write(redactor.redact_stream(_chunks(unpacked), rel, report, extra), packed)
    except (OSError, EOFError, zlib.error) as exc:
        raise _Unreadable(f"gzip: cannot be decompressed to its end ({exc}); not copied") from exc
    return FileResult(rel, Action.REDACTED, _counts(report, rel), "gzip: redacted inside, compressed again")


def _gunzip(fh: IO[bytes]) -> Iterator[bytes]:
    with gzip.GzipFile(fileobj=fh, mode="rb") as unpacked:
        yield from _chunks(unpacked)


def _profile(src: IO[bytes], out: IO[bytes], rel: str, keep_binary: bool, spool_dir: Path,
             extra: Sequence[Detector] = ()) -> FileResult:
    report = redactor.RedactionReport()
    with writer.spool_file(spool_dir) as masked:
        try:
            with gzip.GzipFile(filename="", fileobj=masked, mode="wb", mtime=0) as packed:
                _write(profile_masking.mask_profile(_gunzip(src), rel, report, extra), packed)
        except (ValueError, OSError, EOFError, zlib.error):
            return _binary(src, out, rel, keep_binary, "gzip, not text nor a complete pprof profile")
        # Nothing masked: the original bytes, so an unchanged profile stays byte for byte the same.
        source: IO[bytes] = masked if report.counts else src
        source.seek(0)
        _write(_chunks(source), out)
    return FileResult(rel, Action.REDACTED, _counts(report, rel), "pprof: string table masked, same length")


class _Unreadable(Exception):
    """A file whose content turned out unreadable part-way: left out, its output discarded."""


def redact_stream_to(src: BinaryIO, out: IO[bytes], rel: str, *, keep_binary: bool, spool_dir: Path,
                     extra: Sequence[Detector] = ()) -> FileResult:
    """Redact what ``src`` holds (seekable, at its start) into ``out``; ``rel`` names it in the report.

    A SKIPPED result may leave bytes in ``out``: the caller discards them.
    """
    head = src.read(_SNIFF)
    src.seek(0)
    content = sniff(head)
    try:
        if content is Content.TEXT:
            return _text(src, out, rel, _size(src), extra)
        if content is Content.GZIP_TEXT:
            return _gzip_text(src, out, rel, extra)
        if content is Content.PROFILE:
            return _profile(src, out, rel, keep_binary, spool_dir, extra)
    except _Unreadable as exc:
        return FileResult(rel, Action.SKIPPED, note=str(exc))
    if content is Content.TRACE:
        _write(_chunks(src), out)
        return FileResult(rel, Action.KEPT, note="Go execution trace: copied unredacted, as a capture keeps it")
    if content is Content.ARCHIVE:
        return FileResult(rel, Action.SKIPPED, note="an archive: not copied; redact it on its own "
                                                     "(kubectl debugcap redact FILE), or unpack it first")
    return _binary(src, out, rel, keep_binary)


def _size(fh: BinaryIO) -> int:
    """The size of a seekable file, left at its start."""
    size = fh.seek(0, os.SEEK_END)
    fh.seek(0)
    return size


def open_regular(path: Path) -> BinaryIO | str:
    """``path`` opened for reading if it is a regular file, never through a symbolic link; else why not.

    lstat first (a device or FIFO is never opened: opening one can block or have effects), then
    open with O_NOFOLLOW and check again what was opened, so a swap in between is caught.
    """
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISLNK(mode):
        return "a symbolic link: not followed, not copied"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device): not copied"
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return "changed into something other than a regular file while being read: not copied"
    return os.fdopen(fd, "rb")


# --- outputs ---------------------------------------------------------------------------------


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` are one file (one path, a link to it, a hard link)."""
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False


@dataclass
class NewFile:
    fh: IO[bytes]
    keep: bool = False  # set by the caller: link the finished file to its name


@contextlib.contextmanager
def new_file(out: Path) -> Iterator[NewFile]:
    """A temporary file beside ``out``, linked to ``out`` (never over an existing file) if the block
    sets ``keep``; the temporary name is removed in every case."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            new = NewFile(fh)
            yield new
        if new.keep:
            try:
                os.link(tmp, out)
            except FileExistsError as exc:
                raise ConfigError(f"{out} appeared while it was being written; nothing was overwritten") from exc
    finally:
        os.unlink(tmp)


def redact_file(source: Path, out: Path | IO[bytes], *, keep_binary: bool = False,
                extra: Sequence[Detector] = ()) -> RedactionResult:
    """Redact one file into ``out`` (a path that must not exist, or a stream such as stdout);
    ``extra``: admin patterns (:mod:`debugcap.bundle.redact_custom`) after the built-in detectors."""
    # A link named on the command line is the user's own choice: its target is read, still only
    # if that is a regular file.
    src = open_regular(source.resolve())
    if isinstance(src, str):
        raise ConfigError(f"{source}: {src}")
    with src:
        if not isinstance(out, Path):
            spool = Path(tempfile.gettempdir())
            result = redact_stream_to(src, out, source.name, keep_binary=keep_binary, spool_dir=spool, extra=extra)
            return RedactionResult(source, "-", "file", (result,))
        with new_file(out) as new:
            result = redact_stream_to(src, new.fh, source.name, keep_binary=keep_binary, spool_dir=out.parent,
                                      extra=extra)
            new.keep = result.action is not Action.SKIPPED
    return RedactionResult(source, str(out) if new.keep else None, "file", (result,))


def redact_directory(source: Path, out: Path, *, keep_binary: bool = False,
                     extra: Sequence[Detector] = ()) -> RedactionResult:
    """Redact every file under ``source`` into the new directory ``out`` (same relative paths)."""
    check_output(source, out)
    out.mkdir(mode=0o700)  # reserves the name: fails if it exists; replaced by the finished tree below
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        results = sorted(_walk(source, tmp, keep_binary, extra), key=lambda r: r.path)
        os.replace(tmp, out)  # over the empty reservation
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            out.rmdir()
        raise
    return RedactionResult(source, str(out), "directory", tuple(results))


def _walk(source: Path, tmp: Path, keep_binary: bool, extra: Sequence[Detector]) -> list[FileResult]:
    results: list[FileResult] = []

    def unreadable(exc: OSError) -> None:
        rel = Path(exc.filename).relative_to(source).as_posix() if exc.filename else "."
        results.append(FileResult(rel, Action.SKIPPED, note=f"cannot be read ({exc.strerror or exc})"))

    for top, dirs, files in os.walk(source, onerror=unreadable, followlinks=False):
        here = Path(top)
        rel_top = here.relative_to(source)
        for name in sorted(dirs):
            if (here / name).is_symlink():
                dirs.remove(name)
                results.append(FileResult((rel_top / name).as_posix(), Action.SKIPPED,
                                          note="a symbolic link: not followed, not copied"))
            else:
                (tmp / rel_top / name).mkdir(mode=0o700)
        dirs.sort()
        for name in sorted(files):
            results.append(_one_in_tree(here / name, (rel_top / name).as_posix(), tmp, keep_binary, extra))
    return results


def _one_in_tree(path: Path, rel: str, tmp: Path, keep_binary: bool, extra: Sequence[Detector]) -> FileResult:
    src = open_regular(path)
    if isinstance(src, str):
        return FileResult(rel, Action.SKIPPED, note=src)
    target = tmp / rel
    # Private to the user, as bundles are (mkstemp): sharing is a step of its own.
    with src, os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        result = redact_stream_to(src, out, rel, keep_binary=keep_binary, spool_dir=tmp, extra=extra)
    if result.action is Action.SKIPPED:
        target.unlink()
    return result


def check_output(source: Path, out: Path) -> None:
    """Refuse an output that is the input or inside it, or that exists (evidence is never overwritten)."""
    if same_file(source, out) or out.resolve() == source.resolve():
        raise ConfigError(f"{out} is the input itself; the redacted copy goes to a new path (--out)")
    if source.is_dir() and out.resolve().is_relative_to(source.resolve()):
        raise ConfigError(f"{out} is inside {source}: the copy would be redacted into itself; write it elsewhere")
    if out.exists() or out.is_symlink():
        raise ConfigError(f"{out} already exists; debugcap never overwrites evidence: move it away or pick "
                          "another --out")
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent} is not a directory; create it first or pick another --out")


_COMPOUND: Final = (".tar.gz", ".pb.gz", ".json.gz", ".log.gz", ".txt.gz")


def default_output(source: Path, *, bundle: bool = False) -> Path:
    """Beside the input, ``.redacted`` before its suffix: ``app.log`` -> ``app.redacted.log``,
    ``x.tar.gz`` -> ``x.redacted.tar.gz``, a directory ``evidence`` -> ``evidence.redacted``."""
    name = source.resolve().name
    if source.is_dir():
        return source.resolve().with_name(f"{name}.redacted")
    if bundle:
        for suffix in (".tar.gz", ".tgz", ".tar"):
            if name.endswith(suffix) and len(name) > len(suffix):
                return source.resolve().with_name(f"{name[: -len(suffix)]}.redacted.tar.gz")
        return source.resolve().with_name(f"{name}.redacted.tar.gz")
    for suffix in _COMPOUND:
        if name.endswith(suffix) and len(name) > len(suffix):
            return source.resolve().with_name(f"{name[: -len(suffix)]}.redacted{suffix}")
    stem, dot, suffix = name.rpartition(".")
    if dot and stem:
        return source.resolve().with_name(f"{stem}.redacted.{suffix}")
    return source.resolve().with_name(f"{name}.redacted")


def is_archive(path: Path) -> bool:
    """True when ``path`` is a regular file holding a tar or tar.gz (a bundle, or a stranger one).

    A gzip file named like an archive whose start does not decompress is one too: a damaged
    bundle is for verify to describe, not to be taken for a damaged compressed log."""
    src = open_regular(path.resolve())
    if isinstance(src, str):
        return False
    with src:
        head = src.read(_SNIFF)
    damaged = head[:2] == b"\x1f\x8b" and not _gunzip_head(head) and path.name.endswith((".tar.gz", ".tgz"))
    return damaged or sniff(head) is Content.ARCHIVE
