"""LocalBackend and key rules: the default store when no S3 is configured.

Cases: put/get round trip with the sidecar accepted by `sha256sum -c`; a wrong sha256 is refused
and nothing is left; a corrupted stored object is detected on get; list excludes sidecars and
temp files; delete removes both files and tolerates missing keys; unsafe keys are refused; on a
file system without hard links (link(2) failing, injected) a put copies into an exclusively
created file, still never replacing one, and a copy cut short leaves nothing.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from debugcap.errors import StorageError
from debugcap.storage import base, local

KEY = "debugcap/eu-1/prod/api-1/2026/11/23/prod_api-1_20261123T160000Z.tar.gz"


@pytest.fixture
def bundle(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "work" / "prod_api-1_20261123T160000Z.tar.gz"
    path.parent.mkdir()
    path.write_bytes(b"bundle bytes" * 1000)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def backend(tmp_path: Path) -> local.LocalBackend:
    return local.LocalBackend(tmp_path / "store")


def test_put_then_get_round_trips_and_sidecar_passes_sha256sum(
    backend: local.LocalBackend, bundle: tuple[Path, str], tmp_path: Path
) -> None:
    path, sha = bundle
    stored = backend.put(key=KEY, path=path, sha256=sha)
    assert stored == base.StoredObject(key=KEY, sha256=sha, size=12000)
    assert backend.exists(key=KEY) and backend.sha256(key=KEY) == sha
    target = backend.root / KEY
    check = subprocess.run(
        ["sha256sum", "-c", target.name + ".sha256"], cwd=target.parent, capture_output=True
    )
    assert check.returncode == 0, check.stdout
    got = backend.get(key=KEY, dest=tmp_path / "dl" / "b.tar.gz")
    assert got.sha256 == sha and (tmp_path / "dl" / "b.tar.gz").read_bytes() == path.read_bytes()
    assert backend.url(key=KEY).startswith("file:///")


def test_wrong_sha256_is_refused_and_nothing_is_stored(
    backend: local.LocalBackend, bundle: tuple[Path, str]
) -> None:
    path, _ = bundle
    with pytest.raises(StorageError, match="changed after it was written"):
        backend.put(key=KEY, path=path, sha256="0" * 64)
    assert not backend.exists(key=KEY)
    assert list(backend.root.rglob("*.partial")) == []


def test_corrupted_object_is_detected_on_get(
    backend: local.LocalBackend, bundle: tuple[Path, str], tmp_path: Path
) -> None:
    path, sha = bundle
    backend.put(key=KEY, path=path, sha256=sha)
    (backend.root / KEY).write_bytes(b"bit rot")
    with pytest.raises(StorageError, match="is corrupt"):
        backend.get(key=KEY, dest=tmp_path / "x.tar.gz")
    assert not (tmp_path / "x.tar.gz").exists()


def test_list_excludes_sidecars_and_temp_files(backend: local.LocalBackend, bundle: tuple[Path, str]) -> None:
    path, sha = bundle
    other = KEY.replace("api-1", "api-2")
    backend.put(key=KEY, path=path, sha256=sha)
    backend.put(key=other, path=path, sha256=sha)
    (backend.root / KEY).with_name(".junk.partial").write_bytes(b"")
    assert list(backend.list(prefix="debugcap/eu-1/prod/")) == sorted([KEY, other])
    assert list(backend.list(prefix="debugcap/eu-1/prod/api-2/")) == [other]
    assert list(local.LocalBackend(backend.root / "nothing").list(prefix="")) == []


def test_delete_removes_object_and_sidecar_and_tolerates_missing(
    backend: local.LocalBackend, bundle: tuple[Path, str]
) -> None:
    path, sha = bundle
    backend.put(key=KEY, path=path, sha256=sha)
    backend.delete(key=KEY)
    backend.delete(key=KEY)
    assert not backend.exists(key=KEY) and backend.sha256(key=KEY) is None
    assert not (backend.root / (KEY + ".sha256")).exists()


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a/../b", "a//b", "a/b/", "sp ace", "x.tar.gz.sha256", "a" * 1025, "a/b\n", "a/%2e%2e/b"],
    ids=["empty", "absolute", "parent", "empty-segment", "trailing-slash", "space", "sidecar", "too-long",
         "trailing-newline", "url-encoded"],
)
def test_unsafe_keys_are_refused(backend: local.LocalBackend, key: str) -> None:
    with pytest.raises(StorageError, match="object key"):
        backend.exists(key=key)


def test_checksum_line_round_trip() -> None:
    line = base.checksum_line("a" * 64, KEY)
    assert line == b"a" * 64 + b"  prod_api-1_20261123T160000Z.tar.gz\n"
    assert base.parse_checksum_line(line) == "a" * 64
    assert base.parse_checksum_line(b"garbage") is None


def test_a_sha256_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(StorageError, match="SHA-256"):
        base.check_sha256("a" * 64 + "\n")


def test_uri_names_the_stored_file_as_an_absolute_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = local.LocalBackend(Path("store"))  # a relative root still gives an absolute URI
    assert relative.uri(key=KEY) == f"file://{tmp_path}/store/{KEY}"
    assert relative.uri(key=KEY) == (tmp_path / "store" / KEY).as_uri()


def test_uri_refuses_an_unsafe_key(backend: local.LocalBackend) -> None:
    with pytest.raises(StorageError):
        backend.uri(key="../escape.tar.gz")


def test_a_put_never_replaces_another_object_at_its_key(
    backend: local.LocalBackend, bundle: tuple[Path, str], tmp_path: Path
) -> None:
    path, sha = bundle
    backend.put(key=KEY, path=path, sha256=sha)
    other = tmp_path / "other.tar.gz"
    other.write_bytes(b"another bundle")
    other_sha = hashlib.sha256(other.read_bytes()).hexdigest()
    with pytest.raises(base.KeyConflictError) as caught:
        backend.put(key=KEY, path=other, sha256=other_sha)
    message = str(caught.value)
    assert KEY in message and sha in message and other_sha in message and "not replaced" in message
    assert caught.value.key == KEY and caught.value.stored_sha256 == sha
    assert (backend.root / KEY).read_bytes() == path.read_bytes() and backend.sha256(key=KEY) == sha
    assert list(backend.root.rglob("*.partial")) == []


def test_a_second_put_of_the_same_bundle_is_stored_and_restores_a_lost_sidecar(
    backend: local.LocalBackend, bundle: tuple[Path, str]
) -> None:
    path, sha = bundle
    backend.put(key=KEY, path=path, sha256=sha)
    (backend.root / (KEY + ".sha256")).unlink()  # a crash between the object and its sidecar
    assert backend.put(key=KEY, path=path, sha256=sha) == base.StoredObject(key=KEY, sha256=sha, size=12000)
    assert backend.sha256(key=KEY) == sha


def _no_hard_links(code: int) -> object:
    def link(source: object, target: object, *args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))
    return link


@pytest.mark.parametrize("code", [errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK])
def test_a_file_system_without_hard_links_still_stores_and_never_replaces(
    backend: local.LocalBackend, bundle: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    code: int,
) -> None:
    monkeypatch.setattr(os, "link", _no_hard_links(code))  # exFAT, SMB, some FUSE
    path, sha = bundle
    stored = backend.put(key=KEY, path=path, sha256=sha)
    assert stored.sha256 == sha and (backend.root / KEY).read_bytes() == path.read_bytes()
    assert backend.put(key=KEY, path=path, sha256=sha).sha256 == sha  # our own retry: fine
    other = tmp_path / "other.tar.gz"
    other.write_bytes(b"another bundle")
    with pytest.raises(base.KeyConflictError):
        backend.put(key=KEY, path=other, sha256=hashlib.sha256(b"another bundle").hexdigest())
    assert (backend.root / KEY).read_bytes() == path.read_bytes()
    assert [p.name for p in (backend.root / KEY).parent.iterdir() if p.name.startswith(".")] == []


def test_a_copy_cut_short_on_a_file_system_without_hard_links_leaves_no_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "link", _no_hard_links(errno.EPERM))
    real = shutil.copyfileobj

    def disk_full(source: object, target: object, length: int = 0) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", disk_full)
    target = tmp_path / "object"
    with pytest.raises(OSError, match="No space"), base.atomic_file(target, exclusive=True) as fh:
        fh.write(b"x" * 100)
    assert list(tmp_path.iterdir()) == []  # neither half an object nor the temp file
    monkeypatch.setattr(shutil, "copyfileobj", real)
    target.write_bytes(b"someone's")
    with pytest.raises(FileExistsError), base.atomic_file(target, exclusive=True) as fh:
        fh.write(b"ours")
    assert target.read_bytes() == b"someone's" and [p.name for p in tmp_path.iterdir()] == ["object"]


def test_a_link_error_that_is_not_about_hard_links_is_raised(
    backend: local.LocalBackend, bundle: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "link", _no_hard_links(errno.EACCES))
    with pytest.raises(StorageError, match="storing"):
        backend.put(key=KEY, path=bundle[0], sha256=bundle[1])
    assert not (backend.root / KEY).exists()
