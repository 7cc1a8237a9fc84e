"""The gzip stream of a bundle, written as raw deflate pieces: ISA-L's deflate when python-isal is
installed, zlib's otherwise.

Compression was the larger part of writing a bundle once redaction got fast: zlib at level 6
deflates log-like text at ~65 MB/s, ISA-L (python-isal) at ~600 MB/s at its level 2, for a file
~13% larger (benchmarks/bench_bundle.py prints both). python-isal ships wheels for CPython
3.11-3.14 on Linux x86_64/aarch64 and macOS; without it zlib writes the same format, slower.

A bundle is still one standard gzip stream (``tar xzf``, ``gzip -t`` and every reader of debugcap
take it): pieces compressed apart, each ending on a byte boundary (a sync flush, as pigz does),
concatenate into one valid deflate stream, and the CRC-32 of the whole is combined from the
pieces'. That lets :class:`debugcap.bundle.writer.BundleWriter` compress a member while it is
being redacted (in a thread: deflate, CRC-32 and SHA-256 let go of the GIL), and copy the
compressed piece into the bundle once its size, which the tar header needs first, is known.

``compresslevel`` keeps gzip's scale (0-9): 0 stores without compressing (always zlib, so the
members' bytes can be read in the file), 1-9 map onto ISA-L's levels 0-3.
"""

from __future__ import annotations

import hashlib
import queue
import struct
import threading
import zlib
from collections.abc import Iterable
from typing import Any, Final, Protocol

try:
    from isal import isal_zlib as _isal
except ImportError:  # an optional speed-up; zlib writes the same format
    _isal = None  # type: ignore[assignment]

# gzip 1-9 onto ISA-L 0-3: 6, the writer's default, is ISA-L's own default (2).
_ISAL_LEVEL: Final = {1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 3, 8: 3, 9: 3}
_RAW: Final = -15  # wbits: deflate without a zlib or gzip wrapper
# What a member's deflate thread is handed at a time (a source of many small chunks costs one
# queue hand-over per MiB), and how many batches may wait: at most ~5 MiB in flight per member.
# Batches of 1 byte, 1 MiB and 4 MiB wrote 100 MB in the same time; 4 MiB cost 15 MB more RSS.
_BATCH: Final = 1 << 20
_QUEUED: Final = 4


class Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self, mode: int = ..., /) -> bytes: ...


def engine(compresslevel: int) -> str:
    """Which deflate writes a bundle at ``compresslevel``: ``isal`` or ``zlib``."""
    return "isal" if _isal is not None and compresslevel in _ISAL_LEVEL else "zlib"


def compressor(compresslevel: int) -> Compressor:
    """A raw deflate compressor; end each piece with :func:`end_piece`."""
    if engine(compresslevel) == "isal":
        made: Compressor = _isal.compressobj(_ISAL_LEVEL[compresslevel], _isal.DEFLATED, _RAW)
        return made
    return zlib.compressobj(compresslevel, zlib.DEFLATED, _RAW)


def end_piece(compressor: Compressor) -> bytes:
    """The rest of a piece, ending on a byte boundary and not final: pieces concatenate."""
    return compressor.flush(zlib.Z_SYNC_FLUSH)


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC-32 of A+B from those of A and B (B ``length2`` bytes long), as zlib's crc32_combine."""
    if _isal is not None:
        combined: int = _isal.crc32_combine(crc1, crc2, length2)
        return combined
    return _crc32_combine(crc1, crc2, length2)


def _gf2_times(matrix: list[int], vector: int) -> int:
    total = 0
    i = 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def _crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    # zlib's crc32_combine (crc32.c): apply length2 zero bytes to crc1 by squaring a GF(2) matrix.
    if length2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)
        if length2 & 1:
            crc1 = _gf2_times(even, crc1)
        length2 >>= 1
        if not length2:
            break
        odd = _gf2_square(even)
        if length2 & 1:
            crc1 = _gf2_times(odd, crc1)
        length2 >>= 1
        if not length2:
            break
    return crc1 ^ crc2


class GzipPieces:
    """One gzip stream into ``out`` from raw deflate pieces: the header at once, the pieces as
    they come (compressed here, or before), the final block and CRC-32/size trailer at close."""

    def __init__(self, out: Any, *, compresslevel: int, mtime: int) -> None:
        self._out = out
        self._level = compresslevel
        self._crc = 0
        self._size = 0
        # RFC 1952: deflate, no flags (no name: a temp file's name stays out), unknown OS.
        out.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", mtime & 0xFFFFFFFF) + b"\x00\xff")

    def add(self, data: bytes) -> None:
        """Compress ``data`` into a piece of its own."""
        if data:
            packer = compressor(self._level)
            self._out.write(packer.compress(data) + end_piece(packer))
            self.add_compressed((), zlib.crc32(data), len(data))

    def add_compressed(self, pieces: Iterable[bytes], crc: int, size: int) -> None:
        """Copy a piece compressed elsewhere (ended by :func:`end_piece`) of ``size`` bytes with
        CRC-32 ``crc``."""
        for piece in pieces:
            self._out.write(piece)
        self._crc = crc32_combine(self._crc, crc, size)
        self._size += size

    def close(self, last: bytes) -> None:
        """End the stream with ``last`` in its final block, then the trailer."""
        packer = compressor(self._level)
        self._out.write(packer.compress(last) + packer.flush(zlib.Z_FINISH))
        self.add_compressed((), zlib.crc32(last), len(last))
        self._out.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))


class MemberPacker:
    """A member's bytes on their way to its spool: SHA-256, CRC-32 and deflate, in a thread of its
    own (each lets go of the GIL), so the next chunk is redacted meanwhile. Bytes go over in
    batches of :data:`_BATCH`, at most :data:`_QUEUED` waiting: memory stays flat whatever the
    member's size.

    The thread starts with the first full batch: most of a capture's members are a few KiB, and a
    thread started and joined for each cost 5-8 ms of operator CPU per pod (issue 17), far more
    than deflating them inline. The deflate calls are the same either way (one per batch, then
    the end of the piece), so the bytes out are too."""

    def __init__(self, spool: Any, compresslevel: int) -> None:
        self._spool = spool
        self._compressor = compressor(compresslevel)
        self._hash = hashlib.sha256()
        self.crc = 0
        self.size = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUED)
        self._error: BaseException | None = None
        self._batch = bytearray()
        self._closed = False
        self._thread: threading.Thread | None = None

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        self._batch += data
        self.size += len(data)
        if len(self._batch) >= _BATCH:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="bundle-deflate", daemon=True)
                thread.start()  # kept only once started: stop() must not join a thread that never ran
                self._thread = thread
            self._queue.put(bytes(self._batch))
            self._batch.clear()
        return len(data)

    def _pack(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.crc = zlib.crc32(chunk, self.crc)
        if out := self._compressor.compress(chunk):
            self._spool.write(out)

    def _run(self) -> None:
        ended = False
        try:
            while (chunk := self._queue.get()) is not None:
                self._pack(chunk)
            ended = True
            self._spool.write(end_piece(self._compressor))
        except BaseException as exc:  # handed to the writer's thread, raised there
            self._error = exc
            while not ended and self._queue.get() is not None:
                pass  # a writer waiting to put wakes up, sees the error, and stops

    def close(self) -> None:
        """Wait for the last bytes to reach the spool; raises what went wrong there."""
        if self._thread is None:
            if self._error is not None:
                raise self._error  # every close says it, as the threaded path does
            if not self._closed:
                self._closed = True
                try:
                    if self._batch:
                        self._pack(bytes(self._batch))
                        self._batch.clear()
                    self._spool.write(end_piece(self._compressor))
                except BaseException as exc:
                    self._error = exc
                    raise
            return
        if self._batch and not self._closed and self._error is None:
            self._queue.put(bytes(self._batch))
            self._batch.clear()
        self.stop()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """End the thread (after what was written so far), raising nothing."""
        if not self._closed:
            self._closed = True
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()

    @property
    def threaded(self) -> bool:
        """Whether a deflate thread was started for this member."""
        return self._thread is not None

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
