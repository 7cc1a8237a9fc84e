"""Hostile bundles (issue 16): names that leave the bundle, links, devices, data after the gzip
stream, a manifest nested past Python's recursion limit, members too large to read whole, links
in an unpacked bundle. Each is refused with a problem naming it, never a traceback; the size
limits are monkeypatched small, so no test builds or holds anything large."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

import pytest

from debugcap import errors
from debugcap.analysis import bundle_reading, goroutines
from debugcap.bundle import verify

from . import hostile
from .hostile import PS, STEM, build, link

Kind = verify.ProblemKind


def _problems(path: Path) -> list[tuple[str, Kind]]:
    return [(p.path, p.kind) for p in verify.verify(path).problems]


def test_a_member_named_dotdot_that_the_manifest_lists_fails(tmp_path: Path) -> None:
    bundle = build(tmp_path, {"proc/ps.txt": PS, "../x": b"evil\n"})
    result = verify.verify(bundle)
    assert not result.ok
    assert ("../x", Kind.UNEXPECTED_MEMBER) in _problems(bundle)
    assert "leaves the bundle directory" in result.summary()


def test_an_absolute_member_name_fails_as_leaving_the_bundle(tmp_path: Path) -> None:
    info = tarfile.TarInfo(f"/{STEM}/proc/fd_count.txt")
    bundle = build(tmp_path, {"proc/ps.txt": PS}, raw=((info, b"3\n"),))
    problems = verify.verify(bundle).problems
    assert [(p.path, p.kind) for p in problems] == [(f"/{STEM}/proc/fd_count.txt", Kind.UNEXPECTED_MEMBER)]
    assert "absolute" in problems[0].detail


@pytest.mark.parametrize("member", [link(f"{STEM}/pprof/heap.pb.gz"),
                                    link(f"{STEM}/pprof/heap.pb.gz", tarfile.LNKTYPE),
                                    link(f"{STEM}/pprof/heap.pb.gz", tarfile.CHRTYPE, "")])
def test_links_and_devices_fail_verify_and_the_reader_refuses_them(tmp_path: Path, member: tarfile.TarInfo) -> None:
    bundle = build(tmp_path, {"proc/ps.txt": PS}, raw=(member,))
    assert _problems(bundle) == [("pprof/heap.pb.gz", Kind.UNEXPECTED_MEMBER)]
    with pytest.raises(bundle_reading.CheckFailedError, match="pprof/heap.pb.gz"):
        bundle_reading.BundleReader(bundle)


@pytest.mark.parametrize("trailing", [b"GARBAGE" * 10, gzip.compress(b"a second member")])
def test_data_after_the_gzip_stream_is_an_error(tmp_path: Path, trailing: bytes) -> None:
    bundle = build(tmp_path, {"proc/ps.txt": PS}, trailing=trailing)
    problems = verify.verify(bundle).problems
    assert [(p.path, p.kind) for p in problems] == [(verify.GZIP_TRAILER, Kind.DAMAGED)]
    assert f"{len(trailing)} bytes follow the gzip stream" in problems[0].detail
    with pytest.raises(bundle_reading.CheckFailedError):
        bundle_reading.BundleReader(bundle)


def test_a_missing_sidecar_is_told_apart_from_a_matching_one(tmp_path: Path) -> None:
    assert verify.verify(build(tmp_path / "a", {"proc/ps.txt": PS}, sidecar=False)).bundle_checksum_ok is None
    assert verify.verify(build(tmp_path / "b", {"proc/ps.txt": PS})).bundle_checksum_ok is True


@pytest.mark.parametrize("text", [b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000])
def test_a_deeply_nested_manifest_is_unreadable_not_a_recursion_error(tmp_path: Path, text: bytes) -> None:
    bundle = build(tmp_path, {"proc/ps.txt": PS}, manifest=text)
    problems = verify.verify(bundle).problems
    assert [(p.path, p.kind) for p in problems] == [("manifest.json", Kind.UNREADABLE)]
    assert "nests too deeply" in problems[0].detail
    with pytest.raises(bundle_reading.CheckFailedError, match="nests too deeply"):
        bundle_reading.BundleReader(bundle)


def test_a_deeply_nested_member_json_is_a_problem_line(tmp_path: Path) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    bundle = build(tmp_path, {"metrics/expvar.json": deep})
    reading = bundle_reading.Reading(bundle_reading.BundleReader(bundle))
    assert reading.read_json("metrics/expvar.json") is None
    assert any("nests too deeply" in p for p in reading.problems)


def test_a_member_over_the_read_limit_is_refused_naming_it_and_the_limit(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_reading, "READ_MAX", 1 << 20)
    monkeypatch.setattr(bundle_reading, "KEEP_MEMBER_MAX", 1 << 10)  # read again from the archive
    bundle = build(tmp_path, {"metrics/expvar.json": b'{"a": "' + b"x" * (2 << 20) + b'"}'})
    reader = bundle_reading.BundleReader(bundle)
    with pytest.raises(errors.AnalysisError, match=r"metrics/expvar.json: not read: 2.0 MiB, more than the 1.0 MiB"):
        reader.read("metrics/expvar.json")
    reading = bundle_reading.Reading(reader)
    assert reading.read_json("metrics/expvar.json") is None
    assert any("more than the 1.0 MiB" in p for p in reading.problems)


def test_a_one_line_goroutine_dump_is_refused_past_the_line_limit(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(goroutines, "LINE_MAX", 64 << 10)
    dump = b"goroutine 1 [running]:\nmain.f(" + b"0" * (1 << 20)  # one line of 1 MiB, no newline
    bundle = build(tmp_path, {"pprof/goroutine-debug2.txt": dump})
    reading = bundle_reading.Reading(bundle_reading.BundleReader(bundle))
    assert reading.dump("pprof/goroutine-debug2.txt") is None
    assert any("a line longer than 64 KiB" in p for p in reading.problems)


def test_an_unpacked_bundle_never_follows_a_link_out_of_it(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's private key\n")
    root = tmp_path / STEM
    (root / "proc").mkdir(parents=True)
    (root / "proc" / "ps.txt").write_bytes(PS)
    (root / "proc" / "limits.txt").symlink_to(secret)
    (root / "linked").symlink_to(tmp_path)
    (root / "manifest.json").write_bytes(hostile.manifest_bytes({"proc/ps.txt": PS}))
    scan = verify.scan_directory(root)
    assert sorted((p.path, p.kind) for p in scan.problems) == [("linked", Kind.UNEXPECTED_MEMBER),
                                                              ("proc/limits.txt", Kind.UNEXPECTED_MEMBER)]
    assert set(scan.digests) == {"proc/ps.txt"}
    assert not any(b"private key" in v for v in scan.kept.values())
    with pytest.raises(bundle_reading.CheckFailedError, match="unexpected-member: not a regular file"):
        bundle_reading.BundleReader(root)
    reader = bundle_reading.BundleReader(root, force=True)
    assert reader.read("proc/limits.txt") is None
