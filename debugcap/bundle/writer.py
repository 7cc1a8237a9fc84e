"""Streaming tar.gz bundle writer.

The capture engine opens one :class:`BundleWriter` per (capture, pod), adds each collector's
output as it arrives and calls :meth:`BundleWriter.finish` with the manifest fields. Layout and
formats are in ``docs/bundle-format.md``.

Memory stays bounded whatever the evidence size: each member is streamed (redacted on the way)
and compressed into a spool (:func:`spool_file`: memory up to :data:`SPOOL_MEMORY_BYTES`, then an
anonymous file), because a tar header needs the member size before its content, and the
compressed piece is then copied from the spool into the bundle's gzip stream behind its header
(:mod:`debugcap.bundle.compressing`: pieces compressed apart make one standard gzip stream). The
member's SHA-256, CRC-32 and deflate run in a thread while the next chunk is redacted; the
bundle's own SHA-256 is computed while the compressed bytes go to disk, so nothing is read twice.

The archive is written to a hidden temp file beside its final name and renamed into place only
by a successful :meth:`BundleWriter.finish`; ``<bundle>.sha256`` is written after the rename, so
its presence means the bundle is complete (:mod:`debugcap.storage.spool` relies on that). Any
exception removes the temp file and nothing else: bundles written earlier are untouched.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import tarfile
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO, Final, Protocol

from debugcap.bundle import compressing, environment, layout, manifest, profile_masking, redact_detectors
from debugcap.bundle import redact as redact_module
from debugcap.errors import BundleError
from debugcap.storage import base as storage_base

logger = logging.getLogger(__name__)

CHUNK_SIZE: Final = 1024 * 1024  # large enough to amortise per-call overhead, small next to the RSS budget
# env/environment.txt is filtered as a whole (the allowlist is per variable, not per chunk);
# a real environment is a few KiB, so 16 MiB only stops a runaway collector (judgement call).
ENVIRONMENT_MAX_BYTES: Final = 16 * 1024 * 1024

# A spool this small stays in memory; larger spills to an anonymous file. Most of a capture's ~30
# members are a few KiB, and a temp file created and deleted for each (twice: the collector's
# scratch and this spool) kept the node's filesystem journal busy: 0.6 CPU-s of kernel writeback
# per 20-pod operator capture, and captures slowed as it built up. 512 KiB keeps the worst case
# (8 pods at once, ~10 members each in flight, two spools each) near 80 MB.
SPOOL_MEMORY_BYTES: Final = 512 << 10

Source = bytes | Iterable[bytes] | IO[bytes]


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


def spool_file(directory: Path) -> IO[bytes]:
    """A read-write binary spool in memory, moved to a file in ``directory`` once it outgrows
    :data:`SPOOL_MEMORY_BYTES`."""
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, dir=str(directory))


@dataclass(frozen=True)
class WrittenBundle:
    path: Path
    sha256: str
    size: int
    checksum_path: Path
    manifest: manifest.Manifest


class _HashingWriter:
    """File-object wrapper hashing and counting every byte on its way to disk."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _chunks(source: Source, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
        return
    read = getattr(source, "read", None)
    if read is not None:
        while chunk := read(chunk_size):
            yield chunk
        return
    for chunk in source:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise BundleError(f"evidence stream yielded {type(chunk).__name__}, expected bytes; encode text first")
        yield bytes(chunk)


def _checksum_line(sha256: str, name: str) -> bytes:
    # Two spaces: sha256sum's text-mode separator, which `sha256sum -c` expects.
    return f"{sha256}  {name}\n".encode()


class BundleWriter:
    """Writes one bundle.

    >>> with BundleWriter(directory=out, name=layout.bundle_name("prod", "api-1", now)) as w:
    ...     w.add_bytes(layout.PROC_PS, ps_output)
    ...     w.add_stream(layout.PPROF_CPU, response)       # any file-like or iterable of bytes
    ...     bundle = w.finish(fields)
    """

    def __init__(
        self,
        *,
        directory: Path,
        name: str,
        redact: bool = True,
        compresslevel: int = 6,
        spool_dir: Path | None = None,
        mtime: float | None = None,  # None outside tests: member times are the capture's wall clock
        durable: bool = True,
        extra_detectors: Sequence[redact_detectors.Detector] = (),
    ) -> None:
        self._directory = Path(directory)
        self._name = name
        self._stem = layout.stem(name)
        self._redact = redact
        self._compresslevel = compresslevel
        # False: the caller uploads the bundle and deletes it right away (the operator), so
        # forcing it to disk is writeback for nothing; a bundle that fails to upload is synced
        # when it moves into the spool.
        self._durable = durable
        self._spool_dir = spool_dir or self._directory
        self._mtime = int(time.time() if mtime is None else mtime)
        self._files: dict[str, manifest.FileEntry] = {}
        self._report = redact_module.RedactionReport()
        # Admin-supplied detectors (operator setting, template), after the built-in ones.
        self._extra = tuple(extra_detectors)
        self._tmp_path: Path | None = None
        self._raw: BinaryIO | None = None
        self._hashing: _HashingWriter | None = None
        self._stream: compressing.GzipPieces | None = None
        self._offset = 0  # bytes of tar written so far, as tarfile counts them
        self._padding = b""  # the last member's padding to a whole block, compressed with what follows
        self._finished: WrittenBundle | None = None
        # Set when a write into the archive stream failed part-way: the gzip stream then holds a
        # torn piece, so every later member and finish() would only wrap a corrupt bundle in a
        # valid-looking .sha256. A failure while spooling a member never sets it.
        self._broken: BaseException | None = None

    @property
    def path(self) -> Path:
        return self._directory / self._name

    @property
    def files(self) -> dict[str, manifest.FileEntry]:
        return dict(self._files)

    def __enter__(self) -> BundleWriter:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._finished is not None:
            return
        self.abort()
        if exc_type is None:
            raise BundleError(
                f"bundle {self._name} was closed without finish(); nothing was kept. "
                f"Call finish(fields) inside the with-block"
            )

    def open(self) -> None:
        if self._stream is not None:
            raise BundleError(f"bundle {self._name} is already open")
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            self._check_target_free()
            fd, tmp = tempfile.mkstemp(dir=self._directory, prefix=f".{self._name}.", suffix=".partial")
        except OSError as exc:
            raise BundleError(
                f"cannot create bundle {self._name} in {self._directory}: {exc.strerror}; "
                f"check the directory exists, is writable and has free space"
            ) from exc
        self._tmp_path = Path(tmp)
        self._raw = os.fdopen(fd, "wb")
        self._hashing = _HashingWriter(self._raw)
        # The tar stream is laid out here as tarfile lays it out (PAX headers, blocks, records),
        # so a member can be compressed before its header is written (compressing.py).
        self._stream = compressing.GzipPieces(self._hashing, compresslevel=self._compresslevel, mtime=self._mtime)
        self._offset = 0
        self._padding = b""
        self._broken = None
        self._add_raw(layout.VERSION, f"{layout.FORMAT_VERSION}\n".encode(), record=True)

    def add_bytes(self, path: str, data: bytes, *, redact: bool | None = None) -> manifest.FileEntry:
        """Add a member from memory; see :meth:`add_stream`."""
        return self.add_stream(path, data, redact=redact)

    def add_stream(self, path: str, source: Source, *, redact: bool | None = None) -> manifest.FileEntry:
        """Add a member from bytes, a binary file object or an iterable of bytes chunks.

        ``path`` is relative to the stem (build it with :mod:`~debugcap.bundle.layout`). Unless the
        writer was created with ``redact=False`` (or ``redact=False`` is passed here), text members
        are line-redacted, ``env/environment.txt`` goes through the allowlist, and profiles and
        traces get same-length masking. Returns the stored member's SHA-256 and size.
        """
        if path in layout.RESERVED:
            raise BundleError(f"bundle path {path!r} is reserved for the writer itself; pick another name")
        self._check_addable(path)
        do_redact = self._redact if redact is None else redact and self._redact
        with spool_file(self._spool_dir) as spool:
            hashing = compressing.MemberPacker(spool, self._compresslevel)
            try:
                if not do_redact:
                    self._copy(_chunks(source), hashing)
                elif path == layout.ENV_ENVIRONMENT:
                    self._spool_environment(path, source, hashing)
                elif layout.is_gzip_profile(path):
                    self._spool_profile(path, source, hashing)
                elif layout.is_binary(path):
                    # Traces are kept verbatim; see debugcap.bundle.redact for why.
                    self._copy(_chunks(source), hashing)
                else:
                    self._copy(redact_module.redact_stream(_chunks(source), path, self._report, self._extra), hashing)
                hashing.close()
            except OSError as exc:
                raise BundleError(
                    f"cannot spool {path} for bundle {self._name} in {self._spool_dir}: {exc}; check free space there"
                ) from exc
            finally:
                hashing.stop()  # the deflate thread ends whatever happened
            spool.seek(0)
            self._add_member(path, _chunks(spool), hashing.size, hashing.crc)
        entry = manifest.FileEntry(sha256=hashing.hexdigest(), size=hashing.size)
        self._files[path] = entry
        return entry

    @property
    def redaction_counts(self) -> dict[str, dict[str, int]]:
        """What this writer masked so far: per member, per redactor, how many times."""
        return self._report.counts_dict()

    def finish(self, fields: manifest.ManifestFields, *, earlier: manifest.Manifest | None = None) -> WrittenBundle:
        """Write SHA256SUMS and manifest.json, close the archive, move it into place, write its .sha256.

        ``earlier``: the manifest of the bundle this one redacts again (``kubectl debugcap redact``);
        its redaction records and counts are kept beside this writer's own.
        """
        if self._stream is None or self._hashing is None or self._raw is None:
            raise BundleError(f"bundle {self._name} is not open; use it as a context manager")
        if self._broken is not None:
            self.abort()  # a caller outside a with-block must not be left with the temp file
            self._check_intact()
        sums = b"".join(_checksum_line(e.sha256, p) for p, e in self._files.items())
        self._add_raw(layout.SHA256SUMS, sums, record=False)
        report = redact_module.RedactionReport()
        if earlier is not None:
            report.records += earlier.redactions
            report.counts.update({f: Counter(c) for f, c in earlier.redaction_counts.items()})
        report.merge(self._report)
        records = tuple(sorted(report.records, key=lambda r: (r.file, r.line, r.redactor)))
        result = manifest.Manifest.build(
            fields, files=self._files, redactions=records, redaction_counts=report.counts_dict()
        )
        self._add_raw(layout.MANIFEST, result.to_json().encode(), record=False)
        try:
            self._close_archive(self._stream)
            self._raw.flush()
            if self._durable:
                os.fsync(self._raw.fileno())
            self._raw.close()
            self._stream = None
            self._check_target_free()
            assert self._tmp_path is not None
            os.replace(self._tmp_path, self.path)
            self._tmp_path = None
            digest = self._hashing.hexdigest()
            checksum_path = self._directory / layout.checksum_name(self._name)
            with storage_base.atomic_file(checksum_path, durable=self._durable) as fh:
                fh.write(_checksum_line(digest, self._name))
        except OSError as exc:
            self.abort()
            raise BundleError(
                f"cannot finish bundle {self._name} in {self._directory}: {exc}; check free space and permissions"
            ) from exc
        self._finished = WrittenBundle(
            path=self.path,
            sha256=digest,
            size=self._hashing.size,
            checksum_path=checksum_path,
            manifest=result,
        )
        return self._finished

    def abort(self) -> None:
        """Drop the partial archive; never touches finished bundles."""
        if self._raw is not None:
            try:
                self._raw.close()
            except OSError:
                # The archive is being thrown away; a failure to close it cleanly changes nothing.
                pass
        self._stream = None
        self._raw = None
        if self._tmp_path is not None:
            self._tmp_path.unlink(missing_ok=True)
            self._tmp_path = None

    # --- internals -----------------------------------------------------------------------------

    def _check_target_free(self) -> None:
        for target in (self.path, self._directory / layout.checksum_name(self._name)):
            if target.exists():
                raise BundleError(
                    f"bundle {target} already exists; debugcap never overwrites evidence. "
                    f"Wait a second (names have one-second resolution) or move the old bundle away"
                )

    def _check_addable(self, path: str) -> None:
        if self._stream is None:
            state = "finished" if self._finished else "not open"
            raise BundleError(f"cannot add {path!r}: bundle {self._name} is {state}")
        self._check_intact()
        layout.check_path(path)
        if path in self._files:
            raise BundleError(f"bundle {self._name} already has {path!r}; each collector must write distinct paths")

    def _check_intact(self) -> None:
        if self._broken is not None:
            raise BundleError(
                f"bundle {self._name} in {self._directory} is damaged by an earlier write failure "
                f"({self._broken}); it cannot be finished and nothing will be kept. "
                f"Check free space there and capture again"
            ) from self._broken

    def _add_raw(self, path: str, data: bytes, *, record: bool) -> None:
        self._add_member(path, [], len(data), 0, content=data)
        if record:
            self._files[path] = manifest.FileEntry(sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def _add_member(
        self, path: str, compressed: Iterable[bytes], size: int, crc: int, *, content: bytes = b""
    ) -> None:
        """Header, then the member: ``content`` compressed here, or ``compressed`` (a piece of
        ``size`` bytes with CRC-32 ``crc``), as tarfile.addfile lays them out."""
        assert self._stream is not None
        info = tarfile.TarInfo(layout.member_name(self._stem, path))
        info.size = size
        info.mtime = self._mtime
        info.mode = 0o644
        info.uname = info.gname = ""
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        try:
            self._stream.add(self._padding + header + content)
            if not content:
                self._stream.add_compressed(compressed, crc, size)
        except BaseException as exc:
            # Part of the header or member may be in the archive already; there is no undoing it.
            self._broken = exc
            if not isinstance(exc, OSError):
                raise
            raise BundleError(
                f"cannot write {path} into bundle {self._name} in {self._directory}: {exc}; check free space"
            ) from exc
        self._offset += len(self._padding) + len(header) + size
        self._padding = tarfile.NUL * (-size % tarfile.BLOCKSIZE)

    def _close_archive(self, stream: compressing.GzipPieces) -> None:
        # tarfile's close: two zero blocks, then zeros to a whole record.
        end = self._padding + tarfile.NUL * (2 * tarfile.BLOCKSIZE)
        self._offset += len(end)
        end += tarfile.NUL * (-self._offset % tarfile.RECORDSIZE)
        stream.close(end)

    @staticmethod
    def _copy(chunks: Iterable[bytes], out: _Sink) -> None:
        for chunk in chunks:
            if chunk:
                out.write(chunk)

    def _spool_environment(self, path: str, source: Source, out: _Sink) -> None:
        data = bytearray()
        for chunk in _chunks(source):
            data += chunk
            if len(data) > ENVIRONMENT_MAX_BYTES:
                raise BundleError(
                    f"{path} for bundle {self._name} exceeds {ENVIRONMENT_MAX_BYTES} bytes; "
                    f"an environment is never that large, check the environment collector"
                )
        # surrogateescape: non-UTF-8 bytes survive the round trip unchanged instead of failing.
        text = bytes(data).decode("utf-8", "surrogateescape")
        filtered = environment.filter_environment(text, file=path, report=self._report)
        self._copy(
            redact_module.redact_stream([filtered.encode("utf-8", "surrogateescape")], path, self._report, self._extra),
            out,
        )

    def _spool_profile(self, path: str, source: Source, out: _Sink) -> None:
        """Mask secrets in a gzip-compressed pprof protobuf, keeping it a valid profile.

        pprof string tables hold function names, file paths and *labels* (``pprof.Do`` /
        ``pprof.Labels``), which applications sometimes fill with request data. Masking is
        same-length inside the decompressed protobuf, so lengths stay valid. If nothing is
        found the original bytes are kept unchanged.
        """
        with (
            spool_file(self._spool_dir) as raw,
            spool_file(self._spool_dir) as masked,
        ):
            for chunk in _chunks(source):
                raw.write(chunk)
            raw.seek(0)
            if raw.read(2) != b"\x1f\x8b":
                # Not gzip: an error body or text profile (debug=1) landed here. Treat it as text.
                raw.seek(0)
                self._copy(redact_module.redact_stream(_chunks(raw), path, self._report, self._extra), out)
                return
            scratch = redact_module.RedactionReport()
            try:
                # Nearly every profile has nothing to mask and is kept as it came: look first, and
                # gzip again (3-5 ms of operator CPU per pod, issue 17) only one that has.
                for _ in self._masked_profile(raw, path, scratch):
                    pass
                if scratch.records:
                    scratch = redact_module.RedactionReport()
                    with gzip.GzipFile(filename="", mode="wb", fileobj=masked, mtime=0) as packer:
                        for piece in self._masked_profile(raw, path, scratch):
                            packer.write(piece)
            except (zlib.error, EOFError, gzip.BadGzipFile, ValueError) as exc:
                # A truncated profile (collector timed out mid-body) is still evidence; keep it as is.
                logger.warning(
                    "%s in bundle %s is not a complete pprof profile (%s); stored unmasked",
                    path,
                    self._name,
                    exc,
                )
                scratch = redact_module.RedactionReport()
            source_file = masked if scratch.records else raw
            self._report.merge(scratch)
            source_file.seek(0)
            self._copy(_chunks(source_file), out)

    def _masked_profile(self, raw: IO[bytes], path: str, report: redact_module.RedactionReport) -> Iterator[bytes]:
        raw.seek(0)
        return profile_masking.mask_profile(_gunzip(_chunks(raw)), path, report, self._extra)


def _gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    # Bounded output per call keeps a decompression bomb from inflating memory.
    decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    for chunk in chunks:
        data = chunk
        while data:
            yield decompressor.decompress(data, CHUNK_SIZE)
            data = decompressor.unconsumed_tail
        if decompressor.eof:
            return
    yield decompressor.flush()
    if not decompressor.eof:
        raise EOFError("compressed stream ended before the end-of-stream marker")
