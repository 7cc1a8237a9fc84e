"""Read files out of a bundle, packed (``.tar.gz``) or unpacked, without extracting it.

Callers: :mod:`debugcap.analysis.report` and :mod:`debugcap.analysis.sections`, and the
``diff``/``report`` commands (:func:`is_bundle`). Paths are relative to the bundle's top
directory (the *stem*) and come from :mod:`debugcap.bundle.layout`; every file may be
missing. :class:`Reading` adds what every analysis of a bundle needs: a broken file
becomes a problem line and a known empty or failed capture a hint, never a crash.
"""

from __future__ import annotations

import json
import os
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

from debugcap import errors
from debugcap.analysis import goroutines, hints
from debugcap.bundle import layout, manifest
from debugcap.formats import pprof as pprof_format

T = TypeVar("T")


class BundleReader:
    """Read-only view of one bundle; ``read``/``open`` return None for missing files."""

    def __init__(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        self.path = Path(path)
        self.force = force  # read what is readable of a bundle that fails its checks
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._root: Path | None = None
        if self.path.is_dir():
            self._root = self._find_root(self.path)
        elif self.path.is_file():
            try:
                self._tar = tarfile.open(self.path, mode="r:*")
                members = [m for m in self._tar.getmembers() if m.isfile()]
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise errors.AnalysisError(f"{self.path}: not a readable bundle archive: {exc}") from exc
            tops = {m.name.split("/", 1)[0] for m in members if "/" in m.name}
            strip = len(tops) == 1 and all("/" in m.name for m in members)
            for m in members:
                name = m.name.split("/", 1)[1] if strip else m.name
                self._members[name.removeprefix("./")] = m
        else:
            raise errors.AnalysisError(f"{self.path}: no such bundle file or directory")

    @staticmethod
    def _find_root(path: Path) -> Path:
        # Accept both the stem directory and the directory it was unpacked into.
        if (path / layout.MANIFEST).exists():
            return path
        subdirs = [p for p in path.iterdir() if p.is_dir()]
        if len(subdirs) == 1 and not any(p.is_file() for p in path.iterdir()):
            return subdirs[0]
        return path

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def names(self) -> list[str]:
        if self._root is not None:
            return sorted(str(p.relative_to(self._root)) for p in self._root.rglob("*") if p.is_file())
        return sorted(self._members)

    def exists(self, rel: str) -> bool:
        if self._root is not None:
            return (self._root / rel).is_file()
        return rel in self._members

    def open(self, rel: str) -> IO[bytes] | None:
        if self._root is not None:
            p = self._root / rel
            return p.open("rb") if p.is_file() else None
        m = self._members.get(rel)
        if m is None or self._tar is None:
            return None
        try:
            fh = self._tar.extractfile(m)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise errors.AnalysisError(f"{self.path}: cannot read {rel}: {exc}") from exc
        return fh

    def read(self, rel: str) -> bytes | None:
        fh = self.open(rel)
        if fh is None:
            return None
        try:
            with fh:
                return fh.read()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise errors.AnalysisError(f"{self.path}: cannot read {rel}: {exc}") from exc

    def text(self, rel: str) -> str | None:
        data = self.read(rel)
        return None if data is None else data.decode("utf-8", "replace")

    def label(self, rel: str) -> str:
        return f"{self.path}:{rel}" if self._tar is not None else str((self._root or self.path) / rel)


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """A directory, or a tar archive (a .pb.gz profile is gzip but not tar)."""
    p = Path(path)
    if p.is_dir():
        return True
    if not p.is_file():
        return False
    try:
        with tarfile.open(p, mode="r:*") as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return False


class Reading:
    """One bundle being analysed: its reader, and the problems and hints found so far."""

    def __init__(self, reader: BundleReader) -> None:
        self.reader = reader
        self.problems: list[str] = []
        self.hints: list[str] = []

    def guard(self, fn: Callable[[], T]) -> T | None:
        """Run one analysis; a broken input becomes a problem line, never a crash."""
        try:
            return fn()
        except errors.AnalysisError as exc:
            self.problems.append(str(exc))
            return None

    def text(self, rel: str) -> str | None:
        return self.guard(lambda: self.reader.text(rel))

    def read_json(self, rel: str) -> Any:
        """The parsed JSON file, or None when it is missing or not JSON (a problem line then)."""
        text = self.text(rel) if self.reader.exists(rel) else None
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            self.problems.append(f"{self.reader.label(rel)}: not valid JSON: {exc}")
            return None

    def manifest(self) -> manifest.Manifest | None:
        """The bundle's manifest, or None when it is missing or damaged (a problem line then)."""
        data = self.guard(lambda: self.reader.read(layout.MANIFEST))
        if data is None:
            return None
        try:
            return manifest.Manifest.from_json(data)
        except errors.BundleError as exc:
            self.problems.append(f"{self.reader.label(layout.MANIFEST)}: {exc}")
            return None

    def profile(self, rel: str, kind: str, requested_seconds: float | None = None) -> pprof_format.Profile | None:
        """The parsed profile at ``rel``; None when missing, broken or an endpoint's error text."""
        data = self.guard(lambda: self.reader.read(rel))
        if data is None:
            return None
        label = self.reader.label(rel)
        body = hints.error_body(data, rel)
        if body:
            self.hints.append(body)
            return None
        prof = self.guard(lambda: pprof_format.parse(data, label))
        if prof is not None:
            self.hints.extend(hints.profile_hints(prof, kind, rel, requested_seconds))
        return prof

    def dump(self, rel: str) -> goroutines.DumpDict | None:
        """The summarised goroutine dump at ``rel``; None when missing or not a dump."""
        def run() -> goroutines.DumpDict | None:
            fh = self.reader.open(rel)
            if fh is None:
                return None
            with fh:
                return goroutines.parse_stream(fh, self.reader.label(rel))

        d = self.guard(run)
        if d is not None:
            self.hints.extend(hints.dump_hints(d, rel))
        return d
