"""The storage interface every backend implements, and the key rules they share.

:mod:`debugcap.storage.local` (a directory, the default when no S3 is configured) and
:mod:`debugcap.storage.s3` (MinIO/S3 through the ``minio`` client) implement it;
:mod:`debugcap.storage.spool` and the capture engine call it. Keys come from
:func:`debugcap.bundle.layout.object_key`. Each stored bundle has a sidecar object
``<key>.sha256`` in ``sha256sum`` format, so a plain ``aws s3 cp``/``mc cp`` of both files can
be checked with ``sha256sum -c`` without debugcap.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Final

from debugcap.errors import StorageError

CHECKSUM_SUFFIX: Final = ".sha256"
# S3 allows 1024 bytes; local file systems allow 255 per name, which layout keys never approach.
MAX_KEY_BYTES: Final = 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")  # used with fullmatch: "$" would let a trailing newline through
_KEY_CHARS = re.compile(r"[A-Za-z0-9._/-]+")  # fullmatch, like _SHA256


class MissingObjectError(StorageError):
    """The key is not stored (deleted, expired, or never uploaded)."""


class CorruptObjectError(StorageError):
    """The object read does not match the SHA-256 recorded with it: a reader must not keep it."""


class KeyConflictError(StorageError):
    """The key already holds an object this bundle is not (another SHA-256, or none recorded).

    Permanent: trying again changes nothing, and the object there is someone's evidence, so it is
    never replaced. The spool sets such a bundle aside (:meth:`debugcap.storage.spool.Spool.add`
    with ``held``) for a person to compare.
    """

    def __init__(self, message: str, *, key: str, stored_sha256: str | None) -> None:
        super().__init__(message)
        self.key = key
        self.stored_sha256 = stored_sha256


def conflict(where: str, key: str, stored: str | None, sha256: str) -> KeyConflictError:
    """The error of a put that found ``key`` holding another object (``stored``: its SHA-256)."""
    holds = f"an object with sha256 {stored}" if stored else "an object with no recorded sha256"
    return KeyConflictError(
        f"{where} already holds {holds} at {key!r}, not this bundle (sha256 {sha256}); it was not "
        f"replaced; keep both: compare them (kubectl debugcap verify) and store this one under a key "
        f"of its own, or delete the one you do not need",
        key=key, stored_sha256=stored,
    )


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int


def check_key(key: str) -> str:
    """Return ``key`` if every backend can store it safely, else raise :class:`StorageError`.

    Rejected: empty, leading or trailing ``/``, empty/``.``/``..`` segments (they would escape a
    local root or alias another key), characters outside ``[A-Za-z0-9._/-]`` and keys over 1024
    bytes. ``<key>.sha256`` is reserved for the sidecar.
    """
    problem = None
    if not key or key.startswith("/") or key.endswith("/"):
        problem = "it must be non-empty and must not start or end with '/'"
    elif any(segment in ("", ".", "..") for segment in key.split("/")):
        problem = "it has an empty, '.' or '..' segment"
    elif not _KEY_CHARS.fullmatch(key):
        problem = "it has characters other than letters, digits, '.', '_', '-' and '/'"
    elif len(key.encode()) > MAX_KEY_BYTES:
        problem = f"it is longer than {MAX_KEY_BYTES} bytes"
    elif key.endswith(CHECKSUM_SUFFIX):
        problem = f"'{CHECKSUM_SUFFIX}' keys are reserved for checksum sidecars"
    if problem:
        raise StorageError(
            f"object key {key!r} is invalid: {problem}; build keys with bundle.layout.object_key"
        )
    return key


def check_sha256(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise StorageError(
            f"{sha256!r} is not a lower-case hex SHA-256; pass the bundle's WrittenBundle.sha256"
        )
    return sha256


def checksum_key(key: str) -> str:
    """Key of the sidecar holding ``key``'s SHA-256."""
    return key + CHECKSUM_SUFFIX


def checksum_line(sha256: str, key: str) -> bytes:
    """Sidecar content: ``sha256sum`` format naming the object's base name, as beside a download."""
    return f"{sha256}  {key.rsplit('/', 1)[-1]}\n".encode()


def parse_checksum_line(data: bytes) -> str | None:
    """The SHA-256 in a sidecar, or None when the sidecar is malformed."""
    head = data.decode("utf-8", "replace").strip().split(" ", 1)[0]
    return head if _SHA256.fullmatch(head) else None


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class StorageBackend(ABC):
    """Where finished bundles live. All methods are keyword-only; keys pass :func:`check_key`."""

    @abstractmethod
    def put(self, *, key: str, path: Path, sha256: str) -> StoredObject:
        """Store the file at ``path`` under ``key`` with its SHA-256, and ``<key>.sha256`` beside it.

        Verified before returning (size and recorded SHA-256); raises :class:`StorageError` if the
        object is not stored intact. Never replaces an object it did not write: a key already
        holding this SHA-256 (an earlier try whose answer was lost) is stored, its sidecar written
        if missing; a key holding anything else raises :class:`KeyConflictError`.
        """

    @abstractmethod
    def get(self, *, key: str, dest: Path) -> StoredObject:
        """Download ``key`` to ``dest`` and check it against the stored SHA-256."""

    @abstractmethod
    def exists(self, *, key: str) -> bool:
        """Whether ``key`` is stored (its sidecar alone does not count)."""

    @abstractmethod
    def sha256(self, *, key: str) -> str | None:
        """The SHA-256 recorded with ``key``, or None when ``key`` is not stored."""

    @abstractmethod
    def list(self, *, prefix: str) -> Iterator[str]:
        """Keys under ``prefix``, sidecars excluded, in lexical order.

        Example: ``list(prefix="debugcap/prod-eu/shop/")`` yields
        ``debugcap/prod-eu/shop/api-1/2026/11/23/shop_api-1_20261123T160000Z.tar.gz``, ...
        """

    @abstractmethod
    def delete(self, *, key: str) -> None:
        """Delete ``key`` and its sidecar; deleting a missing key is not an error."""

    def abort_stale_uploads(self, *, prefix: str, older_than: timedelta) -> Sequence[str]:
        """Abort uploads under ``prefix`` begun more than ``older_than`` ago and never finished (a
        writer killed mid-upload, whose key no later put retries); the keys they were for.
        Best-effort: never raises. Only S3 has such uploads; elsewhere there is nothing to abort."""
        return []

    @abstractmethod
    def url(self, *, key: str, expires: timedelta = timedelta(days=7)) -> str:
        """A URL a user can download ``key`` from (presigned for S3, ``file://`` locally)."""

    @abstractmethod
    def uri(self, *, key: str) -> str:
        """Where ``key`` is stored, as the status of a capture names it: ``s3://bucket/key``,
        ``file:///<absolute directory>/<key>``. Not a download link (see :meth:`url`) and no server is asked."""

    @abstractmethod
    def describe(self) -> str:
        """Where this backend stores things, for messages: ``s3://bucket at host:9000``, a directory."""


@contextmanager
def atomic_file(target: Path, *, durable: bool = True, exclusive: bool = False) -> Iterator[BinaryIO]:
    """Write ``target`` through a temp file beside it, fsynced (when ``durable``) and renamed into place.

    Readers never see half a file: on any error the temp file is removed and
    ``target`` is left as it was. ``exclusive``: a hard link instead of a rename, which fails with
    :class:`FileExistsError` when ``target`` exists (a rename would replace it), with no window
    between a check and the write. Where the file system has no hard links (exFAT, SMB, some
    FUSE), ``target`` is created exclusively and the temp file copied into it instead: still never
    replacing a file, though a reader may then see it before it is whole (the store's sidecar,
    written after, is what marks an object complete).
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if exclusive:
            _place_exclusive(Path(tmp), target, durable=durable)
        else:
            os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# link(2) failing for want of hard links on the file system, not because of the target.
_NO_HARD_LINKS: Final = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK})


def _place_exclusive(tmp: Path, target: Path, *, durable: bool) -> None:
    """Move ``tmp`` to ``target`` unless ``target`` exists (:class:`FileExistsError`)."""
    try:
        os.link(tmp, target)
    except OSError as exc:
        if isinstance(exc, FileExistsError) or exc.errno not in _NO_HARD_LINKS:
            raise
        _copy_exclusive(tmp, target, durable=durable)
    tmp.unlink()


def _copy_exclusive(tmp: Path, target: Path, *, durable: bool) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # as mkstemp's  # FileExistsError: left alone
    try:
        with os.fdopen(fd, "wb") as out, tmp.open("rb") as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
            out.flush()
            if durable:
                os.fsync(out.fileno())
    except BaseException:
        target.unlink(missing_ok=True)  # ours (O_EXCL made it): half a file is no object
        raise
