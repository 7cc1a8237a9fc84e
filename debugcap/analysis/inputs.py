"""What a command was given, from its first bytes: a bundle (directory or archive), a dump, an
execution trace or a profile.

Callers: the ``top``/``goroutines``/``diff``/``report`` commands and
:mod:`debugcap.analysis.bundle_reading`. Kept apart and light (no protobuf, no report) because
the ``goroutines`` command asks it before reading a text dump.
"""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path
from typing import Final, Literal

Kind = Literal["directory", "archive", "dump", "trace", "profile"]

_GZIP_MAGIC: Final = b"\x1f\x8b"
_ARCHIVE_NAMES: Final = (".tar.gz", ".tgz", ".tar")
# Every Go execution trace starts so, whatever its format version ("go 1.26 trace\0\0\0").
_TRACE_HEADER: Final = re.compile(rb"go 1\.\d+ trace\0")


def kind_of(path: str | os.PathLike[str]) -> Kind:
    """``directory``, ``archive`` (a tar, gzip-compressed or not), ``dump`` (goroutine text),
    ``trace`` (a Go execution trace) or ``profile`` (anything else: the profile reader says what is
    wrong with it)."""
    p = Path(path)
    if p.is_dir():
        return "directory"
    try:
        with p.open("rb") as fh:
            raw = fh.read(4096)
    except OSError:
        return "profile"
    if _TRACE_HEADER.match(raw):
        return "trace"
    data = raw
    if raw.startswith(_GZIP_MAGIC):
        try:
            data = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(raw, 1024)
        except zlib.error:
            data = b""
    # A tar header carries "ustar" at offset 257. By its name an archive damaged from its first
    # bytes is still one: the bundle reader then says how it is damaged.
    if data[257:262] == b"ustar" or p.name.endswith(_ARCHIVE_NAMES):
        return "archive"
    if data.lstrip().startswith(b"goroutine"):
        return "dump"
    return "profile"


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """A directory, or a tar archive (a .pb.gz profile is gzip but not tar)."""
    return Path(path).exists() and kind_of(path) in ("directory", "archive")
