"""Spool: nothing collected is lost when uploads fail.

Cases: a failed upload moves the bundle and its checksum into the spool; a successful one removes
the local copy; flush uploads spooled bundles and empties the spool; flushing is idempotent and
skips bundles already stored with the same sha256; a different bundle at the key is never
overwritten; a locally damaged spooled bundle is kept and reported; flush stops at the first
store failure; a key holding another object sets the bundle aside (held), reported once and never
retried; a bundle without its sidecar is found again; a full disk at the sidecar fails the add
before the bundle moves; a stray sidecar-less file that is no bundle is never sent and never
blocks the flush; a spooled entry with a bad key fails alone; a second bundle held for one key is
kept beside the first. The failing store is a LocalBackend subclass, not a fake S3.
"""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import pytest

from debugcap.errors import ForbiddenError, KubeError, StorageError
from debugcap.storage import base, local, spool

KEY = "debugcap/c/prod/api-1/2026/11/23/prod_api-1_20261123T160000Z.tar.gz"


class BrokenBackend(local.LocalBackend):
    """A local store whose writes fail, as an unreachable endpoint would."""

    def put(self, *, key: str, path: Path, sha256: str) -> base.StoredObject:
        raise StorageError(f"uploading {key} failed: connection refused")

    def sha256(self, *, key: str) -> str | None:
        raise StorageError("checking failed: connection refused")


def _bundle(
    directory: Path, name: str = "prod_api-1_20261123T160000Z.tar.gz", body: bytes = b"b"
) -> tuple[Path, str]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(body * 5000)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    (directory / (name + ".sha256")).write_text(f"{sha}  {name}\n")
    return path, sha


def test_failed_upload_moves_bundle_and_checksum_into_spool(tmp_path: Path) -> None:
    path, sha = _bundle(tmp_path / "work")
    sp = spool.Spool(tmp_path / "spool")
    result = spool.deliver(BrokenBackend(tmp_path / "store"), sp, key=KEY, bundle=path, sha256=sha)
    assert not result.stored and "connection refused" in (result.error or "")
    assert [e.key for e in sp.entries()] == [KEY]
    assert (tmp_path / "spool" / KEY).read_bytes() == b"b" * 5000
    assert not path.exists() and not path.with_name(path.name + ".sha256").exists()


def test_successful_upload_removes_local_copy(tmp_path: Path) -> None:
    path, sha = _bundle(tmp_path / "work")
    store = local.LocalBackend(tmp_path / "store")
    result = spool.deliver(store, spool.Spool(tmp_path / "spool"), key=KEY, bundle=path, sha256=sha)
    assert result.stored and store.sha256(key=KEY) == sha
    assert list((tmp_path / "work").iterdir()) == []


def test_flush_uploads_then_is_idempotent(tmp_path: Path) -> None:
    sp = spool.Spool(tmp_path / "spool")
    path, sha = _bundle(tmp_path / "work")
    sp.add(key=KEY, bundle=path, sha256=sha)
    store = local.LocalBackend(tmp_path / "store")
    first = spool.flush_spool(store, sp)
    assert first.uploaded == [KEY] and first.ok
    assert store.sha256(key=KEY) == sha
    assert sp.entries() == [] and list((tmp_path / "spool").iterdir()) == []
    second = spool.flush_spool(store, sp)
    assert second.uploaded == [] and second.ok


def test_bundle_already_stored_with_same_sha_is_just_removed(tmp_path: Path) -> None:
    store = local.LocalBackend(tmp_path / "store")
    path, sha = _bundle(tmp_path / "work")
    store.put(key=KEY, path=path, sha256=sha)
    sp = spool.Spool(tmp_path / "spool")
    sp.add(key=KEY, bundle=path, sha256=sha)
    report = spool.flush_spool(store, sp)
    assert report.already_stored == [KEY] and report.uploaded == [] and sp.entries() == []


def test_different_bundle_at_the_key_is_never_overwritten_and_is_held_not_retried(tmp_path: Path) -> None:
    store = local.LocalBackend(tmp_path / "store")
    stored_path, stored_sha = _bundle(tmp_path / "a", body=b"x")
    store.put(key=KEY, path=stored_path, sha256=stored_sha)
    sp = spool.Spool(tmp_path / "spool")
    path, sha = _bundle(tmp_path / "work")
    sp.add(key=KEY, bundle=path, sha256=sha)
    report = spool.flush_spool(store, sp)
    assert report.failed == [] and report.ok
    assert [k for k, _ in report.held] == [KEY]
    message = report.held[0][1]
    assert KEY in message and stored_sha in message and sha in message and "not replaced" in message
    held = tmp_path / "spool" / ".held" / KEY
    assert str(held) in message and held.read_bytes() == b"b" * 5000
    assert store.sha256(key=KEY) == stored_sha
    assert sp.entries() == [] and [(e.key, e.sha256) for e in sp.held()] == [(KEY, sha)]
    again = spool.flush_spool(store, sp)  # permanent: not tried, not reported, not lost
    assert again == spool.FlushReport() and held.exists()


def test_a_delivery_to_a_taken_key_is_held_with_a_message_naming_key_and_fix(tmp_path: Path) -> None:
    store = local.LocalBackend(tmp_path / "store")
    other_path, other_sha = _bundle(tmp_path / "a", body=b"x")
    store.put(key=KEY, path=other_path, sha256=other_sha)
    sp = spool.Spool(tmp_path / "spool")
    path, sha = _bundle(tmp_path / "work")
    delivery = spool.deliver(store, sp, key=KEY, bundle=path, sha256=sha)
    assert not delivery.stored and delivery.held
    assert delivery.error and KEY in delivery.error and "not replaced" in delivery.error
    assert "will not be sent again" in delivery.error and "store this one under a key" in delivery.error
    assert delivery.location == str(tmp_path / "spool" / ".held" / KEY)
    assert not path.exists() and Path(delivery.location).read_bytes() == b"b" * 5000
    assert store.sha256(key=KEY) == other_sha and sp.entries() == []
    assert spool.flush_spool(store, sp) == spool.FlushReport()
    assert sp.discard(KEY) and sp.held() == [] and not (tmp_path / "spool" / ".held").exists()  # its capture expired


def test_damaged_spooled_bundle_is_kept_and_reported(tmp_path: Path) -> None:
    sp = spool.Spool(tmp_path / "spool")
    path, sha = _bundle(tmp_path / "work")
    entry = sp.add(key=KEY, bundle=path, sha256=sha)
    entry.path.write_bytes(b"damaged")
    report = spool.flush_spool(local.LocalBackend(tmp_path / "store"), sp)
    assert "damaged on local disk" in report.failed[0][1]
    assert entry.path.exists()


def test_flush_stops_at_first_store_failure_and_keeps_everything(tmp_path: Path) -> None:
    sp = spool.Spool(tmp_path / "spool")
    keys = [KEY.replace("api-1", f"api-{i}") for i in range(3)]
    for i, key in enumerate(keys):
        path, sha = _bundle(tmp_path / f"w{i}")
        sp.add(key=key, bundle=path, sha256=sha)
    report = spool.flush_spool(BrokenBackend(tmp_path / "store"), sp)
    assert [k for k, _ in report.failed] == [keys[0]] and report.not_attempted == keys[1:]
    assert [e.key for e in sp.entries()] == keys


def test_a_spooled_bundle_that_lost_its_sidecar_is_found_again_and_sent(tmp_path: Path) -> None:
    """An older spool moved the bundle in, then wrote its sidecar: a full disk in between left the
    bundle where no flush looked."""
    sp = spool.Spool(tmp_path / "spool")
    path, sha = _bundle(tmp_path / "work")
    entry = sp.add(key=KEY, bundle=path, sha256=sha)
    (entry.path.parent / (entry.path.name + ".sha256")).unlink()
    assert [(e.key, e.sha256) for e in sp.entries()] == [(KEY, sha)]
    assert (entry.path.parent / (entry.path.name + ".sha256")).read_text() == f"{sha}  {entry.path.name}\n"
    store = local.LocalBackend(tmp_path / "store")
    assert spool.flush_spool(store, sp).uploaded == [KEY]
    assert store.sha256(key=KEY) == sha and sp.entries() == []


def test_a_sidecar_that_cannot_be_written_fails_the_add_before_the_bundle_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC at the sidecar: the bundle must be where the message says and listed by nobody
    twice; never moved into the spool without what lists it."""
    path, sha = _bundle(tmp_path / "work")
    real = base.atomic_file

    def full(target: Path, **kwargs: bool) -> object:
        if target.name.endswith(".sha256"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(target, **kwargs)

    monkeypatch.setattr(base, "atomic_file", full)
    sp = spool.Spool(tmp_path / "spool")
    with pytest.raises(StorageError, match=f"No space left on device.*still at {path}"):
        sp.add(key=KEY, bundle=path, sha256=sha)
    assert path.read_bytes() == b"b" * 5000
    assert not (tmp_path / "spool" / KEY).exists()


def test_spooling_failure_raises_and_keeps_the_bundle(tmp_path: Path) -> None:
    path, sha = _bundle(tmp_path / "work")
    blocker = tmp_path / "spool"
    blocker.write_bytes(b"a file where the spool directory should be")
    with pytest.raises(StorageError, match="cannot spool.*still at"):
        spool.deliver(
            BrokenBackend(tmp_path / "store"), spool.Spool(blocker), key=KEY, bundle=path, sha256=sha
        )
    assert path.exists()


def test_deleting_a_bundle_that_waits_in_the_spool_means_no_later_flush_sends_it(tmp_path: Path) -> None:
    from debugcap import delivering

    path, sha = _bundle(tmp_path / "work")
    store = delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", "c", spool.Spool(tmp_path / "spool"))
    spooled = spool.deliver(BrokenBackend(tmp_path / "store"), store.spool, key=KEY, bundle=path, sha256=sha)
    assert not spooled.stored and [e.key for e in store.spool.entries()] == [KEY]
    delivering.delete(store, [KEY])  # the capture listing KEY expired while the store was down
    assert store.spool.entries() == [] and not (tmp_path / "spool" / KEY).exists()
    report = spool.flush_spool(store.backend, store.spool)  # the store is back
    assert report.uploaded == [] and not store.backend.exists(key=KEY)


def test_a_stray_file_without_a_sidecar_is_never_uploaded_and_never_blocks_the_flush(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "spool"
    (root / "lost+found").mkdir(parents=True)
    (root / "lost+found" / "#1234").write_bytes(b"fsck fragment")  # sorts before every key of ours
    (root / "README").write_text("hello")
    (root / "notes" / "x.txt").parent.mkdir()
    (root / "notes" / "x.txt").write_text("a valid key, not a bundle's name")
    (root / "bad key" / "prod_api-1_20261123T160000Z.tar.gz").parent.mkdir()
    (root / "bad key" / "prod_api-1_20261123T160000Z.tar.gz").write_bytes(b"a bundle's name, no key of ours")
    sp = spool.Spool(root)
    path, sha = _bundle(tmp_path / "work")
    sp.add(key=KEY, bundle=path, sha256=sha)
    store = local.LocalBackend(tmp_path / "store")

    assert [e.key for e in sp.entries()] == [KEY]
    report = spool.flush_spool(store, sp)
    assert report == spool.FlushReport(uploaded=[KEY])
    assert list(store.list(prefix="")) == [KEY]
    assert (root / "README").read_text() == "hello" and not (root / "README.sha256").exists()
    assert not (root / "lost+found" / "#1234.sha256").exists()
    spool.flush_spool(store, sp)
    warned = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
    assert len(warned) == 4, warned  # once per stray file, not once per flush
    assert any("lost+found/#1234" in w and "move it out" in w for w in warned)


def test_a_spooled_entry_with_a_bad_key_fails_alone_and_the_flush_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    sp = spool.Spool(root)
    bad = root / "a+b" / "prod_api-1_20261123T160000Z.tar.gz"  # sidecar and all: copied in by hand
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"x")
    (bad.parent / (bad.name + ".sha256")).write_text(f"{hashlib.sha256(b'x').hexdigest()}  {bad.name}\n")
    path, sha = _bundle(tmp_path / "work")
    sp.add(key=KEY, bundle=path, sha256=sha)

    report = spool.flush_spool(local.LocalBackend(tmp_path / "store"), sp)
    assert report.uploaded == [KEY] and report.not_attempted == []
    assert [k for k, _ in report.failed] == ["a+b/prod_api-1_20261123T160000Z.tar.gz"]
    assert "is invalid" in report.failed[0][1] and bad.exists()


def test_a_second_bundle_held_for_one_key_is_kept_beside_the_first(tmp_path: Path) -> None:
    store = local.LocalBackend(tmp_path / "store")
    theirs, their_sha = _bundle(tmp_path / "theirs", body=b"t")
    store.put(key=KEY, path=theirs, sha256=their_sha)
    sp = spool.Spool(tmp_path / "spool")
    first, first_sha = _bundle(tmp_path / "one", body=b"1")
    second, second_sha = _bundle(tmp_path / "two", body=b"2")

    one = spool.deliver(store, sp, key=KEY, bundle=first, sha256=first_sha)
    two = spool.deliver(store, sp, key=KEY, bundle=second, sha256=second_sha)
    again, again_sha = _bundle(tmp_path / "again", body=b"2")  # the second one once more: no third copy
    spool.deliver(store, sp, key=KEY, bundle=again, sha256=again_sha)

    assert one.held and two.held and one.location != two.location
    assert two.location == one.location + "." + second_sha[:12]
    held = sp.held()
    assert sorted((e.key, e.sha256) for e in held) == sorted([(KEY, first_sha), (KEY, second_sha)])
    for entry in held:
        assert hashlib.sha256(entry.path.read_bytes()).hexdigest() == entry.sha256
        sidecar = entry.path.with_name(entry.path.name + ".sha256").read_text()
        assert sidecar == f"{entry.sha256}  {entry.path.name}\n"  # sha256sum -c beside it works
    assert spool.flush_spool(store, sp) == spool.FlushReport()
    assert sp.discard(KEY) and sp.held() == []


@pytest.mark.parametrize("refusal", [ForbiddenError('debugcaptures.debugcap.io "c" is forbidden in namespace "gone"'),
                                     ValueError("a key no capture could own")])
def test_a_bundle_whose_owner_lookup_is_refused_is_skipped_and_the_flush_goes_on(
        tmp_path: Path, refusal: Exception, caplog: pytest.LogCaptureFixture) -> None:
    # The flush stopped at the first bundle whose owner could not be told: a 403 (a namespace no
    # longer served) is not going away, so every bundle behind it was never sent again.
    sp = spool.Spool(tmp_path / "spool")
    refused_key, other = KEY, KEY.replace("prod_api-1", "prod_api-2")
    for key in (refused_key, other):
        path, sha = _bundle(tmp_path / "work", name=key.rsplit("/", 1)[1])
        sp.add(key=key, bundle=path, sha256=sha)
    store = local.LocalBackend(tmp_path / "store")

    def wanted(key: str) -> bool:
        if key == refused_key:
            raise refusal
        return True

    for _ in range(2):
        report = spool.flush_spool(store, sp, wanted=wanted)
    assert report.uploaded == [] and [k for k, _ in report.refused] == [refused_key]
    assert store.sha256(key=other) is not None and [e.key for e in sp.entries()] == [refused_key]
    assert not report.ok and report.failed == [] and report.not_attempted == []
    assert sum("skips it and goes on" in r.message for r in caplog.records) == 1  # said once, not every flush


def test_a_bundle_whose_owner_lookup_fails_for_now_stops_the_flush(tmp_path: Path) -> None:
    sp = spool.Spool(tmp_path / "spool")
    keys = sorted([KEY, KEY.replace("prod_api-1", "prod_api-2")])
    for key in keys:
        path, sha = _bundle(tmp_path / "work", name=key.rsplit("/", 1)[1])
        sp.add(key=key, bundle=path, sha256=sha)

    def wanted(_key: str) -> bool:
        raise KubeError("cannot get debugcaptures: connection refused")

    report = spool.flush_spool(local.LocalBackend(tmp_path / "store"), sp, wanted=wanted)
    assert [k for k, _ in report.failed] == keys[:1] and report.not_attempted == keys[1:] and not report.refused
