"""Bundles of a DebugCapture, fetched to this machine and verified before anyone reads them.

A pod's entry in ``status.pods`` names its bundle (key, URI, SHA-256, size). :func:`source_for`
decides where this machine reads that key from: the user's own S3 settings, the ``DEBUGCAP_S3_*``
variables ``create --upload`` uses, when they are set; else a short-lived presigned URL the
operator hands to users who may read the DebugCapture (:class:`PresignedSource`, asked for with a
DebugDownload by :mod:`~debugcap.kubectl_plugin.download_requests`; docs/captures.md).

A fetched file is kept only when it matches the status (size and SHA-256: what the operator
stored) and its own manifest (every member's SHA-256: what the capture wrote). The download goes
to a hidden directory beside its destination and is moved into place only once both hold; a
mismatch deletes it, so no half-written or tampered bundle is ever left under the bundle's name.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import unquote, urlsplit

from debugcap import errors
from debugcap.bundle import layout
from debugcap.settings import S3Settings

# Tries per S3 request here: an interactive download should fail in seconds, not ride out a
# MinIO restart as the operator's uploads do.
READ_ATTEMPTS: Final = 2
S3_VARIABLES: Final = ("DEBUGCAP_S3_ENDPOINT (host:port), DEBUGCAP_S3_ACCESS_KEY and DEBUGCAP_S3_SECRET_KEY "
                       "(DEBUGCAP_S3_SECURE=false for plain HTTP)")
# A presigned GET: connect fast (a store that cannot be reached from here should say so in
# seconds), read patiently, as the S3 backend does.
URL_TIMEOUT_SECONDS: Final = 30.0
_CHUNK: Final = 1 << 20


class VerifyFailedError(errors.BundleError):
    """A fetched bundle does not match the status or its own manifest; it was deleted."""


@dataclass(frozen=True)
class BundleRef:
    """One pod's stored bundle, as the capture's status lists it."""

    namespace: str
    capture: str
    pod: str
    key: str
    uri: str
    sha256: str
    size: int

    @property
    def file_name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def bundle_refs(obj: Mapping[str, Any], pod: str | None = None) -> list[BundleRef]:
    """The stored bundles of a capture (of ``pod`` only, when given). A capture with none, or
    without that pod, is an error saying why and what to run."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    name, namespace = str(meta.get("name")), str(meta.get("namespace"))
    pods = status.get("pods") or []
    if pod is not None and pod not in {p.get("name") for p in pods}:
        known = ", ".join(str(p.get("name")) for p in pods) or "none yet"
        raise errors.ConfigError(f'debugcapture "{name}" has no pod "{pod}" (--pod); its pods: {known}')
    refs = []
    for entry in pods:
        bundle = entry.get("bundle") or {}
        if (pod is None or entry.get("name") == pod) and bundle.get("key"):
            refs.append(BundleRef(namespace=namespace, capture=name, pod=str(entry.get("name")),
                                  key=str(bundle["key"]), uri=str(bundle.get("uri") or ""),
                                  sha256=str(bundle.get("sha256") or ""), size=int(bundle.get("sizeBytes") or 0)))
    if refs:
        return refs
    phase = status.get("phase") or "Pending"
    which = f'pod "{pod}" of debugcapture "{name}"' if pod else f'debugcapture "{name}"'
    if phase in ("Pending", "Running"):
        raise errors.ConfigError(f"{which} has no bundle yet (it is {phase}); wait for it with: "
                                 f"kubectl debugcap logs {name} -n {namespace} -f")
    raise errors.ConfigError(f"{which} stored no bundle (it is {phase}: "
                             f"{errors.shorten(str(status.get('message') or 'no message'), 200)}); "
                             f"see: kubectl debugcap describe {name} -n {namespace}")


class Source(Protocol):
    """Where the bytes of a stored bundle come from."""

    def describe(self) -> str: ...

    def fetch(self, ref: BundleRef, dest: Path) -> None:
        """Write the object of ``ref.key`` to ``dest``; raise ``StorageError`` when it cannot."""


class S3Source:
    """The bucket, read with the user's own credentials."""

    def __init__(self, settings: S3Settings) -> None:
        from debugcap.storage import s3

        self._backend = s3.S3Backend(settings)

    def describe(self) -> str:
        return self._backend.describe()

    def fetch(self, ref: BundleRef, dest: Path) -> None:
        self._backend.get(key=ref.key, dest=dest)


class FileSource:
    """A store the operator kept in a directory this machine can read (a test set-up, a shared volume)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return str(self.path)

    def fetch(self, ref: BundleRef, dest: Path) -> None:
        try:
            shutil.copyfile(self.path, dest)
        except OSError as exc:
            raise errors.StorageError(f"cannot copy {self.path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class Link:
    """A presigned GET URL the operator handed out for one bundle (an entry of a DebugDownload's
    ``status.urls``). The URL is a credential until ``expires_at``: it is never printed."""

    pod: str
    key: str
    url: str
    sha256: str
    size: int
    expires_at: datetime
    request: str  # the DebugDownload that carried it, for messages


class PresignedSource:
    """A bundle read through a presigned URL: plain HTTP(S), no credential of the user's."""

    def __init__(self, link: Link, *, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 opener: Callable[..., Any] = urllib.request.urlopen) -> None:
        self.link = link
        self._now = now
        self._open = opener
        parts = urlsplit(link.url)
        self.endpoint = f"{parts.scheme}://{parts.netloc}"  # without the query, which holds the signature

    def describe(self) -> str:
        return f"the store at {self.endpoint}"

    @property
    def via(self) -> str:
        return (f"through a presigned URL of debugdownload/{self.link.request}, valid until "
                f"{self.link.expires_at:%H:%M:%SZ}")

    def fetch(self, ref: BundleRef, dest: Path) -> None:
        from debugcap.storage import base

        if (self.link.key, self.link.sha256) != (ref.key, ref.sha256):
            raise errors.StorageError(f"debugdownload/{self.link.request} answered for another bundle of pod "
                                      f"{ref.pod} than the capture lists (it changed meanwhile?); "
                                      "run the command again")
        if self._now() >= self.link.expires_at:
            raise errors.StorageError(self._expired(ref))
        try:
            with self._open(self.link.url, timeout=URL_TIMEOUT_SECONDS) as resp:
                announced, got = resp.headers.get("Content-Length"), _save(resp, dest)
            if announced is not None and announced.isdigit() and got < int(announced):
                # A connection cut short is not a tampered bundle (exit 4): say so, and what to do.
                raise errors.StorageError(f"the download of pod {ref.pod}'s bundle from {self.endpoint} ended after "
                                          f"{got} of {announced} bytes (the connection was cut short); "
                                          "run the command again")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise base.MissingObjectError(f"{ref.uri or ref.key} is not in {self.describe()}") from exc
            if exc.code == 403 and self._now() >= self.link.expires_at:
                raise errors.StorageError(self._expired(ref)) from exc
            raise errors.StorageError(f"{self.endpoint} refused the presigned URL for pod {ref.pod}: HTTP {exc.code} "
                                      f"{errors.shorten(_s3_code(exc), 120)}; run the command again, or "
                                      "download with your own S3 settings") from exc
        except http.client.HTTPException as exc:  # IncompleteRead of a chunked body cut short: not an OSError
            raise errors.StorageError(f"the download of pod {ref.pod}'s bundle from {self.endpoint} broke off "
                                      f"({type(exc).__name__}); run the command again") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise errors.StorageError(
                f"cannot reach {self.endpoint}, the S3 endpoint the operator's presigned URL names "
                f"({errors.shorten(str(reason), 120)}); it must be reachable from this machine: ask the cluster "
                "admin to set the chart value operator.presignedEndpoint (DEBUGCAP_OPERATOR_PRESIGNED_ENDPOINT) to "
                f"the address users reach S3 at, or set {S3_VARIABLES} to download with your own") from exc

    def _expired(self, ref: BundleRef) -> str:
        return (f"the presigned URL for pod {ref.pod} expired at {self.link.expires_at:%Y-%m-%dT%H:%M:%SZ}; "
                "run the command again to ask the operator for a new one")


def _save(resp: Any, dest: Path) -> int:
    """The response's body into ``dest``, and how many bytes it had; a file that cannot be written
    is not a store that cannot be reached (an ``OSError`` of reading is)."""
    try:
        out = dest.open("wb")
    except OSError as exc:
        raise errors.StorageError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    total = 0
    with out:
        while chunk := resp.read(_CHUNK):
            total += len(chunk)
            try:
                out.write(chunk)
            except OSError as exc:
                raise errors.StorageError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    return total


def _s3_code(exc: urllib.error.HTTPError) -> str:
    """S3's error code from the body of a refusal (``<Code>AccessDenied</Code>``), else its reason."""
    try:
        body = exc.read(4096).decode(errors="replace")
    except OSError:
        body = ""
    start, end = body.find("<Code>"), body.find("</Code>")
    return body[start + 6:end] if 0 <= start < end else str(exc.reason)


def source_for(ref: BundleRef, environ: Mapping[str, str] | None = None,
               presigned: Callable[[BundleRef], Source] | None = None, *, prefer_presigned: bool = False) -> Source:
    """Where this machine reads ``ref``'s bundle from (the seam: see the module's docstring).
    ``presigned`` asks the operator for a URL; it is taken without S3 settings, or first with
    ``prefer_presigned``. Without it, S3 settings are required."""
    where = urlsplit(ref.uri)
    if where.scheme == "file":
        path = Path(unquote(where.path))
        if path.is_file():
            return FileSource(path)
        raise errors.ConfigError(f"the bundle of pod {ref.pod} is in the operator's own directory ({ref.uri}), "
                                 "which this machine cannot read; configure the operator with S3 to download bundles")
    if presigned is not None and prefer_presigned:
        return presigned(ref)
    settings = S3Settings.from_env(environ)
    if settings is None and presigned is not None:
        return presigned(ref)
    if settings is None:
        raise errors.ConfigError(f"no S3 settings to download {ref.uri or ref.key}: set {S3_VARIABLES}, as for "
                                 "create --upload")
    # The status says which bucket holds the bundle; the user's settings say how to reach the store.
    bucket = where.netloc if where.scheme == "s3" and where.netloc else settings.bucket
    return S3Source(dataclasses.replace(settings, bucket=bucket, upload_attempts=READ_ATTEMPTS))


def verdict(ref: BundleRef, sha256: str, size: int, problems: list[str]) -> list[str]:
    """Why a fetched bundle must not be kept: it differs from what the status recorded, or it
    fails its own manifest (``problems``, from :func:`debugcap.bundle.verify.verify`). Empty: keep it."""
    out = []
    if size != ref.size:
        out.append(f"{size} bytes where the status recorded {ref.size}")
    if sha256 != ref.sha256:
        out.append(f"sha256 {sha256} where the status recorded {ref.sha256}")
    return out + problems


def _check(ref: BundleRef, path: Path) -> list[str]:
    from debugcap.bundle import verify
    from debugcap.storage import base

    try:
        result = verify.verify(path)
    except errors.BundleError as exc:
        sha256, size = base.file_sha256(path)
        return verdict(ref, sha256, size, [f"not a readable bundle: {errors.shorten(str(exc), 160)}"])
    problems = [str(p) for p in result.problems]
    return verdict(ref, result.sha256, path.stat().st_size, problems)


_WHERE_TO = "write elsewhere: download -d DIR, or XDG_CACHE_HOME for the cache of report, top and goroutines"


def fetch_verified(ref: BundleRef, dest_dir: Path, source: Source) -> Path:
    """``ref``'s bundle as ``dest_dir/<its name>``, with its ``.sha256`` beside it, verified; raises
    :class:`VerifyFailedError` (the file deleted) when it does not match."""
    from debugcap.storage import base

    final = dest_dir / ref.file_name
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        if final.is_dir():
            raise IsADirectoryError(21, "a directory of that name is in the way", str(final))
        work = Path(tempfile.mkdtemp(prefix=".debugcap-download-", dir=dest_dir))
    except OSError as exc:
        raise errors.StorageError(f"cannot write pod {ref.pod}'s bundle into {dest_dir} "
                                  f"({exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}); "
                                  f"{_WHERE_TO}") from exc
    try:
        part = work / ref.file_name
        try:
            source.fetch(ref, part)
        except base.MissingObjectError as exc:
            raise errors.StorageError(f"{ref.uri or ref.key} (pod {ref.pod}) is listed in the status but is not in "
                                      f"{source.describe()}: deleted outside debugcap, or by a bucket lifecycle "
                                      "rule?") from exc
        except base.CorruptObjectError as exc:
            raise VerifyFailedError(f"{ref.uri or ref.key} (pod {ref.pod}) is refused and was not kept: {exc}") \
                from exc
        problems = _check(ref, part)
        if problems:
            raise VerifyFailedError(f"{ref.uri or ref.key} (pod {ref.pod}) is refused and was not kept: "
                                    f"{'; '.join(problems[:3])}" + (f" (+{len(problems) - 3} more)"
                                                                    if len(problems) > 3 else ""))
        try:
            # The bundle first: a .sha256 without its bundle beside it would say a download happened.
            (work / layout.checksum_name(ref.file_name)).write_bytes(base.checksum_line(ref.sha256, ref.file_name))
            os.replace(part, final)
            os.replace(work / layout.checksum_name(ref.file_name), dest_dir / layout.checksum_name(ref.file_name))
        except OSError as exc:
            raise errors.StorageError(f"cannot keep pod {ref.pod}'s verified bundle as {final} "
                                      f"({exc.strerror or exc}); {_WHERE_TO}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def matches(ref: BundleRef, path: Path) -> bool:
    """Whether ``path`` already holds ``ref``'s bundle: same size, same SHA-256."""
    from debugcap.storage import base

    try:
        if path.stat().st_size != ref.size:
            return False
        return base.file_sha256(path)[0] == ref.sha256
    except OSError:
        return False


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "debugcap" / "bundles"


def cache_dir(ref: BundleRef, root: Path) -> Path:
    """Per namespace, capture and pod: a capture deleted and made again under its name gets a new
    bundle (another SHA-256), which :func:`matches` tells from the old one."""
    return root / ref.namespace / ref.capture / ref.pod


@dataclass(frozen=True)
class Fetched:
    ref: BundleRef
    path: Path
    reused: bool  # the file was there already, with the status's SHA-256
    via: str = ""  # how it came, when not with the user's own S3 settings


def fetch_all(refs: list[BundleRef], dest_for: Callable[[BundleRef], Path],
              environ: Mapping[str, str] | None = None, presigned: Callable[[BundleRef], Source] | None = None,
              *, prefer_presigned: bool = False) -> tuple[list[Fetched], list[str]]:
    """Each bundle into ``dest_for(ref)``, a copy already there with the status's SHA-256 reused;
    (what was kept, why each refused one was refused). A store that cannot be reached raises:
    every other bundle would fail the same way. ``presigned``: see :func:`source_for`."""
    kept: list[Fetched] = []
    refused: list[str] = []
    for ref in refs:
        dest_dir = dest_for(ref)
        if matches(ref, dest_dir / ref.file_name):
            kept.append(Fetched(ref, dest_dir / ref.file_name, reused=True))
            continue
        source = source_for(ref, environ, presigned, prefer_presigned=prefer_presigned)
        via = source.via if isinstance(source, PresignedSource) else ""
        try:
            kept.append(Fetched(ref, fetch_verified(ref, dest_dir, source), reused=False, via=via))
        except VerifyFailedError as exc:
            refused.append(str(exc))
    return kept, refused
