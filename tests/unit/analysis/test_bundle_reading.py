"""Reading a bundle checks it first: corrupt input is an error, partial input is read with --force.

Every bundle here is written by the project's own BundleWriter in tmp_path, then damaged on its
bytes: one byte flipped (in a member's stored bytes, in the middle of a compressed stream, in the
gzip trailer), the file cut in half, the .sha256 beside it changed, unpacked and a file edited.
Cases: a good bundle verifies and keeps its small members (read once: the archive can go after
opening) while big ones are read again at their offset; a renamed or gunzipped bundle still reads;
each damage is a CheckFailedError naming the first bad member and the command that lists every
problem; with force the readable members are read and the first problem line says unverified;
an archive or directory without manifest.json is no bundle; a hand-made directory bundle (a manifest
listing no files) is read as it is; report.build and diff_bundles carry the force through.
"""

from __future__ import annotations

import gzip
import random
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from debugcap.analysis import bundle_reading, report
from debugcap.analysis.bundle_reading import BundleReader, CheckFailedError, NotABundleError
from debugcap.bundle import layout, manifest, writer

from .test_report import fixed_cpu_profile

WHEN = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
NAME = layout.bundle_name("shop", "api-7d9f", WHEN)
STEM = layout.stem(NAME)
MARKER = b"--marker-for-the-flip-test"
# Random bytes do not compress: the trace is most of the archive, so half the file ends inside it.
TRACE = random.Random(12).randbytes(300_000)
DUMP = b"\n".join(f"goroutine {i} [chan receive, 7 minutes]:\nmain.leakWorker(0x0?)\n\texample.com/shop/leak.go:12 "
                  f"+0x1d\ncreated by main.spawn in goroutine 1\n\texample.com/shop/leak.go:20 +0x3f\n".encode()
                  for i in range(60))
BEFORE_TRACE = [layout.VERSION, layout.PPROF_CPU, layout.PPROF_GOROUTINE_DEBUG2, layout.PROC_FD_COUNT, layout.PROC_PS]


def write_bundle(directory: Path, *, compresslevel: int = 6, trace: bytes = TRACE,
                 files: dict[str, bytes] | None = None) -> writer.WrittenBundle:
    """A bundle as a capture writes it: profile, dump, files, a large trace, then SHA256SUMS and
    manifest (``files``, in their order, instead of those)."""
    files = files or {layout.PPROF_CPU: fixed_cpu_profile(), layout.PPROF_GOROUTINE_DEBUG2: DUMP,
                      layout.PROC_FD_COUNT: b"950\n", layout.PROC_PS: b"root 1 /app " + MARKER + b"\n",
                      layout.TRACE: trace, layout.METRICS_EXPVAR: b'{"memstats": {"HeapInuse": 5}}'}
    with writer.BundleWriter(directory=directory, name=NAME, mtime=0, compresslevel=compresslevel,
                             durable=False) as w:
        for path, data in files.items():
            w.add_bytes(path, data)
        return w.finish(manifest.ManifestFields(
            capture=manifest.CaptureInfo(name="c1", template="debug-full", parameters={"cpu_seconds": 1}),
            target=manifest.TargetInfo(namespace="shop", pod="api-7d9f", container="api"),
            started_at=WHEN, finished_at=WHEN,
            collectors=tuple(manifest.CollectorRecord(name=p.split("/")[-1].split(".")[0],
                                                      status=manifest.CollectorStatus.OK, duration_ms=1, files=(p,))
                             for p in files)))


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def bundle(tmp_path: Path) -> writer.WrittenBundle:
    return write_bundle(tmp_path / "out")


def test_a_good_bundle_verifies_and_its_small_members_are_read_once(bundle: writer.WrittenBundle) -> None:
    reader = BundleReader(bundle.path)
    assert reader.unverified == []
    assert set(reader.names()) >= {*BEFORE_TRACE, layout.TRACE, layout.MANIFEST, layout.SHA256SUMS}
    bundle.path.unlink()  # what the checking pass kept needs no second read
    assert reader.read(layout.PROC_FD_COUNT) == b"950\n"
    assert reader.read(layout.PPROF_GOROUTINE_DEBUG2) == DUMP
    # A trace is never kept (no analysis reads one): reading it means the archive again.
    with pytest.raises(bundle_reading.errors.AnalysisError, match="cannot read it again"):
        reader.read(layout.TRACE)


def test_members_not_kept_are_read_at_their_offset(bundle: writer.WrittenBundle,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_reading, "KEEP_MEMBER_MAX", 0)
    reader = BundleReader(bundle.path)
    assert reader.read(layout.TRACE) == TRACE
    assert reader.read(layout.PROC_PS) == b"root 1 /app " + MARKER + b"\n"
    fh = reader.open(layout.PPROF_GOROUTINE_DEBUG2)
    assert fh is not None and fh.readline() == DUMP.split(b"\n", 1)[0] + b"\n"


def test_a_renamed_or_gunzipped_bundle_still_reads(bundle: writer.WrittenBundle, tmp_path: Path) -> None:
    renamed = tmp_path / "evidence.tgz"
    renamed.write_bytes(bundle.path.read_bytes())
    assert BundleReader(renamed).read(layout.PROC_FD_COUNT) == b"950\n"
    plain = tmp_path / "evidence.tar"
    plain.write_bytes(gzip.decompress(bundle.path.read_bytes()))
    reader = BundleReader(plain)
    assert reader.unverified == [] and reader.read(layout.TRACE) is not None


def test_a_sha256_file_naming_the_bundle_otherwise_is_no_failure(bundle: writer.WrittenBundle,
                                                                  tmp_path: Path) -> None:
    # Copied with its .sha256 to api.tar.gz (the line names the original), and `sha256sum dir/x.tar.gz`.
    renamed = tmp_path / "api.tar.gz"
    renamed.write_bytes(bundle.path.read_bytes())
    (tmp_path / "api.tar.gz.sha256").write_text(bundle.checksum_path.read_text())
    assert BundleReader(renamed).unverified == []
    bundle.checksum_path.write_text(f"{bundle.sha256.upper()} *{bundle.path}\n")
    assert BundleReader(bundle.path).unverified == []


def test_a_bundle_cut_in_half_names_the_member_at_the_cut(bundle: writer.WrittenBundle) -> None:
    cut_in_half(bundle.path)
    with pytest.raises(CheckFailedError) as err:
        BundleReader(bundle.path)
    message = str(err.value)
    assert f"{bundle.path} is cut short or damaged at {layout.TRACE}" in message
    assert f"kubectl debugcap verify {bundle.path}" in message and "--force" in message


def test_with_force_the_members_before_the_cut_are_read(bundle: writer.WrittenBundle) -> None:
    cut_in_half(bundle.path)
    reader = BundleReader(bundle.path, force=True)
    assert reader.names() == sorted(BEFORE_TRACE)
    assert reader.read(layout.PROC_FD_COUNT) == b"950\n"
    line, lost = reader.unverified
    assert line.startswith("unverified (read with --force): ") and layout.TRACE in line
    assert "only the 5 files before the damage were read" in line
    # What came after the cut is lost, not missing: the reader says so and knows which it cut.
    assert lost.startswith(f"unverified (read with --force): lost to the damage: {layout.TRACE} (cut: its first ")
    assert f"the members after {layout.TRACE}, manifest.json among them, could not be read" in lost
    assert reader.damaged_members() == [layout.TRACE]
    assert reader.lost(layout.TRACE) and reader.lost(layout.METRICS_EXPVAR) and reader.lost(layout.MANIFEST)
    assert not reader.lost(layout.PROC_PS) and not reader.exists(layout.TRACE)


def test_the_bytes_of_the_member_the_cut_went_through_are_read_up_to_it(bundle: writer.WrittenBundle) -> None:
    cut_in_half(bundle.path)
    reader = BundleReader(bundle.path, force=True)
    before = reader.read_damaged(layout.TRACE)
    # Half the file is about half the incompressible trace; all of it that was decompressed is there.
    assert before is not None and len(TRACE) // 3 < len(before) < len(TRACE) and before == TRACE[:len(before)]
    assert f"(the first {len(before)} of its {len(TRACE)} bytes were read)" in reader.unverified[0]
    assert reader.read_damaged(layout.PROC_PS) is None  # not cut: read() reads it
    assert BundleReader(write_bundle(bundle.path.parent / "good").path).damaged_members() == []


def test_a_flipped_byte_in_a_stored_member_names_it(tmp_path: Path) -> None:
    stored = write_bundle(tmp_path, compresslevel=0)  # no compression: the member's bytes are in the file
    flip(stored.path, stored.path.read_bytes().index(MARKER) + 3)
    with pytest.raises(CheckFailedError, match=f"fails its checks, first at {layout.PROC_PS}: sha-mismatch"):
        BundleReader(stored.path)
    reader = BundleReader(stored.path, force=True)
    assert reader.read(layout.PROC_PS) == b"root 1 /app --mArker-for-the-flip-test\n"
    assert "unverified" in reader.unverified[0] and layout.PROC_PS in reader.unverified[0]


def test_a_flipped_byte_in_the_compressed_stream_is_caught(bundle: writer.WrittenBundle) -> None:
    flip(bundle.path, bundle.path.stat().st_size // 2)
    with pytest.raises(CheckFailedError, match=f"first at {layout.TRACE}: sha-mismatch") as err:
        BundleReader(bundle.path)
    assert "more problems" in str(err.value)  # the gzip CRC-32 and the .sha256 beside it


def test_a_flipped_byte_in_the_gzip_trailer_is_caught(bundle: writer.WrittenBundle) -> None:
    flip(bundle.path, bundle.path.stat().st_size - 6)
    with pytest.raises(CheckFailedError, match=r"damaged at \(gzip trailer\)"):
        BundleReader(bundle.path)


def test_a_bundle_that_differs_from_its_sha256_file_fails(bundle: writer.WrittenBundle) -> None:
    bundle.checksum_path.write_text("0" * 64 + f"  {NAME}\n")
    with pytest.raises(CheckFailedError, match=f"first at {layout.checksum_name(NAME)}"):
        BundleReader(bundle.path)


def _unpack(bundle: writer.WrittenBundle, into: Path) -> Path:
    with tarfile.open(bundle.path) as tf:
        tf.extractall(into, filter="data")
    return into / STEM


def test_an_unpacked_bundle_is_checked_too(bundle: writer.WrittenBundle, tmp_path: Path) -> None:
    stem = _unpack(bundle, tmp_path / "x")
    assert BundleReader(stem).unverified == [] and BundleReader(tmp_path / "x").unverified == []
    (stem / layout.PROC_FD_COUNT).write_bytes(b"951\n")
    with pytest.raises(CheckFailedError, match=f"first at {layout.PROC_FD_COUNT}.*sha256sum -c SHA256SUMS"):
        BundleReader(stem)


def test_an_archive_without_manifest_is_no_bundle(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.tar.gz"
    with tarfile.open(profiles, "w:gz") as tf:
        tf.add(Path(__file__), arcname="pprof/notes.txt")
    with pytest.raises(NotABundleError, match="not a debugcap bundle: it holds no manifest.json.*a bundle is"):
        BundleReader(profiles)
    assert "has no manifest.json" in BundleReader(profiles, force=True).unverified[0]


def test_a_directory_without_manifest_is_refused_by_the_commands_check(tmp_path: Path) -> None:
    (tmp_path / "pprof").mkdir()
    (tmp_path / "pprof" / "cpu.pb.gz").write_bytes(fixed_cpu_profile())
    with pytest.raises(NotABundleError, match="has no manifest.json"):
        bundle_reading.require_bundle(tmp_path)
    bundle_reading.require_bundle(tmp_path, force=True)
    assert BundleReader(tmp_path, force=True).unverified[0].startswith("unverified (read with --force)")
    with pytest.raises(NotABundleError, match="kubectl debugcap top"):
        bundle_reading.require_bundle(tmp_path / "pprof" / "cpu.pb.gz")


def test_a_hand_made_directory_listing_no_files_is_read_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "fd-count.txt").write_text("12\n")
    fields = manifest.ManifestFields(capture=manifest.CaptureInfo(name="c", template="t"),
                                     target=manifest.TargetInfo(namespace="shop", pod="p", container="c"),
                                     started_at=WHEN, finished_at=WHEN)
    (tmp_path / layout.MANIFEST).write_text(manifest.Manifest.build(fields, files={}).to_json())
    reader = BundleReader(tmp_path)
    assert reader.unverified == [] and reader.read(layout.PROC_FD_COUNT) == b"12\n"


def test_report_and_diff_refuse_a_damaged_bundle_and_read_it_with_force(bundle: writer.WrittenBundle,
                                                                         tmp_path: Path) -> None:
    good = write_bundle(tmp_path / "good")
    cut_in_half(bundle.path)
    with pytest.raises(CheckFailedError, match=layout.TRACE):
        report.build(bundle.path)
    rep = report.build(bundle.path, force=True)
    assert rep.problems[0].startswith("unverified") and rep.fd_count == 950
    assert rep.goroutines is not None and rep.goroutines.total == 60
    # Cut before its manifest: nothing is known to be missing, and the problems name what was lost.
    assert rep.missing == () and rep.target is None
    assert rep.problems[1].startswith("unverified (read with --force): lost to the damage")
    with pytest.raises(CheckFailedError):
        report.diff_bundles(good.path, bundle.path)
    d = report.diff_bundles(good.path, bundle.path, force=True)
    assert d.problems[0].startswith("unverified") and d.goroutines is not None
