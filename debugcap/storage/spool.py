"""Local spool: where a bundle waits when its upload fails, so nothing collected is lost.

The capture engine calls :func:`deliver` for each finished bundle; the operator calls
:func:`flush_spool` periodically (and the CLI on demand) to send what waits.

The spool mirrors object keys: ``<spool>/<key>`` and ``<spool>/<key>.sha256`` (``sha256sum``
format). The sidecar is written before the bundle is moved in, so a disk that fills up stops
the add with the bundle still where it was; a bundle name is only ever complete (renamed into
place), and one found without its sidecar (spooled by an older version that wrote it second) is
hashed and listed again, never stranded. A sidecar-less file that is no bundle (no ``.tar.gz``
name, or no valid key: a ``README``, fsck's ``lost+found/#1234``) is someone else's: never sent,
warned about once. Flushing is idempotent: a spooled bundle already stored
with the same SHA-256 is just removed from the spool.

A key that already holds another object in the store (:class:`~debugcap.storage.base.KeyConflictError`)
is permanent: trying again would fail the same way forever, and the store never replaces it. Such
a bundle is *held*: moved to ``<spool>/.held/<key>`` (with its sidecar), reported once by the
delivery or flush that found it, listed by :meth:`Spool.held`, and never sent by a flush. A
person compares the two (the message names both SHA-256s) and stores the held one under a key of
its own, or deletes it. A second bundle held for one key goes beside the first, as
``<key>.<sha256[:12]>``: no held bundle replaces another.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import re
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from debugcap import errors
from debugcap.errors import StorageError
from debugcap.storage import base

logger = logging.getLogger(__name__)

HELD: Final = ".held"  # under the spool: bundles whose key holds another object; never a key segment of ours
BUNDLE_SUFFIX: Final = ".tar.gz"  # bundle.layout.BUNDLE_SUFFIX (a layer above)
_HELD_TAG: Final = 12  # hex digits of the SHA-256 naming a second bundle held for one key
_HELD_TWIN = re.compile(r"(?P<key>.+\.tar\.gz)\.[0-9a-f]{12}")  # fullmatch: <key>.<sha256[:12]>


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
    held: bool = False  # the key holds another object: set aside in the spool, no flush sends it


@dataclass
class FlushReport:
    uploaded: list[str] = field(default_factory=list)
    already_stored: list[str] = field(default_factory=list)  # removed from the spool, nothing sent
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, message); still spooled
    not_attempted: list[str] = field(default_factory=list)  # still spooled; the store was failing
    # (key, message): the key holds another object; moved to the spool's .held/, not tried again.
    # Not a failure of the flush (``ok`` ignores it): the message is the one report a person gets.
    held: list[tuple[str, str]] = field(default_factory=list)
    # Not sent (or deleted again right after): the capture the key belongs to is gone.
    discarded: list[str] = field(default_factory=list)
    # (key, message): whose owner the API server refused to tell (forbidden: a namespace no
    # longer served); still spooled, skipped, the others sent. Logged once per key.
    refused: list[tuple[str, str]] = field(default_factory=list)
    # (key, sha256, size) of every bundle the store now holds from the spool (uploaded or found
    # already stored): its owner's status may still call it spooled.
    sent: list[tuple[str, str, int]] = field(default_factory=list, compare=False)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_attempted and not self.refused


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
        self._ignored: set[Path] = set()  # stray files already warned about
        self.refused: set[str] = set()  # keys whose owner lookup was refused, already warned about

    @property
    def directory(self) -> Path:
        return self._dir

    def _path(self, key: str) -> Path:
        return self._dir / base.check_key(key)

    def _held_path(self, key: str) -> Path:
        return self._dir / HELD / base.check_key(key)

    def add(self, *, key: str, bundle: Path, sha256: str, held: bool = False) -> SpoolEntry:
        """Move ``bundle`` (and drop its ``.sha256`` beside it) into the spool under ``key``;
        ``held``: into ``.held/``, where no flush looks."""
        base.check_sha256(sha256)
        target = self._held_beside(self._held_path(key), sha256) if held else self._path(key)
        bundle = Path(bundle)
        sidecar = target.with_name(target.name + base.CHECKSUM_SUFFIX)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # The sidecar first: with the disk full, the add fails before the bundle moves, instead
            # of after, when the bundle would sit in the spool without the sidecar listing it.
            with base.atomic_file(sidecar) as fh:
                fh.write(base.checksum_line(sha256, target.name))  # a held twin's own name
            if bundle.resolve() != target.resolve():
                _move(bundle, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                if not target.exists():  # no sidecar without its bundle (harmless, but untidy)
                    sidecar.unlink(missing_ok=True)
            raise StorageError(
                f"cannot spool bundle {bundle} as {key!r} in {self._dir}: {exc.strerror or exc}; "
                f"the bundle is still at {bundle if bundle.exists() else target}; "
                f"free space in {self._dir} and upload it later"
            ) from exc
        bundle.with_name(bundle.name + base.CHECKSUM_SUFFIX).unlink(missing_ok=True)
        return SpoolEntry(key=key, path=target, sha256=sha256)

    @staticmethod
    def _held_beside(target: Path, sha256: str) -> Path:
        """Where to hold a bundle of ``sha256`` for ``target``'s key: ``target`` itself, unless it
        holds another bundle already (a second delivery to the same taken key), which is evidence
        too: then ``<key>.<sha256[:12]>`` beside it."""
        sidecar = target.with_name(target.name + base.CHECKSUM_SUFFIX)
        try:
            if not target.is_file():
                return target
            there = (base.parse_checksum_line(sidecar.read_bytes()) if sidecar.is_file()
                     else base.file_sha256(target)[0])
        except OSError:
            there = None  # unreadable: not known to be this bundle, so not replaced either
        return target if there == sha256 else target.with_name(f"{target.name}.{sha256[:_HELD_TAG]}")

    def hold(self, entry: SpoolEntry) -> SpoolEntry:
        """Move a spooled bundle to ``.held/``: its key holds another object in the store."""
        held = self.add(key=entry.key, bundle=entry.path, sha256=entry.sha256, held=True)
        self.remove(entry)  # the sidecar left behind, and empty directories
        return held

    def entries(self) -> list[SpoolEntry]:
        """Bundles waiting to be sent, ordered by key (held ones excluded: see :meth:`held`)."""
        return self._walk(self._dir, skip_held=True)

    def held(self) -> list[SpoolEntry]:
        """Bundles set aside because their key holds another object in the store, ordered by key."""
        return self._walk(self._dir / HELD, skip_held=False)

    def _walk(self, root: Path, *, skip_held: bool) -> list[SpoolEntry]:
        found: list[SpoolEntry] = []
        if not root.is_dir():
            return found
        for dirpath, dirs, names in os.walk(root):
            if skip_held and Path(dirpath) == root and HELD in dirs:
                dirs.remove(HELD)
            for name in names:
                if name.startswith(".") or name.endswith(base.CHECKSUM_SUFFIX):
                    continue
                path = Path(dirpath, name)
                key = path.relative_to(root).as_posix()
                twin = None if skip_held else _HELD_TWIN.fullmatch(key)
                if twin is not None:  # a second bundle held for one key: listed under that key
                    key = twin["key"]
                sha = self._recorded_sha256(path, key)
                if sha is not None:
                    found.append(SpoolEntry(key=key, path=path, sha256=sha))
        return sorted(found, key=lambda e: e.key)

    def discard(self, key: str) -> bool:
        """Remove ``key``'s spooled bundle, waiting or held, if there is one; whether there was.
        (Its key's owner is gone, as when a capture expires: a held copy goes with it.)"""
        found = False
        held = self._held_path(key)
        twins = sorted(held.parent.glob(f"{glob.escape(held.name)}.{'[0-9a-f]' * _HELD_TAG}"))
        for path in (self._path(key), held, *twins):
            if path.is_file():
                self.remove(SpoolEntry(key=key, path=path, sha256=""))
                found = True
        return found

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


    def _recorded_sha256(self, path: Path, key: str) -> str | None:
        """The SHA-256 recorded beside a spooled bundle; for a bundle without a sidecar, its own,
        written down again (best-effort: a full disk still lists it, hashed anew next time).
        A sidecar-less file that is no bundle of ours is not listed (None), with one warning."""
        sidecar = path.with_name(path.name + base.CHECKSUM_SUFFIX)
        if not sidecar.is_file():
            problem = _not_a_bundle(key)
            if problem is not None:
                if path not in self._ignored:  # a flush runs every few minutes: said once
                    self._ignored.add(path)
                    logger.warning("ignoring %s in the spool %s: %s and it has no %s, so no debugcap spooled "
                                   "it; it is never uploaded; move it out of the spool directory",
                                   path, self._dir, problem, sidecar.name)
                return None
        return _recorded_sha256(path, key, sidecar)


def _not_a_bundle(key: str) -> str | None:
    """Why ``key`` cannot be a spooled bundle's (None when it can): a bundle's name ends in
    ``.tar.gz`` (as ``bundle.layout.stem`` requires, which this layer cannot import) and its key
    passes :func:`base.check_key`. Anything else in the directory (a ``README``, fsck's
    ``lost+found/#1234`` on a volume) was put there by someone else."""
    name = key.rsplit("/", 1)[-1]
    if not name.endswith(BUNDLE_SUFFIX) or name == BUNDLE_SUFFIX:
        return f"its name is not a bundle's (<...>{BUNDLE_SUFFIX})"
    try:
        base.check_key(key)
    except StorageError:
        return f"{key!r} is not a valid object key"
    return None


def _recorded_sha256(path: Path, key: str, sidecar: Path) -> str | None:
    try:
        if sidecar.is_file():
            sha = base.parse_checksum_line(sidecar.read_bytes())
            if sha is None:
                logger.warning("spooled %s has a malformed %s; left in place", path, sidecar.name)
            return sha
        # Only complete bundles carry a bundle's name (they are renamed into place), so this one
        # lost its sidecar, not its tail: an older spool wrote the sidecar after the move, and a
        # full disk stopped it there.
        sha, _size = base.file_sha256(path)
    except OSError as exc:
        logger.warning("cannot read spooled %s (%s); left in place", path, exc.strerror or exc)
        return None
    try:
        with base.atomic_file(sidecar) as fh:
            fh.write(base.checksum_line(sha, key))
        logger.warning("spooled %s had no %s: hashed and recorded again", path, sidecar.name)
    except OSError as exc:
        logger.warning("spooled %s has no %s and it cannot be written (%s); listed with its hash anyway",
                       path, sidecar.name, exc.strerror or exc)
    return sha


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
    except base.KeyConflictError as exc:
        entry = spool.add(key=key, bundle=bundle, sha256=sha256, held=True)
        message = f"{exc}; this bundle is set aside at {entry.path} and will not be sent again"
        logger.error("upload of %s refused: %s", key, message)
        return Delivery(key=key, stored=False, location=str(entry.path), error=message, held=True)
    except StorageError as exc:
        entry = spool.add(key=key, bundle=bundle, sha256=sha256)
        logger.warning("upload of %s failed; bundle kept in spool at %s: %s", key, entry.path, exc)
        return Delivery(key=key, stored=False, location=str(entry.path), error=str(exc))
    if not keep_local:
        bundle.unlink(missing_ok=True)
        bundle.with_name(bundle.name + base.CHECKSUM_SUFFIX).unlink(missing_ok=True)
    return Delivery(key=key, stored=True, location=backend.describe())


# Whether a spooled key may still be sent: True sends it, False discards it (its owner is gone).
# An exception leaves it spooled (the owner could not be looked up), as a store failure does.
Wanted = Callable[[str], bool]


def flush_spool(backend: base.StorageBackend, spool: Spool, *, stop_on_failure: bool = True,
                lock: AbstractContextManager[object] | None = None, wanted: Wanted | None = None,
                stopped: Callable[[], bool] | None = None) -> FlushReport:
    """Upload every spooled bundle; remove each from the spool once the backend holds it intact.

    ``stop_on_failure`` (default) stops at the first store failure: when the store is down every
    bundle would otherwise wait through the full retry backoff. A local bundle whose content no
    longer matches its recorded SHA-256 is reported and left in the spool for a human; one whose
    key already holds a *different* object is held (``report.held``: moved to ``.held/``, reported
    this once, never sent again): debugcap never overwrites or discards evidence.

    ``lock`` is taken per bundle (check, put, remove), never for the whole backlog: a delivery or a
    delete waits for one upload at most. ``wanted`` is asked before each upload and again after it:
    a bundle whose owner is gone (a capture deleted while its bundle waited here) is discarded, or
    deleted from the store if it vanished during the put, so no object outlives every status that
    could name it. ``stopped`` is asked between bundles: the rest stay spooled (``not_attempted``).
    """
    report = FlushReport()
    entries = spool.entries()
    for index, entry in enumerate(entries):
        if stopped is not None and stopped():
            report.not_attempted.extend(e.key for e in entries[index:])
            break
        try:
            base.check_key(entry.key)
        except StorageError as exc:  # this entry's problem, not the store's: the others still go
            report.failed.append((entry.key, f"spooled {entry.path} cannot be sent: {exc}"))
            continue
        verdict = _wanted(wanted, spool, entry, report)
        if verdict is None:
            if stop_on_failure:
                report.not_attempted.extend(e.key for e in entries[index + 1 :])
                break
            continue
        if not verdict:
            continue
        with lock if lock is not None else contextlib.nullcontext():
            outcome = _send_one(backend, spool, entry, report)
        if outcome == "store-failed":
            if stop_on_failure:
                report.not_attempted.extend(e.key for e in entries[index + 1 :])
                break
            continue
        if outcome == "uploaded" and _wanted(wanted, spool, entry, report, after_put=True) is False:
            _unsend(backend, entry, report)
    return report


def _wanted(wanted: Wanted | None, spool: Spool, entry: SpoolEntry, report: FlushReport, *,
            after_put: bool = False) -> bool | None:
    """Whether ``entry``'s owner still wants it; None when that could not be told (reported as failed).
    Not wanted before the put: the spooled copy is discarded here."""
    if wanted is None:
        return True
    try:
        keep = wanted(entry.key)
    except Exception as exc:  # noqa: BLE001 - whatever the lookup raised, the bundle stays spooled
        if after_put:
            return None  # sent; whether to delete it again cannot be told: kept, as any evidence
        why = (f"cannot tell whether {entry.key} still has an owner ({exc}); it stays in the spool "
               f"{spool.directory}")
        if _transient(exc):  # the API server is away: the later bundles would fail alike
            report.failed.append((entry.key, why))
            return None
        # A refusal is this entry's alone (a namespace no longer served answers 403): stopping the
        # flush here stopped it for good, every bundle behind this one never sent.
        report.refused.append((entry.key, why))
        if entry.key not in spool.refused:
            spool.refused.add(entry.key)
            logger.warning("%s; the flush skips it and goes on (grant the operator get on its DebugCapture, "
                           "or delete the file once it is not needed)", why)
        return False
    if not keep and not after_put:
        spool.remove(entry)
        report.discarded.append(entry.key)
        logger.warning("discarded spooled %s without sending it: the capture it belongs to is gone", entry.key)
    return keep


def _transient(exc: Exception) -> bool:
    """Whether the lookup may answer if asked again: the API server (or the way to it) failed, not refused."""
    if isinstance(exc, (errors.ForbiddenError, errors.InvalidError, errors.NotFoundError)):
        return False
    return isinstance(exc, (errors.KubeError, OSError))


def _unsend(backend: base.StorageBackend, entry: SpoolEntry, report: FlushReport) -> None:
    """The owner vanished while ``entry`` was being put: the object goes too (nothing would delete it)."""
    try:
        backend.delete(key=entry.key)
    except StorageError as exc:
        logger.error("sent spooled %s, but its capture was deleted meanwhile and deleting the object failed: %s; "
                     "delete it from %s by hand", entry.key, exc, backend.describe())
        return
    report.uploaded.remove(entry.key)
    report.sent = [s for s in report.sent if s[0] != entry.key]
    report.discarded.append(entry.key)
    logger.warning("deleted %s from %s right after sending it from the spool: its capture was deleted meanwhile",
                   entry.key, backend.describe())


def _send_one(backend: base.StorageBackend, spool: Spool, entry: SpoolEntry, report: FlushReport) -> str:
    """Check, put and unspool one bundle (under the caller's lock); what became of it."""
    if not entry.path.is_file():
        return "gone"  # a delete discarded it while this flush waited for the lock
    try:
        actual, size = base.file_sha256(entry.path)
    except OSError as exc:
        report.failed.append((entry.key, f"cannot read spooled {entry.path}: {exc.strerror or exc}"))
        return "failed"
    if actual != entry.sha256:
        report.failed.append(
            (
                entry.key,
                f"spooled {entry.path} has sha256 {actual} but was recorded as {entry.sha256}; it was "
                f"damaged on local disk; check it with `debugcap verify` before uploading by hand",
            )
        )
        return "failed"
    try:
        stored = backend.sha256(key=entry.key)
        if stored == entry.sha256:
            spool.remove(entry)
            report.already_stored.append(entry.key)
            report.sent.append((entry.key, entry.sha256, size))
            return "already-stored"
        if stored is not None:
            raise base.conflict(backend.describe(), entry.key, stored, entry.sha256)
        backend.put(key=entry.key, path=entry.path, sha256=entry.sha256)
    except base.KeyConflictError as exc:
        _hold(spool, entry, exc, report)
        return "held"
    except StorageError as exc:
        report.failed.append((entry.key, str(exc)))
        return "store-failed"
    spool.remove(entry)
    report.uploaded.append(entry.key)
    report.sent.append((entry.key, entry.sha256, size))
    return "uploaded"


def _hold(spool: Spool, entry: SpoolEntry, exc: base.KeyConflictError, report: FlushReport) -> None:
    try:
        held = spool.hold(entry)
    except StorageError as move:  # still spooled: the next flush finds the conflict again
        report.failed.append((entry.key, f"{exc}; setting the spooled copy aside failed too: {move}"))
        return
    message = f"{exc}; the spooled copy is set aside at {held.path} and will not be sent again"
    logger.error("spooled %s not sent: %s", entry.key, message)
    report.held.append((entry.key, message))
