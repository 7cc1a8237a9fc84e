"""The pure rules of the S3 backend (:mod:`debugcap.storage.s3`): which errors are worth another
try, how long to wait, what the user should do, and what an endpoint setting means. Unit-tested
without a server; re-exported by :mod:`debugcap.storage.s3`."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from debugcap.errors import ConfigError, StorageError
from debugcap.settings import S3Settings

try:
    import minio
    import minio.error
    import urllib3
    import urllib3.exceptions
except ImportError:  # pragma: no cover - only without the S3 dependencies
    minio = None  # type: ignore[assignment]

# S3 error codes worth another try: throttling and server-side hiccups. Everything else
# (AccessDenied, NoSuchBucket, InvalidAccessKeyId...) fails the same way every time.
TRANSIENT_CODES: Final = frozenset(
    {
        "SlowDown",
        "SlowDownRead",
        "SlowDownWrite",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "XMinioServerNotInitialized",
        "OperationAborted",
    }
)
_NOT_FOUND_CODES: Final = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})
_CREDENTIAL_CODES: Final = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
)

class UploadMismatch(StorageError):
    """The object stored differs from what we sent; worth uploading again."""


def parse_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """``("host:port", secure)`` from ``host:port`` or an ``http(s)://host:port`` URL.

    >>> parse_endpoint("http://minio:9000", True)
    ('minio:9000', False)
    """
    text = endpoint.strip()
    if "://" not in text:
        host = text
    else:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https"):
            raise ConfigError(f"S3 endpoint {endpoint!r} must use http:// or https://, or be plain host:port")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(
                f"S3 endpoint {endpoint!r} has a path; the S3 API lives at the server root, "
                f"set DEBUGCAP_S3_ENDPOINT to scheme://host:port only"
            )
        host, secure = parts.netloc, parts.scheme == "https"
    if not host or "/" in host or "@" in host:
        raise ConfigError(
            f"S3 endpoint {endpoint!r} is not host:port; set DEBUGCAP_S3_ENDPOINT like minio.debugcap:9000 "
            f"(credentials go in DEBUGCAP_S3_ACCESS_KEY/DEBUGCAP_S3_SECRET_KEY, never in the endpoint)"
        )
    return host, secure


def backoff_delays(attempts: int, base_seconds: float, max_seconds: float) -> list[float]:
    """Waits between ``attempts`` tries: base, 2*base, 4*base, ... each capped at ``max_seconds``.

    >>> backoff_delays(4, 1.0, 30.0)
    [1.0, 2.0, 4.0]
    """
    return [min(base_seconds * 2**i, max_seconds) for i in range(max(attempts - 1, 0))]


def _status(exc: BaseException) -> int:
    if minio is not None and isinstance(exc, minio.error.ServerError):
        return exc.status_code
    if minio is not None and isinstance(exc, minio.error.InvalidResponseError):
        return int(getattr(exc, "_code", 0) or 0)
    response = getattr(exc, "response", None)
    return int(getattr(response, "status", 0) or 0)


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same request again later may succeed."""
    if isinstance(exc, UploadMismatch):
        return True
    if minio is not None and isinstance(exc, minio.error.S3Error):
        return exc.code in TRANSIENT_CODES or _status(exc) >= 500
    if minio is not None and isinstance(exc, minio.error.ServerError | minio.error.InvalidResponseError):
        return _status(exc) >= 500
    if minio is not None and isinstance(exc, urllib3.exceptions.MaxRetryError):
        return exc.reason is None or is_transient(exc.reason)
    if minio is not None and isinstance(exc, urllib3.exceptions.SSLError):
        return False  # a certificate or protocol mismatch does not fix itself
    if minio is not None and isinstance(
        exc,
        urllib3.exceptions.NewConnectionError
        | urllib3.exceptions.ProtocolError
        | urllib3.exceptions.TimeoutError
        | urllib3.exceptions.ResponseError,
    ):
        return True
    return isinstance(exc, ConnectionError | TimeoutError)


def hint_for(exc: BaseException, settings: S3Settings) -> str:
    """What the user should do about ``exc``."""
    code = getattr(exc, "code", None)
    if code in _CREDENTIAL_CODES:
        return (
            f"check DEBUGCAP_S3_ACCESS_KEY/DEBUGCAP_S3_SECRET_KEY and that this key may read and write "
            f"bucket {settings.bucket!r}"
        )
    if code == "NoSuchBucket":
        return (
            f"bucket {settings.bucket!r} does not exist and could not be created; create it "
            f"(mc mb <alias>/{settings.bucket}) or set DEBUGCAP_S3_BUCKET to an existing one"
        )
    reason = exc.reason if minio is not None and isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    if minio is not None and isinstance(reason, urllib3.exceptions.SSLError):
        return (
            "TLS failed: set DEBUGCAP_S3_SECURE=false for a plain-HTTP MinIO, or point SSL_CERT_FILE "
            "at the CA that signed its certificate"
        )
    if is_transient(exc):
        return (
            f"check that {settings.endpoint} is reachable from here and healthy (DEBUGCAP_S3_ENDPOINT, "
            f"DEBUGCAP_S3_SECURE); bundles that could not be uploaded stay in the local spool and are "
            f"sent by the next flush"
        )
    return "see the cause above; bundles that could not be uploaded stay in the local spool"


def detail(exc: BaseException) -> str:
    if minio is not None and isinstance(exc, minio.error.S3Error):
        return f"{exc.code}: {exc.message}"
    if minio is not None and isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return f"{type(exc.reason).__name__}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
