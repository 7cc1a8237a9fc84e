"""Local spool: where a bundle waits when its upload fails, so nothing collected is lost.

The capture engine calls :func:`deliver` for each finished bundle; the operator calls
:func:`flush_spool` periodically (and the CLI on demand) to send what waits.

The spool mirrors object keys: ``<spool>/<key>`` and ``<spool>/<key>.sha256`` (``sha256sum``
format). The sidecar is written after the bundle, so a bundle without one is an interrupted
move and is ignored (its source copy was not removed, see :meth:`Spool.add`). Flushing is
idempotent: a spooled bundle already stored with the same SHA-256 is just removed from the spool.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from debugcap.errors import StorageError
from debugcap.storage import base

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpoolEntry:
    key: str
    path: Path
    sha256: str


@dataclass(frozen=True)
class Delivery:
    key: str
    stored: bool  # True: in the backend now; False: waiting in the spool
    location: str  # backend description, or the spool path
    error: str | None = None  # why the upload failed, when it did


@dataclass
class FlushReport:
    uploaded: list[str] = field(default_factory=list)
    already_stored: list[str] = field(default_factory=list)  # removed from the spool, nothing sent
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, message); still spooled
    not_attempted: list[str] = field(default_factory=list)  # still spooled; the store was failing

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_attempted


def _move(source: Path, target: Path) -> None:
    """Rename, or copy then rename across file systems; the source goes only once the copy is safe."""
    try:
        os.replace(source, target)
        # A bundle may come unsynced (its writer was told it would be uploaded and deleted at
        # once); in the spool it must survive a crash.
        with target.open("rb") as fh:
            os.fsync(fh.fileno())
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    with source.open("rb") as src, base.atomic_file(target) as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
    source.unlink()


class Spool:
    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)

    @property
    def directory(self) -> Path:
        return self._dir

    def _path(self, key: str) -> Path:
        return self._dir / base.check_key(key)

    def add(self, *, key: str, bundle: Path, sha256: str) -> SpoolEntry:
        """Move ``bundle`` (and drop its ``.sha256`` beside it) into the spool under ``key``."""
        base.check_sha256(sha256)
        target = self._path(key)
        bundle = Path(bundle)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if bundle.resolve() != target.resolve():
                _move(bundle, target)
            sidecar = target.with_name(target.name + base.CHECKSUM_SUFFIX)
            tmp = sidecar.with_name("." + sidecar.name + ".partial")
            tmp.write_bytes(base.checksum_line(sha256, key))
            os.replace(tmp, sidecar)
        except OSError as exc:
            raise StorageError(
                f"cannot spool bundle {bundle} as {key!r} in {self._dir}: {exc.strerror or exc}; "
                f"the bundle is still at {bundle if bundle.exists() else target}; "
                f"free space in {self._dir} and upload it later"
            ) from exc
        bundle.with_name(bundle.name + base.CHECKSUM_SUFFIX).unlink(missing_ok=True)
        return SpoolEntry(key=key, path=target, sha256=sha256)

    def entries(self) -> list[SpoolEntry]:
        """Complete spooled bundles (those with a sidecar), ordered by key."""
        found: list[SpoolEntry] = []
        if not self._dir.is_dir():
            return found
        for dirpath, _dirs, names in os.walk(self._dir):
            for name in names:
                if name.startswith(".") or name.endswith(base.CHECKSUM_SUFFIX):
                    continue
                path = Path(dirpath, name)
                sidecar = path.with_name(name + base.CHECKSUM_SUFFIX)
                if not sidecar.is_file():
                    continue
                sha = base.parse_checksum_line(sidecar.read_bytes())
                key = path.relative_to(self._dir).as_posix()
                if sha is None:
                    logger.warning("spooled %s has a malformed %s; left in place", path, sidecar.name)
                    continue
                found.append(SpoolEntry(key=key, path=path, sha256=sha))
        return sorted(found, key=lambda e: e.key)

    def discard(self, key: str) -> bool:
        """Remove ``key``'s spooled bundle, if there is one; whether there was."""
        path = self._path(key)
        if not path.is_file():
            return False
        self.remove(SpoolEntry(key=key, path=path, sha256=""))
        return True

    def remove(self, entry: SpoolEntry) -> None:
        # Bundle first: a crash in between leaves a harmless orphan sidecar, never an unlisted bundle.
        entry.path.unlink(missing_ok=True)
        entry.path.with_name(entry.path.name + base.CHECKSUM_SUFFIX).unlink(missing_ok=True)
        parent = entry.path.parent
        while parent != self._dir and parent.is_relative_to(self._dir):
            try:
                parent.rmdir()
            except OSError:
                break  # not empty: other bundles still wait there
            parent = parent.parent


def deliver(
    backend: base.StorageBackend,
    spool: Spool,
    *,
    key: str,
    bundle: Path,
    sha256: str,
    keep_local: bool = False,
) -> Delivery:
    """Store ``bundle`` under ``key``; if that fails, spool it. Raises only if spooling fails too.

    Uploading is best-effort (a failure is reported in the returned :class:`Delivery`, and the
    bundle waits in the spool); losing the bundle is not an option, so a failure to spool is a
    hard stop, raised as :class:`StorageError` with the bundle left where it was.
    """
    try:
        backend.put(key=key, path=bundle, sha256=sha256)
    except StorageError as exc:
        entry = spool.add(key=key, bundle=bundle, sha256=sha256)
        logger.warning("upload of %s failed; bundle kept in spool at %s: %s", key, entry.path, exc)
        return Delivery(key=key, stored=False, location=str(entry.path), error=str(exc))
    if not keep_local:
        bundle.unlink(missing_ok=True)
        bundle.with_name(bundle.name + base.CHECKSUM_SUFFIX).unlink(missing_ok=True)
    return Delivery(key=key, stored=True, location=backend.describe())


def flush_spool(backend: base.StorageBackend, spool: Spool, *, stop_on_failure: bool = True) -> FlushReport:
    """Upload every spooled bundle; remove each from the spool once the backend holds it intact.

    ``stop_on_failure`` (default) stops at the first store failure: when the store is down every
    bundle would otherwise wait through the full retry backoff. A local bundle whose content no
    longer matches its recorded SHA-256, or a key already holding a *different* bundle, is
    reported and left in the spool for a human: debugcap never overwrites or discards evidence.
    """
    report = FlushReport()
    entries = spool.entries()
    for index, entry in enumerate(entries):
        try:
            actual, _size = base.file_sha256(entry.path)
        except OSError as exc:
            report.failed.append((entry.key, f"cannot read spooled {entry.path}: {exc.strerror or exc}"))
            continue
        if actual != entry.sha256:
            report.failed.append(
                (
                    entry.key,
                    f"spooled {entry.path} has sha256 {actual} but was recorded as {entry.sha256}; it was "
                    f"damaged on local disk; check it with `debugcap verify` before uploading by hand",
                )
            )
            continue
        try:
            stored = backend.sha256(key=entry.key)
            if stored == entry.sha256:
                spool.remove(entry)
                report.already_stored.append(entry.key)
                continue
            if stored is not None:
                report.failed.append(
                    (
                        entry.key,
                        f"{backend.describe()} already holds a different bundle at {entry.key!r} "
                        f"(sha256 {stored}); the spooled copy {entry.path} was kept; compare both by hand",
                    )
                )
                continue
            backend.put(key=entry.key, path=entry.path, sha256=entry.sha256)
        except StorageError as exc:
            report.failed.append((entry.key, str(exc)))
            if stop_on_failure:
                report.not_attempted.extend(e.key for e in entries[index + 1 :])
                break
            continue
        spool.remove(entry)
        report.uploaded.append(entry.key)
    return report
