"""`report NAME`, `top NAME`, `goroutines NAME`: a capture's bundle, downloaded into the cache and verified."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.commands import capture_input

from .capture_fakes import CAPTURES, FileSource, RoutedKube, capture, pod_entry, serve, use, write_bundle


@pytest.mark.parametrize(("value", "capture_name"), [
    ("api-1-debug-full-20261123160000", True), ("cap.v2", True),
    ("heap.pb.gz", False), ("team_api-1_20261201T101500Z.tar.gz", False), ("dir/x", False), ("Cap_1", False),
])
def test_what_is_taken_for_a_capture_name(value: str, capture_name: bool) -> None:
    assert capture_input.looks_like_capture(value) is capture_name


def test_report_of_a_capture_reads_its_cached_verified_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    written = write_bundle(tmp_path / "store")
    obj = capture(pods=[pod_entry("api-1", written), pod_entry("api-2")])  # api-2 failed: one bundle
    use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": obj}))
    source = serve(monkeypatch, FileSource({obj["status"]["pods"][0]["bundle"]["key"]: written.path.read_bytes()}))
    for _ in range(2):
        res = CliRunner().invoke(cli, ["report", "cap-1", "-o", "json"])
        assert res.exit_code == 0, res.output
        assert '"findings"' in res.stdout
    cached = tmp_path / "cache" / "debugcap" / "bundles" / "team" / "cap-1" / "api-1" / written.path.name
    assert cached.read_bytes() == written.path.read_bytes() and source.served == 1
    assert "already here" in res.stderr


def test_a_capture_of_several_pods_needs_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = write_bundle(tmp_path / "s1", "api-1"), write_bundle(tmp_path / "s2", "api-2")
    use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": capture(pods=[pod_entry("api-1", a), pod_entry("api-2", b)])}))
    res = CliRunner().invoke(cli, ["goroutines", "cap-1"])
    assert res.exit_code == 1  # not a usage error: the capture was read to know it
    assert 'debugcapture "cap-1" has a bundle per pod (api-1, api-2); pick one with --pod' in res.stderr


def test_a_tampered_download_is_refused_with_exit_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    written = write_bundle(tmp_path / "store")
    obj = capture(pods=[pod_entry("api-1", written)])
    use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": obj}))
    serve(monkeypatch, FileSource({obj["status"]["pods"][0]["bundle"]["key"]: b"tampered"}))
    res = CliRunner().invoke(cli, ["top", "cap-1", "--profile", "cpu"])
    assert res.exit_code == 4 and "is refused and was not kept" in res.stderr
    assert not list((tmp_path / "cache").rglob("*.tar.gz"))


def test_a_missing_file_is_not_taken_for_a_capture(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "gone.tar.gz")])
    assert res.exit_code == 2 and "does not exist (and is not a capture name)" in res.stderr


def test_pod_with_a_file_is_a_usage_error(tmp_path: Path) -> None:
    written = write_bundle(tmp_path / "store")
    res = CliRunner().invoke(cli, ["report", str(written.path), "--pod", "api-1"])
    assert res.exit_code == 2 and "--pod applies to a capture NAME" in res.stderr


def test_a_mistyped_path_is_told_as_neither_a_file_nor_a_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, RoutedKube({}))
    res = CliRunner().invoke(cli, ["report", "evidence-dir"])
    assert res.exit_code == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith("Error: there is no file or directory 'evidence-dir', and debugcapture "
                                 '"evidence-dir" not found in namespace "team"'), res.stderr
