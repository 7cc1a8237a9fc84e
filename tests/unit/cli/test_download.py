"""`kubectl debugcap download` and the verified fetch behind it: what is kept, what is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from debugcap import errors
from debugcap.kubectl_plugin import fetching
from debugcap.kubectl_plugin.cli import cli

from .capture_fakes import CAPTURES, FileSource, RoutedKube, capture, pod_entry, serve, use, write_bundle

REF = fetching.BundleRef(namespace="team", capture="cap-1", pod="api-1", key="k/team_api-1_x.tar.gz",
                         uri="s3://debugcap/k/team_api-1_x.tar.gz", sha256="a" * 64, size=10)


def test_the_verdict_keeps_only_what_matches_the_status_and_its_manifest() -> None:
    assert fetching.verdict(REF, "a" * 64, 10, []) == []
    assert fetching.verdict(REF, "b" * 64, 10, []) == [f"sha256 {'b' * 64} where the status recorded {'a' * 64}"]
    assert fetching.verdict(REF, "a" * 64, 11, []) == ["11 bytes where the status recorded 10"]
    # The status may be right about the file and the file wrong about itself (written so): refused too.
    assert fetching.verdict(REF, "a" * 64, 10, ["proc/ps.txt: sha-mismatch: ..."]) == ["proc/ps.txt: sha-mismatch: ..."]


def test_without_s3_settings_the_error_names_the_variables_to_set() -> None:
    with pytest.raises(errors.ConfigError) as err:
        fetching.source_for(REF, environ={})
    assert str(err.value) == ("no S3 settings to download s3://debugcap/k/team_api-1_x.tar.gz: set "
                              "DEBUGCAP_S3_ENDPOINT (host:port), DEBUGCAP_S3_ACCESS_KEY and DEBUGCAP_S3_SECRET_KEY "
                              "(DEBUGCAP_S3_SECURE=false for plain HTTP), as for create --upload")


def test_the_bucket_is_the_one_the_status_names_and_reads_fail_fast() -> None:
    pytest.importorskip("minio")
    source = fetching.source_for(REF, environ={"DEBUGCAP_S3_ENDPOINT": "http://minio:9000",
                                               "DEBUGCAP_S3_BUCKET": "other"})
    assert isinstance(source, fetching.S3Source)
    assert source.describe() == "s3://debugcap at http://minio:9000"
    assert source._backend.settings.upload_attempts == fetching.READ_ATTEMPTS


def test_a_capture_without_bundles_says_why_and_what_to_run() -> None:
    with pytest.raises(errors.ConfigError, match=r'has no bundle yet \(it is Running\); wait for it with: '
                                                 r"kubectl debugcap logs cap-1 -n team -f"):
        fetching.bundle_refs(capture(phase="Running", pods=[{"name": "api-1", "phase": "Running"}]))
    with pytest.raises(errors.ConfigError, match=r"stored no bundle \(it is Failed: port closed\)"):
        fetching.bundle_refs(capture(phase="Failed", message="port closed"))
    with pytest.raises(errors.ConfigError, match='has no pod "api-9" \\(--pod\\); its pods: api-1'):
        fetching.bundle_refs(capture(pods=[{"name": "api-1", "phase": "Failed"}]), "api-9")


def test_a_bundle_matching_its_status_is_kept_with_its_sha256_beside_it(tmp_path: Path) -> None:
    written = write_bundle(tmp_path / "store")
    obj = capture(pods=[pod_entry("api-1", written)])
    ref = fetching.bundle_refs(obj)[0]
    source = FileSource({ref.key: written.path.read_bytes()})
    got = fetching.fetch_verified(ref, tmp_path / "out", source)
    assert got == tmp_path / "out" / written.path.name
    assert hashlib.sha256(got.read_bytes()).hexdigest() == written.sha256
    assert (tmp_path / "out" / f"{written.path.name}.sha256").read_text() == f"{written.sha256}  {got.name}\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [got.name, f"{got.name}.sha256"]


@pytest.mark.parametrize("tamper", ["replaced", "status", "cut"])
def test_a_bundle_that_does_not_match_is_refused_and_not_kept(tmp_path: Path, tamper: str) -> None:
    written = write_bundle(tmp_path / "store")
    data = written.path.read_bytes()
    entry = pod_entry("api-1", written)
    if tamper == "replaced":  # another bundle under the key, consistent in itself
        data = write_bundle(tmp_path / "other", pod="api-2").path.read_bytes()
    elif tamper == "status":  # the object intact, the status recording something else
        entry["bundle"]["sha256"] = "0" * 64
    else:
        data = data[: len(data) // 2]
    ref = fetching.bundle_refs(capture(pods=[entry]))[0]
    (tmp_path / "out").mkdir()
    with pytest.raises(fetching.VerifyFailedError, match="is refused and was not kept"):
        fetching.fetch_verified(ref, tmp_path / "out", FileSource({ref.key: data}))
    assert list((tmp_path / "out").iterdir()) == []  # no file, no partial, no work directory


def test_the_download_command_prints_each_path_and_exits_4_on_a_refused_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good, bad = write_bundle(tmp_path / "s1", "api-1"), write_bundle(tmp_path / "s2", "api-2")
    obj = capture(pods=[pod_entry("api-1", good), pod_entry("api-2", bad)])
    use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": obj}))
    keys = [p["bundle"]["key"] for p in obj["status"]["pods"]]
    serve(monkeypatch, FileSource({keys[0]: good.path.read_bytes(), keys[1]: b"not a bundle"}))
    res = CliRunner().invoke(cli, ["download", "cap-1", "-d", str(tmp_path / "out")])
    assert res.exit_code == 4, res.output
    assert res.stdout == f"{tmp_path / 'out' / good.path.name}\n"
    assert "pod api-1: downloaded from s3://debugcap/" in res.stderr
    assert "(pod api-2) is refused and was not kept" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out" / bad.path.name).exists()


def test_download_of_one_pod_reuses_a_copy_already_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = write_bundle(tmp_path / "s1", "api-1"), write_bundle(tmp_path / "s2", "api-2")
    obj = capture(pods=[pod_entry("api-1", a), pod_entry("api-2", b)])
    use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": obj}))
    source = serve(monkeypatch, FileSource({p["bundle"]["key"]: (a if p["name"] == "api-1" else b).path.read_bytes()
                                            for p in obj["status"]["pods"]}))
    for _ in range(2):
        res = CliRunner().invoke(cli, ["download", "cap-1", "--pod", "api-2", "-d", str(tmp_path)])
        assert res.exit_code == 0, res.output
        assert res.stdout == f"{tmp_path / b.path.name}\n"
    assert source.served == 1 and "already here" in res.stderr


def test_download_with_s3_only_and_no_s3_settings_is_one_line_naming_the_variables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = write_bundle(tmp_path / "store")
    use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": capture(pods=[pod_entry("api-1", written)])}))
    monkeypatch.delenv("DEBUGCAP_S3_ENDPOINT", raising=False)
    res = CliRunner().invoke(cli, ["download", "cap-1", "--s3", "-d", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert res.stderr.count("\n") == 1 and "set DEBUGCAP_S3_ENDPOINT (host:port)" in res.stderr


def test_a_cache_copy_is_reused_only_while_it_has_the_status_sha256(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = write_bundle(tmp_path / "store")
    ref = fetching.bundle_refs(capture(pods=[pod_entry("api-1", written)]))[0]
    root = fetching.cache_root({"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert root == tmp_path / "cache" / "debugcap" / "bundles"
    assert fetching.cache_dir(ref, root) == root / "team" / "cap-1" / "api-1"
    source = serve(monkeypatch, FileSource({ref.key: written.path.read_bytes()}))
    first, _ = fetching.fetch_all([ref], lambda r: fetching.cache_dir(r, root))
    again, _ = fetching.fetch_all([ref], lambda r: fetching.cache_dir(r, root))
    assert [f.reused for f in first + again] == [False, True] and source.served == 1
    first[0].path.write_bytes(b"changed")
    third, refused = fetching.fetch_all([ref], lambda r: fetching.cache_dir(r, root))
    assert third[0].reused is False and source.served == 2 and not refused
    assert third[0].path.read_bytes() == written.path.read_bytes()
