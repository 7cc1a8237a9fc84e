"""Pure logic of the S3 backend; the backend itself is tested against a real MinIO (e2e).

Cases: endpoint parsing (scheme overrides secure, paths and credentials refused); backoff
delays (doubling, capped, bounded count); transient vs permanent classification of the
exceptions minio and urllib3 raise; hints that name the fix; a store answering If-None-Match
with NotImplemented gets plain writes from then on, while a PreconditionFailed is never written
over. Exceptions are constructed directly: these are claims about our classification, not about S3.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import urllib3.exceptions
from minio.error import S3Error, ServerError

from debugcap.errors import ConfigError, StorageError
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


class _Store:
    """What the backend's requests do to one key of a fake bucket: stat, create-only put, plain
    put, sidecar put. ``conditional``: the store takes If-None-Match (else 501 NotImplemented)."""

    def __init__(self, backend: s3.S3Backend, monkeypatch: pytest.MonkeyPatch, *, conditional: bool = True) -> None:
        self.requests: list[str] = []
        self.objects: dict[str, tuple[int, str]] = {}
        backend._bucket_ready = True
        monkeypatch.setattr(backend, "_abort_incomplete", lambda *_a, **_k: self.requests.append("abort"))
        monkeypatch.setattr(backend._client, "stat_object", self.stat)
        monkeypatch.setattr(backend._client, "put_object", lambda _b, key, data, length, **_k: self.put(key))
        monkeypatch.setattr(backend._client, "fput_object", self.fput("plain"))
        monkeypatch.setattr(backend._create_only, "fput_object",
                            self.fput("create-only") if conditional else self.refuse)

    def stat(self, _bucket: str, key: str) -> object:
        self.requests.append("stat")
        if key not in self.objects:
            raise _s3_error("NoSuchKey")
        size, sha256 = self.objects[key]
        return type("Stat", (), {"size": size, "metadata": {"X-Amz-Meta-Sha256": sha256}})()

    def put(self, key: str) -> None:
        self.requests.append("sidecar" if key.endswith(".sha256") else "put")

    def fput(self, kind: str):  # type: ignore[no-untyped-def]
        def put(_bucket: str, key: str, path: str, *, metadata: dict[str, str], **_k: object) -> object:
            self.requests.append(kind)
            if kind == "create-only" and key in self.objects:
                raise _s3_error("PreconditionFailed")
            self.objects[key] = (Path(path).stat().st_size, metadata["sha256"])
            return type("Written", (), {"etag": "e1"})()  # as minio's ObjectWriteResult
        return put

    def refuse(self, *_a: object, **_k: object) -> None:
        self.requests.append("create-only")
        raise _s3_error("NotImplemented")


def test_a_create_only_write_the_store_took_is_not_checked_by_a_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 17: that stat was one MinIO request per bundle, and the 2xx already said the same.
    backend = s3.S3Backend(SETTINGS)
    store = _Store(backend, monkeypatch)
    path = tmp_path / "b.tar.gz"
    path.write_bytes(b"bundle")
    stored = backend.put(key="k/b.tar.gz", path=path, sha256="a" * 64)
    assert stored.size == 6
    assert store.requests == ["stat", "create-only", "sidecar"]


def test_a_plain_write_is_still_checked_by_a_stat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = s3.S3Backend(SETTINGS)
    store = _Store(backend, monkeypatch, conditional=False)
    path = tmp_path / "b.tar.gz"
    path.write_bytes(b"bundle")
    backend.put(key="k/b.tar.gz", path=path, sha256="a" * 64)
    backend.put(key="k/c.tar.gz", path=path, sha256="a" * 64)
    assert store.requests == ["stat", "create-only", "plain", "stat", "sidecar", "stat", "plain", "stat", "sidecar"]


def test_a_create_only_write_of_a_file_that_changed_size_is_checked_by_a_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = s3.S3Backend(SETTINGS, sleep=lambda _s: None)
    store = _Store(backend, monkeypatch)
    path = tmp_path / "b.tar.gz"
    path.write_bytes(b"bundle")
    real = store.fput("create-only")

    def grow_then_put(*args: object, **kwargs: object) -> None:
        path.write_bytes(b"bundle, and more")  # the store gets 16 bytes, not the 6 checked
        real(*args, **kwargs)

    monkeypatch.setattr(backend._create_only, "fput_object", grow_then_put)
    with pytest.raises(StorageError):
        backend.put(key="k/b.tar.gz", path=path, sha256="a" * 64)
    # The stat after the write found 16 bytes where 6 were checked: the try failed, not stored.
    assert store.requests[:4] == ["stat", "create-only", "stat", "abort"]
    assert "sidecar" not in store.requests


def test_a_create_only_write_refused_as_taken_is_still_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = s3.S3Backend(SETTINGS)
    store = _Store(backend, monkeypatch)
    path = tmp_path / "b.tar.gz"
    path.write_bytes(b"bundle")

    def landed_meanwhile(_bucket: str, key: str, *_a: object, **_k: object) -> None:
        store.requests.append("create-only")
        store.objects[key] = (6, "a" * 64)  # an earlier try of ours, its answer lost
        raise _s3_error("PreconditionFailed")

    monkeypatch.setattr(backend._create_only, "fput_object", landed_meanwhile)
    assert backend.put(key="k/b.tar.gz", path=path, sha256="a" * 64).size == 6
    assert store.requests == ["stat", "create-only", "stat", "stat", "sidecar"]


def test_a_create_only_write_answered_without_an_etag_is_checked_by_a_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CompleteMultipartUpload may answer 200 and fail in its body (MinIO's keep-alive while it
    assembles the parts; AWS documents the same): minio's client returns a result without an ETag,
    and nothing was stored. Only the stat tells: no sidecar for a bundle that is not there."""
    backend = s3.S3Backend(SETTINGS, sleep=lambda _s: None)
    store = _Store(backend, monkeypatch)
    path = tmp_path / "b.tar.gz"
    path.write_bytes(b"bundle")

    def failed_in_body(*_a: object, **_k: object) -> object:
        store.requests.append("create-only")
        return type("Written", (), {"etag": None})()

    monkeypatch.setattr(backend._create_only, "fput_object", failed_in_body)
    with pytest.raises(StorageError):
        backend.put(key="k/b.tar.gz", path=path, sha256="a" * 64)
    assert store.requests[:3] == ["stat", "create-only", "stat"]
    assert "sidecar" not in store.requests


def test_a_multipart_create_only_write_is_still_checked_by_a_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = s3.S3Backend(dataclasses.replace(SETTINGS, part_size_bytes=5 << 20))
    store = _Store(backend, monkeypatch)
    path = tmp_path / "b.tar.gz"
    path.write_bytes(b"x" * ((5 << 20) + 1))
    backend.put(key="k/b.tar.gz", path=path, sha256="a" * 64)
    assert store.requests == ["stat", "abort", "create-only", "stat", "sidecar"]
