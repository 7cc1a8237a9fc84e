"""An unpacked bundle directory, read without ever following a link out of it.

Used by :func:`debugcap.bundle.verify.scan_directory` and by
:class:`debugcap.analysis.bundle_reading.BundleReader` for unpacked bundles. A bundle is something
people receive from others: a symlink in it (``pprof/heap.pb.gz -> ~/.ssh/id_ed25519``) must not
make ``report -o json`` read, hash or print a local file. Only regular files are entries; links
(to files or directories), fifos and devices are listed apart, never opened, never descended into.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO


def entries(root: Path) -> tuple[list[str], list[str]]:
    """(regular files, everything else that is not a directory: links, fifos, devices) under
    ``root``, as sorted POSIX paths relative to it. Linked directories are not descended into."""
    regular: list[str] = []
    other: list[str] = []
    for top, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(top, name)
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                continue
            (regular if stat.S_ISREG(mode) else other).append(path.relative_to(root).as_posix())
    return sorted(regular), sorted(other)


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file and not a link (else OSError), so that
    one swapped for a link or a fifo after the scan is refused, not followed or waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
