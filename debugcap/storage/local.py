"""A directory as object store: the default when no S3 endpoint is configured.

Keys map to paths under the root (``<root>/<key>``, with ``<root>/<key>.sha256`` beside), so the
directory can be browsed, copied or checked with ``sha256sum -c`` by hand.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from debugcap.errors import StorageError
from debugcap.storage import base

_CHUNK = 1024 * 1024


class LocalBackend(base.StorageBackend):
    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        return self._root

    def describe(self) -> str:
        return f"local directory {self._root}"

    def _path(self, key: str) -> Path:
        return self._root / base.check_key(key)

    def _error(self, action: str, key: str, exc: OSError) -> StorageError:
        return StorageError(
            f"{action} {key!r} in {self.describe()} failed: {exc.strerror or exc}; "
            f"check the directory exists, is writable and has free space"
        )

    def put(self, *, key: str, path: Path, sha256: str) -> base.StoredObject:
        target = self._path(key)
        base.check_sha256(sha256)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                # Linked, not renamed, into place: a key taken meanwhile fails here, never replaced.
                size = _copy_hashing(Path(path), target, expected=sha256, exclusive=True)
            except _ChangedError as exc:
                raise StorageError(
                    f"storing {key!r} in {self.describe()}: {path} has sha256 {exc.digest}, expected {sha256}; "
                    f"the local bundle changed after it was written; verify it with `sha256sum -c`"
                ) from None
            except FileExistsError:
                size = self._adopt(key, target, sha256)
            with base.atomic_file(target.with_name(target.name + base.CHECKSUM_SUFFIX)) as fh:
                fh.write(base.checksum_line(sha256, key))
        except OSError as exc:
            raise self._error("storing", key, exc) from exc
        return base.StoredObject(key=key, sha256=sha256, size=size)

    def _adopt(self, key: str, target: Path, sha256: str) -> int:
        """The size of the object already at ``key`` when it is this bundle (an earlier put of it,
        perhaps cut before its sidecar); else :class:`base.KeyConflictError`."""
        digest, size = base.file_sha256(target)
        if digest != sha256:
            raise base.conflict(self.describe(), key, digest, sha256)
        return size

    def get(self, *, key: str, dest: Path) -> base.StoredObject:
        source = self._path(key)
        expected = self.sha256(key=key)
        if expected is None:
            raise base.MissingObjectError(
                f"{key!r} is not in {self.describe()}; list what is there with list(prefix=...)"
            )
        try:
            Path(dest).parent.mkdir(parents=True, exist_ok=True)
            size = _copy_hashing(source, Path(dest), expected=expected)
        except _ChangedError as exc:
            raise base.CorruptObjectError(
                f"{key!r} in {self.describe()} is corrupt: sha256 {exc.digest}, recorded {expected}; "
                f"restore it from the spool or another copy"
            ) from None
        except OSError as exc:
            raise self._error("fetching", key, exc) from exc
        return base.StoredObject(key=key, sha256=expected, size=size)

    def exists(self, *, key: str) -> bool:
        return self._path(key).is_file()

    def sha256(self, *, key: str) -> str | None:
        target = self._path(key)
        sidecar = target.with_name(target.name + base.CHECKSUM_SUFFIX)
        if not target.is_file() or not sidecar.is_file():
            return None
        return base.parse_checksum_line(sidecar.read_bytes())

    def list(self, *, prefix: str) -> Iterator[str]:
        if not self._root.is_dir():
            return iter(())
        found = []
        for dirpath, _dirs, names in os.walk(self._root):
            for name in names:
                if name.endswith(base.CHECKSUM_SUFFIX) or name.startswith("."):
                    continue  # sidecars and in-progress temp files are not objects
                key = Path(dirpath, name).relative_to(self._root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        return iter(sorted(found))

    def delete(self, *, key: str) -> None:
        target = self._path(key)
        try:
            target.unlink(missing_ok=True)
            target.with_name(target.name + base.CHECKSUM_SUFFIX).unlink(missing_ok=True)
        except OSError as exc:
            raise self._error("deleting", key, exc) from exc

    def uri(self, *, key: str) -> str:
        return self._path(key).absolute().as_uri()

    def url(self, *, key: str, expires: timedelta = timedelta(days=7)) -> str:
        # A file URL does not expire; `expires` exists for interface compatibility with S3.
        return self._path(key).resolve().as_uri()


class _ChangedError(Exception):
    def __init__(self, digest: str) -> None:
        super().__init__(digest)
        self.digest = digest


def _copy_hashing(source: Path, target: Path, *, expected: str | None = None, exclusive: bool = False) -> int:
    """Copy through a temp file beside ``target`` and rename (or link, ``exclusive``), hashing on
    the way; the size. A digest other than ``expected`` raises :class:`_ChangedError` before
    ``target`` is touched."""
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, base.atomic_file(target, exclusive=exclusive) as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            dst.write(chunk)
        if expected is not None and digest.hexdigest() != expected:
            raise _ChangedError(digest.hexdigest())
    return size
