"""MinIO/S3 storage through the ``minio`` client.

``S3Backend(settings)`` is the whole set-up. Uploads:

* create the bucket on first use if it is missing;
* ``fput_object`` with ``part_size`` from settings (multipart above that size), the SHA-256 as
  user metadata (``x-amz-meta-sha256``), then ``<key>.sha256`` beside it;
* verify after the upload ends: ``stat_object`` size equals the local size and the stored
  metadata SHA-256 equals ours, else the upload is redone. A create-only single PUT the store
  took (``If-None-Match: *`` honoured, 2xx with an ETag) already says so: that request created
  the object, its body checked by the store (Content-MD5 over HTTPS, the signed payload SHA-256
  over HTTP), its metadata our header; then the stat, one request per bundle (issue 17), is left
  out when the local file still has the size checked before. It stays after a multipart upload
  (a CompleteMultipartUpload can answer 200 and fail in its body), a plain write (a store
  without conditional writes) and a PreconditionFailed;
* retry the whole upload with exponential backoff on transient errors (connection
  refused/reset, timeouts, 5xx, SlowDown), a bounded number of times (settings);
* never replace an object it did not write: the key is checked first (absent: upload; holding
  our SHA-256, an earlier try whose answer was lost: stored; anything else:
  :class:`~debugcap.storage.base.KeyConflictError`), and the upload itself is conditional
  (``If-None-Match: *`` on the single PUT or on CompleteMultipartUpload, which MinIO and AWS S3
  honour with 412 PreconditionFailed), so a writer that takes the key between the check and the
  write is not overwritten either. minio 7.2 has no public way to send that header, hence
  :class:`_CreateOnlyClient`; a store that ignores it leaves only that window, and keys are
  unique per writer (the capture's UID, a CLI upload's own directory), so two writers do not
  aim at one key in the first place;
* leave no incomplete multipart upload behind. minio 7.2's ``put_object`` aborts its upload on
  an ``Exception``, but (a) the abort is one more request that fails in exactly the situations
  that caused the error (endpoint gone, connection reset), replacing the original error, and
  (b) a ``KeyboardInterrupt``/``SystemExit`` or a killed process skips it. So after every failed
  attempt, and best-effort before every upload, we list the key's multipart uploads and abort
  them. minio 7.2 has no public call for that (``list_incomplete_uploads`` was removed in 7.0),
  hence its ``_list_multipart_uploads``/``_abort_multipart_upload``; re-check them on upgrades.
  A killed writer whose key is never put again leaves its upload to
  :meth:`S3Backend.abort_stale_uploads`, which :func:`debugcap.delivering.sweep_stale_uploads`
  calls for the store's own prefix, for uploads hours old.

Errors leave this module as :class:`StorageError` naming endpoint, bucket and key, with a fix.
The pure pieces (:func:`parse_endpoint`, :func:`is_transient`, :func:`backoff_delays`,
:func:`hint_for`, in :mod:`debugcap.storage.s3_errors`) are unit-tested; the backend itself is
tested against a real MinIO.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from debugcap.errors import ConfigError, StorageError, shorten
from debugcap.settings import MIN_PART_SIZE, S3Settings
from debugcap.storage import base
from debugcap.storage.s3_errors import (
    _CREDENTIAL_CODES,
    _NOT_FOUND_CODES,
    backoff_delays,
    detail,
    hint_for,
    is_transient,
    parse_endpoint,
)
from debugcap.storage.s3_errors import UploadMismatch as _UploadMismatch

try:
    import certifi
    import minio
    import minio.error
    import urllib3
    import urllib3.exceptions
    from minio.helpers import DictType
except ImportError:  # pragma: no cover - only without the S3 dependencies
    minio = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Connect fast, read patiently: a dead endpoint should fail in seconds, while one 16 MiB part on
# a slow link may legitimately take a minute (judgement calls).
CONNECT_TIMEOUT_SECONDS: Final = 10.0
READ_TIMEOUT_SECONDS: Final = 120.0
# Pages of 1000 unfinished uploads a sweep reads at most: more is a store in trouble, not debugcap's.
_MAX_UPLOAD_PAGES: Final = 20


if minio is not None:

    class _CreateOnlyClient(minio.Minio):
        """A client whose whole-object writes succeed only where no object is: ``If-None-Match: *``
        on a PutObject of a whole object and on CompleteMultipartUpload (not on UploadPart, where it
        means nothing). Overrides minio 7.2's private ``_execute``; re-check it on upgrades."""

        def _execute(self, method: str, bucket_name: str | None = None, object_name: str | None = None,
                     body: bytes | None = None, headers: DictType | None = None,
                     query_params: DictType | None = None, preload_content: bool = True,
                     no_body_trace: bool = False) -> urllib3.BaseHTTPResponse:
            whole_put = method == "PUT" and object_name and not query_params
            completing = method == "POST" and object_name and query_params and "uploadId" in query_params
            if whole_put or completing:
                headers = {**(headers or {}), "If-None-Match": "*"}
            return super()._execute(method, bucket_name, object_name, body, headers, query_params,
                                    preload_content, no_body_trace)


class S3Backend(base.StorageBackend):
    def __init__(
        self,
        settings: S3Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,  # replaced in tests to skip real waits
    ) -> None:
        if minio is None:
            raise ConfigError(
                "S3 storage needs the 'minio' package; install it (pip install minio) "
                "or unset DEBUGCAP_S3_ENDPOINT to keep bundles locally"
            )
        self._settings = settings
        self._host, self._secure = parse_endpoint(settings.endpoint, settings.secure)
        self._sleep = sleep
        self._bucket_ready = False
        self._signers: dict[str, minio.Minio] = {}  # by endpoint: see url()
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
            maxsize=max(10, settings.parallel_uploads),
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            # A couple of quick urllib3-level retries redo one request (one part), which is much
            # cheaper than our outer loop redoing the whole upload; that loop handles longer outages.
            retries=urllib3.Retry(total=2, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504)),
        )
        def client(kind: type[minio.Minio]) -> minio.Minio:
            return kind(self._host, access_key=settings.access_key, secret_key=settings.secret_key,
                        secure=self._secure, region=settings.region, http_client=http)

        self._client = client(minio.Minio)
        self._create_only = client(_CreateOnlyClient)  # bundles only: a sidecar is rewritten freely
        self._conditional = True  # until the store answers NotImplemented to If-None-Match

    @property
    def settings(self) -> S3Settings:
        return self._settings

    def describe(self) -> str:
        scheme = "https" if self._secure else "http"
        return f"s3://{self._settings.bucket} at {scheme}://{self._host}"

    # --- plumbing -----------------------------------------------------------------------------

    def _error(self, action: str, key: str | None, exc: BaseException, attempts: int) -> StorageError:
        scheme = "https" if self._secure else "http"
        where = f"s3://{self._settings.bucket}/{key}" if key else f"bucket {self._settings.bucket!r}"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return StorageError(
            f"{action} {where} at {scheme}://{self._host} failed{tries}: {shorten(detail(exc))}; "
            f"{hint_for(exc, self._settings)}"
        )

    def _retrying(
        self,
        action: str,
        key: str | None,
        call: Callable[[], T],
        *,
        after_failure: Callable[[], None] | None = None,
    ) -> T:
        attempts = self._settings.upload_attempts
        delays = backoff_delays(
            attempts, self._settings.backoff_base_seconds, self._settings.backoff_max_seconds
        )
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except Exception as exc:
                if after_failure is not None:
                    after_failure()
                if isinstance(exc, StorageError) and not isinstance(exc, _UploadMismatch):
                    raise
                if not is_transient(exc) or attempt == attempts:
                    raise self._error(action, key, exc, attempt) from exc
                logger.warning(
                    "%s %s in %s failed (attempt %d of %d: %s); retrying in %.1f s",
                    action,
                    key or f"bucket {self._settings.bucket!r}",
                    self.describe(),
                    attempt,
                    attempts,
                    shorten(detail(exc)),
                    delays[attempt - 1],
                )
                self._sleep(delays[attempt - 1])
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return

        def ensure() -> None:
            bucket = self._settings.bucket
            if self._client.bucket_exists(bucket):
                return
            try:
                self._client.make_bucket(bucket, location=self._settings.region)
            except minio.error.S3Error as exc:
                # Another uploader created it between our check and our create: fine.
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        self._retrying("creating", None, ensure)
        self._bucket_ready = True

    def _abort_incomplete(self, key: str, *, quiet: bool = False) -> None:
        """Abort every multipart upload still open for ``key``. Best-effort: never raises."""
        bucket = self._settings.bucket
        try:
            result = self._client._list_multipart_uploads(bucket, prefix=key)
            for upload in result.uploads:
                if upload.object_name == key and upload.upload_id:
                    self._client._abort_multipart_upload(bucket, key, upload.upload_id)
                    logger.info(
                        "aborted incomplete multipart upload %s of s3://%s/%s", upload.upload_id, bucket, key
                    )
        except Exception as exc:  # cleanup must never replace the error being handled
            log = logger.debug if quiet else logger.warning
            log(
                "could not check s3://%s/%s at %s for incomplete multipart uploads (%s); if one is left, "
                "remove it with `mc rm --incomplete --recursive <alias>/%s/%s` (MinIO also expires them "
                "after 24 h by default)",
                bucket,
                key,
                self._host,
                shorten(detail(exc)),
                bucket,
                key,
            )

    def abort_stale_uploads(self, *, prefix: str, older_than: timedelta) -> Sequence[str]:
        bucket = self._settings.bucket
        cutoff = datetime.now(UTC) - older_than
        aborted: list[str] = []
        marker: tuple[str | None, str | None] = (None, None)
        try:
            for _page in range(_MAX_UPLOAD_PAGES):
                # The whole bucket, filtered here: MinIO lists uploads under an exact object name
                # or under no prefix at all, never under a partial one (it answers with none).
                result = self._client._list_multipart_uploads(
                    bucket, key_marker=marker[0], upload_id_marker=marker[1])
                for upload in result.uploads:
                    began, name = upload.initiated_time, upload.object_name or ""
                    if name.startswith(prefix) and upload.upload_id and began is not None and began <= cutoff:
                        self._client._abort_multipart_upload(bucket, name, upload.upload_id)
                        aborted.append(name)
                        logger.info("aborted multipart upload %s of s3://%s/%s, begun %s and never finished",
                                    upload.upload_id, bucket, name, began.isoformat())
                if not result.is_truncated or not result.uploads:
                    break
                # minio 7.2 drops NextUploadIdMarker (sets a misspelt attribute): the last one listed is it.
                marker = (result.next_key_marker or result.uploads[-1].object_name, result.uploads[-1].upload_id)
        except Exception as exc:  # housekeeping: a delivery must never fail for it
            code = exc.code if isinstance(exc, minio.error.S3Error) else None
            # A CLI user's key may write bundles but not list uploads: said on every run, that
            # would be noise about the bucket's housekeeping, which is the operator's.
            log = logger.debug if code in (*_CREDENTIAL_CODES, "NoSuchBucket") else logger.warning
            log("could not list or abort unfinished multipart uploads under s3://%s/%s at %s (%s); MinIO "
                "expires them after 24 h by default (api stale_uploads_expiry); on AWS S3 add a lifecycle "
                "rule AbortIncompleteMultipartUpload", bucket, prefix, self._host, shorten(detail(exc)))
        return aborted

    def _stat_sha256(self, key: str) -> tuple[str | None, int] | None:
        """(recorded sha256, size) of ``key``, or None when absent. Not retried: callers retry."""
        try:
            stat = self._client.stat_object(self._settings.bucket, key)
        except minio.error.S3Error as exc:
            # No bucket yet (nothing was ever uploaded) means the key is not stored either; an
            # error here would stop a spool flush before the put that creates the bucket.
            if exc.code in _NOT_FOUND_CODES or exc.code == "NoSuchBucket":
                return None
            raise
        recorded = None
        for name, value in (stat.metadata or {}).items():
            if str(name).lower() == "x-amz-meta-sha256":
                recorded = str(value)
        return recorded, int(stat.size or 0)

    # --- StorageBackend -----------------------------------------------------------------------

    def put(self, *, key: str, path: Path, sha256: str) -> base.StoredObject:
        base.check_key(key)
        base.check_sha256(sha256)
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise StorageError(
                f"cannot upload {path} to {self.describe()} as {key!r}: {exc.strerror}"
            ) from exc
        self._ensure_bucket()
        found = self._retrying("checking", key, lambda: self._stat_sha256(key))
        if found is not None:
            self._check_ours(key, found, sha256, size)
            return self._retrying("uploading to", key, lambda: self._put_sidecar(key, sha256, size))
        if size > MIN_PART_SIZE:
            # Left by an earlier process killed mid-upload; quiet, since a store may not allow
            # listing. A bundle no larger than the smallest part S3 allows was sent in one PUT by
            # every earlier try too (part sizes are at least that), which leaves nothing behind:
            # the listing, a request per bundle, is skipped.
            self._abort_incomplete(key, quiet=True)
        bucket = self._settings.bucket
        attempts = 0

        def upload() -> base.StoredObject:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                # The try before may have stored it all and lost only the answer (to a
                # CompleteMultipartUpload, say): sending the bundle again would cost its whole size.
                found = self._stat_sha256(key)
                if found is not None:
                    self._check_ours(key, found, sha256, size)
                    return self._put_sidecar(key, sha256, size)
            try:
                created = self._write(key, path, sha256)
            except minio.error.S3Error as exc:
                if exc.code != "PreconditionFailed":
                    raise
                # Taken since the check: by an earlier try of ours whose answer was lost, or not.
                self._check_ours(key, self._stat_sha256(key), sha256, size)
                created = False
            if created and _local_size(path) == size:
                return self._put_sidecar(key, sha256, size)
            stored = self._stat_sha256(key)
            if stored is None or stored[1] != size or stored[0] != sha256:
                got = "nothing" if stored is None else f"size {stored[1]}, sha256 {stored[0]}"
                raise _UploadMismatch(
                    f"s3://{bucket}/{key} at {self._host} holds {got} after upload; expected size {size}, "
                    f"sha256 {sha256}"
                )
            return self._put_sidecar(key, sha256, size)

        return self._retrying("uploading to", key, upload, after_failure=lambda: self._abort_incomplete(key))

    def _write(self, key: str, path: Path, sha256: str) -> bool:
        """Upload ``path`` as ``key``, only where no object is when the store can say so. True when
        it could: this write created the object."""
        client = self._create_only if self._conditional else self._client

        def send(through: minio.Minio) -> Any:
            return through.fput_object(self._settings.bucket, key, str(path), content_type="application/gzip",
                                       metadata={"sha256": sha256}, part_size=self._settings.part_size_bytes,
                                       num_parallel_uploads=self._settings.parallel_uploads)

        try:
            written = send(client)
            # One PUT's status is its outcome. A CompleteMultipartUpload may answer 200 and then fail in
            # its body (a store that keeps the connection alive while it assembles the parts), which
            # minio's client returns as a result without an ETag: only the stat can tell then.
            single = _local_size(path) <= self._settings.part_size_bytes
            etag = str(getattr(written, "etag", None) or "")
            # A multipart upload's ETag ends in -<parts>: the size may have changed back and forth.
            return client is self._create_only and single and bool(etag) and "-" not in etag
        except minio.error.S3Error as exc:
            if exc.code != "NotImplemented" or client is self._client:
                raise
            # An S3-compatible store without conditional writes: the check before the write is all
            # there is (the writers' own key directories keep them apart anyway). Said once.
            logger.warning("%s does not support conditional writes (If-None-Match: *, %s); uploads there rely "
                           "on the check before each write", self.describe(), exc.code)
            self._conditional = False
            send(self._client)
            return False

    def _check_ours(self, key: str, found: tuple[str | None, int] | None, sha256: str, size: int) -> None:
        """Return when the object ``found`` at ``key`` is this bundle, else raise KeyConflictError."""
        if found is not None and found[0] == sha256 and found[1] == size:
            return
        raise base.conflict(f"s3://{self._settings.bucket} at {self._host}", key,
                            None if found is None else found[0], sha256)

    def _put_sidecar(self, key: str, sha256: str, size: int) -> base.StoredObject:
        line = base.checksum_line(sha256, key)
        self._client.put_object(
            self._settings.bucket, base.checksum_key(key), io.BytesIO(line), len(line), content_type="text/plain"
        )
        return base.StoredObject(key=key, sha256=sha256, size=size)

    def get(self, *, key: str, dest: Path) -> base.StoredObject:
        base.check_key(key)
        dest = Path(dest)
        stored = self._retrying("reading", key, lambda: self._stat_sha256(key))
        if stored is None:
            raise base.MissingObjectError(
                f"s3://{self._settings.bucket}/{key} at {self._host} does not exist; "
                f"list stored bundles with list(prefix=...)"
            )
        expected = stored[0]
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            self._retrying(
                "downloading", key, lambda: self._client.fget_object(self._settings.bucket, key, tmp_name)
            )
            digest, size = base.file_sha256(tmp)
            if expected is not None and digest != expected:
                raise base.CorruptObjectError(
                    f"s3://{self._settings.bucket}/{key} at {self._host} is corrupt: sha256 {digest}, "
                    f"recorded {expected}; re-upload it from the spool or another copy"
                )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return base.StoredObject(key=key, sha256=digest, size=size)

    def exists(self, *, key: str) -> bool:
        base.check_key(key)
        return self._retrying("checking", key, lambda: self._stat_sha256(key)) is not None

    def sha256(self, *, key: str) -> str | None:
        base.check_key(key)
        stored = self._retrying("checking", key, lambda: self._stat_sha256(key))
        return None if stored is None else stored[0]

    def list(self, *, prefix: str) -> Iterator[str]:
        def collect() -> list[str]:
            objects = self._client.list_objects(self._settings.bucket, prefix=prefix or None, recursive=True)
            names = [o.object_name for o in objects if o.object_name and not o.is_dir]
            return sorted(n for n in names if not n.endswith(base.CHECKSUM_SUFFIX))

        try:
            return iter(self._retrying("listing", prefix or "(all)", collect))
        except StorageError as exc:
            if isinstance(exc.__cause__, minio.error.S3Error) and exc.__cause__.code == "NoSuchBucket":
                return iter(())
            raise

    def delete(self, *, key: str) -> None:
        base.check_key(key)

        def remove() -> None:
            self._client.remove_object(self._settings.bucket, key)
            self._client.remove_object(self._settings.bucket, base.checksum_key(key))

        self._retrying("deleting", key, remove)

    def uri(self, *, key: str) -> str:
        return f"s3://{self._settings.bucket}/{base.check_key(key)}"

    def url(self, *, key: str, expires: timedelta = timedelta(days=7), endpoint: str | None = None) -> str:
        """A presigned GET URL of ``key``, valid for ``expires``. ``endpoint``: the address whoever
        uses the URL reaches the store at, when it is not this backend's own (an in-cluster MinIO
        that users reach through an ingress): the signature covers the host, so it cannot be
        rewritten afterwards."""
        base.check_key(key)
        client = self._signer(endpoint) if endpoint else self._client
        # Signing is local, but minio may first ask the server for the bucket's region once.
        return self._retrying(
            "signing a URL for",
            key,
            lambda: client.presigned_get_object(self._settings.bucket, key, expires=expires),
        )

    def _signer(self, endpoint: str) -> minio.Minio:
        """A client for signing only, at ``endpoint``, with this backend's credentials and region."""
        found = self._signers.get(endpoint)
        if found is None:
            host, secure = parse_endpoint(endpoint, self._secure)
            # The region is part of the signature. Asked of the store this backend reaches, once:
            # the other address may not be reachable from here at all. minio 7.2 has no public call
            # for it; re-check `_get_region` on upgrades.
            region = self._settings.region or self._retrying(
                "finding the region of", None, lambda: self._client._get_region(self._settings.bucket)
            )
            found = minio.Minio(
                host,
                access_key=self._settings.access_key,
                secret_key=self._settings.secret_key,
                secure=secure,
                region=region,
            )
            self._signers[endpoint] = found
        return found


def _local_size(path: Path) -> int:
    """``path``'s size now, -1 when it cannot be read: the upload is then checked by a stat."""
    try:
        return path.stat().st_size
    except OSError:
        return -1
