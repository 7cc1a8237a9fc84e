"""A bundle archive as one stream for tarfile: hashed as it is read, gunzipped, damage told apart.

Used by :mod:`debugcap.bundle.verify`, whose single pass over a bundle reads it through
:class:`ArchiveStream`. The gzip stream is decompressed here, not by tarfile: tarfile's stream
mode takes a short tar header for the end of the archive and never checks the gzip CRC-32, so a
bundle cut in half would look complete, only smaller. Here a compressed stream that stops early
or is corrupt ends the stream, recorded in :attr:`ArchiveStream.damage` once every byte
decompressed before it was handed on (so the members those bytes hold are read whole and the
damage is told after them, not inside them); a corrupt tar header raises :class:`ArchiveDamage`;
a CRC-32 that does not match is reported likewise (:attr:`ArchiveStream.trailer_error`), and so
are bytes after the gzip stream (a second gzip member, garbage): a bundle is one gzip stream.
"""

from __future__ import annotations

import hashlib
import tarfile
import zlib
from typing import BinaryIO, Self

CHUNK = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_TRAILER_SIZE = 8  # CRC-32 and ISIZE, little-endian


class ArchiveDamage(Exception):
    """The archive cannot be read from here on; the message says why."""


class ArchiveStream:
    """The bundle file as tarfile reads it: hashed as it comes off the disk, gunzipped when gzip.

    The CRC-32 is compared once the deflate stream ends, after the bytes it covers were handed on,
    so a mismatch is reported beside every member rather than instead of the last one. Damage to
    the compressed stream likewise ends it quietly after its last good byte (``damage`` says why):
    tarfile then meets the end inside a header or a member, and :meth:`finish` raises it.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()
        self._buf = bytearray()
        self._ended = False
        self._crc = 0
        self._size = 0
        self._trailing = 0  # bytes after the gzip trailer
        self.trailer_error = ""
        self.damage: ArchiveDamage | None = None
        head = self._raw_read()
        self.compressed = head.startswith(_GZIP_MAGIC)
        self._z = zlib.decompressobj(-zlib.MAX_WBITS) if self.compressed else None
        self._pending = head[gzip_header_length(head):] if self.compressed else head

    def _raw_read(self) -> bytes:
        chunk = self._raw.read(CHUNK)
        self.hash.update(chunk)
        return chunk

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._buf) < size) and not self._ended:
            self._fill()
        size = len(self._buf) if size < 0 else min(size, len(self._buf))
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def _fill(self) -> None:
        data = (self._z.unconsumed_tail if self._z else b"") or self._pending or self._raw_read()
        self._pending = b""
        if self._z is None:
            self._ended = not data
            self._size += len(data)
            self._buf += data
            return
        if not data:
            # A file cut short and a corrupt byte that made the end marker unrecognisable look the same.
            self._stop("the compressed stream ends without its end marker (cut short or corrupt)")
            return
        try:
            # Bounded output per call: a decompression bomb cannot inflate memory.
            out = self._z.decompress(data, CHUNK)
        except zlib.error as exc:
            self._stop(f"the compressed data is corrupt ({exc})")
            return
        self._crc = zlib.crc32(out, self._crc)
        self._size += len(out)
        self._buf += out
        if self._z.eof:
            self._ended = True
            self._check_trailer(self._z.unused_data)

    @property
    def produced(self) -> int:
        """Bytes of archive handed on or buffered so far: all there will be once ``damage`` is set."""
        return self._size

    def _stop(self, why: str) -> None:
        # Not raised here: tarfile would drop the good bytes still in its buffer with the exception.
        self.damage = ArchiveDamage(why)
        self._ended = True

    def _check_trailer(self, rest: bytes) -> None:
        while len(rest) < _TRAILER_SIZE and (more := self._raw_read()):
            rest += more
        if len(rest) < _TRAILER_SIZE:
            self.trailer_error = "the file ends inside the gzip trailer: it was cut short"
            return
        self._trailing = len(rest) - _TRAILER_SIZE
        crc, isize = int.from_bytes(rest[:4], "little"), int.from_bytes(rest[4:8], "little")
        if crc != self._crc:
            self.trailer_error = (f"the gzip CRC-32 of the content is {self._crc:08x}, the trailer says {crc:08x}: "
                                  "bytes changed after the bundle was written")
        elif isize != self._size & 0xFFFFFFFF:
            self.trailer_error = (f"the gzip trailer says {isize} bytes (mod 2^32), the content is {self._size}: "
                                  "bytes were lost or added after the bundle was written")

    def finish(self) -> None:
        """Read what tarfile left (end-of-archive blocks, padding), then hash the file's last bytes."""
        while not self._ended:
            self._fill()
            self._buf.clear()
        if self.damage is not None:
            raise self.damage
        while more := self._raw_read():
            self._trailing += len(more)
        if self._trailing > 0 and not self.trailer_error:
            self.trailer_error = (f"{self._trailing} bytes follow the gzip stream (a second gzip member or "
                                  "garbage appended): a bundle is one gzip stream and nothing after it")

    def drain(self) -> None:
        """Hash the rest of the file without reading it as an archive (after damage)."""
        while self._raw_read():
            pass


def gzip_header_length(head: bytes) -> int:
    """Bytes of the gzip header at the start of ``head`` (RFC 1952 §2.3)."""
    if len(head) < 10 or head[2] != 8:
        raise ArchiveDamage("the gzip header is corrupt (no deflate method)")
    flags, pos = head[3], 10
    if flags & 0x04:  # FEXTRA
        pos += 2 + int.from_bytes(head[pos:pos + 2], "little")
    for flag in (0x08, 0x10):  # FNAME, FCOMMENT: zero-terminated
        if flags & flag:
            end = head.find(b"\0", pos)
            if end < 0:
                raise ArchiveDamage("the gzip header is corrupt (a name without its end)")
            pos = end + 1
    if flags & 0x02:  # FHCRC
        pos += 2
    if pos > len(head):
        raise ArchiveDamage("the gzip header is corrupt (longer than the file)")
    return pos


class StrictTarInfo(tarfile.TarInfo):
    """Headers as tarfile reads them, except that a bad one past the first is damage, not the end.

    tarfile's stream mode stops quietly at a header it cannot parse or a short read after the
    first member: the rest of a damaged or cut archive would vanish without a word.
    """

    @classmethod
    def fromtarfile(cls, tar: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tar)
        except tarfile.HeaderError as exc:
            # By name: typeshed does not declare tarfile's HeaderError subclasses.
            kind = type(exc).__name__
            if kind == "EOFHeaderError":
                raise  # a zero block: the end-of-archive marker
            if kind == "EmptyHeaderError":
                raise ArchiveDamage("the archive ends without its end-of-archive marker: it was cut short") from None
            raise ArchiveDamage(f"a tar header is corrupt ({exc})") from None
