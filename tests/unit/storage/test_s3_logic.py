"""Pure logic of the S3 backend; the backend itself is tested against a real MinIO (e2e).

Cases: endpoint parsing (scheme overrides secure, paths and credentials refused); backoff
delays (doubling, capped, bounded count); transient vs permanent classification of the
exceptions minio and urllib3 raise; hints that name the fix; a store answering If-None-Match
with NotImplemented gets plain writes from then on, while a PreconditionFailed is never written
over. Exceptions are constructed directly: these are claims about our classification, not about S3.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import urllib3.exceptions
from minio.error import S3Error, ServerError

from debugcap.errors import ConfigError
from debugcap.settings import S3Settings
from debugcap.storage import s3


def _s3_error(code: str) -> S3Error:
    return S3Error(None, code, "message", "/bucket/key", "req", "host")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("endpoint", "secure", "expected"),
    [
        ("minio:9000", True, ("minio:9000", True)),
        ("minio:9000", False, ("minio:9000", False)),
        ("http://minio:9000", True, ("minio:9000", False)),
        ("https://s3.example.com/", False, ("s3.example.com", True)),
    ],
    ids=["plain-secure", "plain-insecure", "http-overrides", "https-overrides"],
)
def test_parse_endpoint(endpoint: str, secure: bool, expected: tuple[str, bool]) -> None:
    assert s3.parse_endpoint(endpoint, secure) == expected


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("http://minio:9000/bucket", "has a path"),
        ("ftp://minio", "http:// or https://"),
        ("http://user:pw@minio:9000", "never in the endpoint"),
    ],
    ids=["path", "scheme", "credentials"],
)
def test_bad_endpoints_are_config_errors(endpoint: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        s3.parse_endpoint(endpoint, True)


def test_backoff_doubles_is_capped_and_bounded() -> None:
    assert s3.backoff_delays(4, 1.0, 30.0) == [1.0, 2.0, 4.0]
    assert s3.backoff_delays(8, 5.0, 30.0) == [5.0, 10.0, 20.0, 30.0, 30.0, 30.0, 30.0]
    assert s3.backoff_delays(1, 1.0, 30.0) == []


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        urllib3.exceptions.ProtocolError("Connection aborted."),
        urllib3.exceptions.MaxRetryError(
            None, "/b/k", urllib3.exceptions.ResponseError("too many 503 error responses")
        ),  # type: ignore[arg-type]
        urllib3.exceptions.ReadTimeoutError(None, "/b/k", "read timed out"),  # type: ignore[arg-type]
        _s3_error("SlowDown"),
        _s3_error("InternalError"),
        ServerError("bad gateway", 502),
    ],
    ids=[
        "refused",
        "reset",
        "timeout",
        "protocol",
        "max-retry-5xx",
        "read-timeout",
        "slowdown",
        "internal",
        "502",
    ],
)
def test_transient_errors_are_retried(exc: BaseException) -> None:
    assert s3.is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        _s3_error("AccessDenied"),
        _s3_error("NoSuchBucket"),
        _s3_error("InvalidAccessKeyId"),
        urllib3.exceptions.MaxRetryError(
            None, "/b/k", urllib3.exceptions.SSLError("certificate verify failed")
        ),  # type: ignore[arg-type]
        ValueError("bad part size"),
        FileNotFoundError(2, "No such file"),
    ],
    ids=["access-denied", "no-bucket", "bad-key", "tls", "value-error", "local-file"],
)
def test_permanent_errors_are_not_retried(exc: BaseException) -> None:
    assert not s3.is_transient(exc)


SETTINGS = S3Settings(endpoint="minio:9000", bucket="evidence", access_key="ak", secret_key="sk")


@pytest.mark.parametrize(
    ("exc", "fragment"),
    [
        (_s3_error("AccessDenied"), "DEBUGCAP_S3_ACCESS_KEY/DEBUGCAP_S3_SECRET_KEY"),
        (_s3_error("NoSuchBucket"), "mc mb <alias>/evidence"),
        (ConnectionRefusedError(111, "refused"), "minio:9000 is reachable"),
        (
            urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.SSLError("wrong version number")),  # type: ignore[arg-type]
            "DEBUGCAP_S3_SECURE=false",
        ),
    ],
    ids=["credentials", "bucket", "unreachable", "tls"],
)
def test_hints_name_the_fix(exc: BaseException, fragment: str) -> None:
    assert fragment in s3.hint_for(exc, SETTINGS)


def test_uri_is_bucket_and_key_and_asks_no_server() -> None:
    # An endpoint nothing listens on: building the URI must not connect.
    backend = s3.S3Backend(S3Settings(endpoint="http://127.0.0.1:1", bucket="bundles"))
    key = "debugcap/eu-1/prod/api-1/2026/11/23/prod_api-1_20261123T160000Z.tar.gz"
    assert backend.uri(key=key) == f"s3://bundles/{key}"


def test_a_store_without_conditional_writes_falls_back_to_the_check_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some S3-compatible stores answer If-None-Match with 501 NotImplemented: uploads must still
    work there (the check before the write stays), and the refusal is met once, not per bundle."""
    backend = s3.S3Backend(SETTINGS)
    sent: list[str] = []

    def refuse(*_args: object, **_kwargs: object) -> None:
        sent.append("conditional")
        raise _s3_error("NotImplemented")

    monkeypatch.setattr(backend._create_only, "fput_object", refuse)
    monkeypatch.setattr(backend._client, "fput_object", lambda *_a, **_k: sent.append("plain"))
    path = tmp_path / "b.tar.gz"
    path.write_bytes(b"bundle")
    backend._write("k/b.tar.gz", path, "0" * 64)
    backend._write("k/c.tar.gz", path, "0" * 64)
    assert sent == ["conditional", "plain", "plain"]


def test_a_conditional_write_refused_for_another_reason_is_not_retried_unconditionally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = s3.S3Backend(SETTINGS)

    def taken(*_args: object, **_kwargs: object) -> None:
        raise _s3_error("PreconditionFailed")

    monkeypatch.setattr(backend._create_only, "fput_object", taken)
    monkeypatch.setattr(backend._client, "fput_object", lambda *_a, **_k: pytest.fail("written unconditionally"))
    path = tmp_path / "b.tar.gz"
    path.write_bytes(b"bundle")
    with pytest.raises(S3Error, match="PreconditionFailed"):
        backend._write("k/b.tar.gz", path, "0" * 64)
