"""verify() and its scans on damaged archives: the member at the damage is named, what precedes it kept.

Cases: a bundle cut short is a ``damaged`` problem naming the member being read (not a BundleError,
not a bundle that merely looks smaller); a flipped content byte is that member's sha-mismatch plus
the gzip CRC-32; a corrupt tar header part-way is damage after the member before it (tarfile alone
would end the archive there without a word); a byte flipped near the end of the deflate data, after
the last member, is told as the compressed stream ending without its end marker after that member,
which was read whole (not as that member cut short); the scan of an unpacked bundle finds what the
scan of the archive finds; the bytes a caller asks to keep are the members' bytes; a gzip header
that is not deflate is unreadable from the start.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from debugcap.analysis.bundle_reading import BundleReader
from debugcap.bundle import layout, verify, writer
from debugcap.errors import BundleError

BIG = bytes(range(256)) * 800  # 200 kB: the middle of the archive falls in it


@pytest.fixture
def bundle(tmp_path: Path, make_fields, when) -> writer.WrittenBundle:  # type: ignore[no-untyped-def]
    with writer.BundleWriter(directory=tmp_path / "out", name=layout.bundle_name("prod", "api-1", when),
                             compresslevel=0, mtime=0, durable=False) as w:
        w.add_bytes(layout.PROC_PS, b"root 1 /app\n")
        w.add_bytes(layout.TRACE, BIG)
        w.add_bytes(layout.NET_RESOLV_CONF, b"nameserver 10.96.0.10\n")
        return w.finish(make_fields())


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_cut_bundle_names_the_member_at_the_cut(bundle: writer.WrittenBundle) -> None:
    data = bundle.path.read_bytes()
    bundle.path.write_bytes(data[: len(data) // 2])
    result = verify.verify(bundle.path)
    assert not result.ok
    damaged = [p for p in result.problems if p.kind is verify.ProblemKind.DAMAGED]
    assert [p.path for p in damaged] == [layout.TRACE]
    assert "cut short" in damaged[0].detail and f"of its {len(BIG)} bytes were read" in damaged[0].detail
    assert f"{layout.TRACE}: damaged" in result.summary()


def test_a_flipped_content_byte_is_its_members_mismatch_and_the_gzip_crc(bundle: writer.WrittenBundle) -> None:
    _flip(bundle.path, bundle.path.read_bytes().index(b"nameserver"))
    result = verify.verify(bundle.path)
    kinds = {(p.path, p.kind) for p in result.problems}
    assert (layout.NET_RESOLV_CONF, verify.ProblemKind.SHA_MISMATCH) in kinds
    assert (verify.GZIP_TRAILER, verify.ProblemKind.DAMAGED) in kinds
    assert result.bundle_checksum_ok is False


def test_a_corrupt_header_part_way_is_damage_not_the_end(bundle: writer.WrittenBundle) -> None:
    stem = layout.stem(bundle.path.name)
    header = bundle.path.read_bytes().index(f"{stem}/{layout.NET_RESOLV_CONF}".encode())
    _flip(bundle.path, header + len(stem) + 3)
    scan = verify.scan_archive(bundle.path)
    damage = scan.damaged
    assert damage is not None and damage.path == f"(after {layout.TRACE})" and "tar header" in damage.detail
    assert set(scan.digests) == {layout.VERSION, layout.PROC_PS, layout.TRACE}


def test_a_flip_after_the_last_member_is_told_after_it_not_inside_it(tmp_path: Path, make_fields,  # type: ignore[no-untyped-def]
                                                                       when) -> None:
    with writer.BundleWriter(directory=tmp_path, name=layout.bundle_name("prod", "api-1", when), mtime=0,
                             durable=False) as w:
        w.add_bytes(layout.PROC_PS, b"root 1 /app\n")
        w.add_bytes(layout.METRICS_PROMETHEUS, b"go_goroutines 12\n")
        bundle = w.finish(make_fields())
    good = bundle.path.read_bytes()
    ends = 0
    # Which of the last deflate bytes hide the end marker depends on zlib: each that does is checked.
    # (Others garble what the last block decodes to: the manifest's tail, the end-of-archive blocks.)
    for back in range(9, 40):
        bundle.path.write_bytes(good)
        _flip(bundle.path, len(good) - back)
        scan = verify.scan_archive(bundle.path)
        damage = scan.damaged
        if damage is None or not damage.detail.startswith("the compressed stream ends without its end marker"):
            continue
        ends += 1
        assert (damage.path, damage.detail) == (
            f"(after {layout.MANIFEST})",
            f"the compressed stream ends without its end marker (cut short or corrupt) after member {layout.MANIFEST}")
        assert set(scan.digests) == {layout.VERSION, layout.PROC_PS, layout.METRICS_PROMETHEUS}
        assert set(scan.reserved) == {layout.SHA256SUMS, layout.MANIFEST} and not scan.partial
        # Read with --force: it is unverified, but nothing was lost, so no "lost to the damage:" line
        # (it was printed with an empty list after it).
        with BundleReader(bundle.path, force=True) as reader:
            assert reader.unverified and not [u for u in reader.unverified if "lost to the damage" in u]
    assert ends


def test_scans_of_the_archive_and_of_it_unpacked_agree(bundle: writer.WrittenBundle, tmp_path: Path) -> None:
    with tarfile.open(bundle.path) as tf:
        tf.extractall(tmp_path / "x", filter="data")
    packed = verify.scan_archive(bundle.path)
    unpacked = verify.scan_directory(tmp_path / "x" / layout.stem(bundle.path.name))
    assert packed.digests == unpacked.digests and packed.reserved == unpacked.reserved
    assert verify.check(tmp_path / "x", unpacked, own_checksum=False).problems == ()


def test_kept_members_are_the_members_bytes(bundle: writer.WrittenBundle) -> None:
    scan = verify.scan_archive(bundle.path, keep=lambda name, size: size < 1000)
    assert scan.kept[layout.PROC_PS] == b"root 1 /app\n" and layout.TRACE not in scan.kept
    assert layout.MANIFEST in scan.kept  # the manifest is always kept: the checks need it
    assert scan.offsets[layout.TRACE] % 512 == 0


def test_a_gzip_header_that_is_not_deflate_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "prod_api-1_20261123T160000Z.tar.gz"
    path.write_bytes(b"\x1f\x8b\x07" + b"\0" * 40)
    with pytest.raises(BundleError, match="gzip header is corrupt"):
        verify.verify(path)
