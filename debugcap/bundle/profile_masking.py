"""Masking secrets inside pprof profiles without breaking them.

:class:`debugcap.bundle.writer.BundleWriter` runs every decompressed profile through
:func:`mask_profile`; the patterns themselves are :mod:`debugcap.bundle.redact`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from debugcap.bundle.redact import RedactionReport, mask_same_length
from debugcap.bundle.redact_detectors import Detector

_PROFILE_STRING_TABLE: Final = 6
# A longer "string" is not a label; copying it through keeps memory flat (judgement call).
_MAX_PROFILE_STRING: Final = 1024 * 1024
_OUTPUT_PIECE: Final = 256 * 1024


def mask_profile(  # long: hot loop over every field, see docstring
    chunks: Iterable[bytes],
    file: str,
    report: RedactionReport,
    extra: Sequence[Detector] = (),
) -> Iterator[bytes]:
    """Stream a decompressed pprof protobuf, masking secrets inside its string table.

    Labels (``pprof.Do``/``pprof.Labels``) are the strings applications fill with request data,
    so they are where secrets can hide. The top-level fields are walked, not regex-scanned: a
    regex over raw protobuf would run past a string's end into the next field's bytes. Masks are
    same-length, so every length prefix stays valid and ``go tool pprof`` reads the result.
    Raises ValueError when the bytes are not a protobuf.

    A profile has thousands of small top-level fields (samples, locations, strings), so the walk
    indexes one buffer and hands out output in large pieces: per-field reads and writes made
    this the costliest step of writing a bundle.
    """
    source = iter(chunks)
    buf = bytearray()
    pos = 0
    out = bytearray()

    def fill(size: int) -> bool:
        """At least ``size`` unread bytes in ``buf``, unless the input ends first."""
        nonlocal buf
        while len(buf) - pos < size:
            chunk = next(source, None)
            if chunk is None:
                return False
            buf += chunk
        return True

    def varint() -> int:
        nonlocal pos
        if len(buf) - pos < 10:
            fill(10)  # the longest varint; fewer bytes are fine at the very end
        value = shift = 0
        while True:
            if pos >= len(buf):
                raise ValueError("protobuf ends inside a varint")
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift >= 70:
                raise ValueError("protobuf varint longer than 10 bytes")

    while True:
        if pos >= _OUTPUT_PIECE:
            del buf[:pos]  # only here, between fields, so no index into buf is held
            pos = 0
        if len(buf) - pos < 64:
            fill(64)  # most fields are shorter: one check here saves one per read below
            if len(buf) == pos:
                break
        start = pos
        tag = varint()
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise ValueError("protobuf field number 0")
        if wire == 0:
            varint()
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if len(buf) - pos < size and not fill(size):
                raise ValueError(f"protobuf ends inside a field ({size} bytes wanted)")
            pos += size
        elif wire == 2:
            length = varint()
            if field == _PROFILE_STRING_TABLE and length <= _MAX_PROFILE_STRING:
                if len(buf) - pos < length and not fill(length):
                    raise ValueError(f"protobuf ends inside a field ({length} bytes wanted)")
                out += buf[start:pos]
                out += mask_same_length(bytes(buf[pos : pos + length]), file, report, extra)
                pos += length
                start = pos
            else:
                out += buf[start:pos]
                while length:
                    if not fill(1):
                        raise ValueError("protobuf ends inside a field")
                    take = min(length, len(buf) - pos)
                    out += buf[pos : pos + take]
                    pos += take
                    length -= take
                    if len(out) >= _OUTPUT_PIECE:
                        yield bytes(out)
                        out.clear()
                    del buf[:pos]  # a long field must not pile up in memory
                    pos = 0
                start = pos
        else:
            raise ValueError(f"protobuf wire type {wire} is not used by pprof")
        out += buf[start:pos]
        if len(out) >= _OUTPUT_PIECE:
            yield bytes(out)
            out.clear()
    if out:
        yield bytes(out)
